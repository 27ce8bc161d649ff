"""The HTML waterfall in real headless Chromium (Debian's ``chromium`` package).

A missing Chromium fails these tests (with the install line), it never skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from show_chromium import INSTALL_HINT, ChromiumMissing, Page, PageRecord, chromium_page
from show_fixture import fixture_spans

from processor.export.otlp_json import DecodedSpan, spans_from_sdk
from processor.tools.show import render_html

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'

# Every row the page shows: span ID, name, whether it is laid out with a visible size.
_ROWS_JS = """
Array.from(document.querySelectorAll("details.span")).map(function (row) {
  var summary = row.querySelector("summary"), bar = row.querySelector(".bar");
  var box = summary.getBoundingClientRect(), drawn = bar.getBoundingClientRect();
  return {id: row.getAttribute("data-span-id"),
          name: row.querySelector(".label").textContent,
          visible: summary.checkVisibility() && bar.checkVisibility() &&
                   box.height > 0 && drawn.width > 0 && drawn.height > 0};
})
"""


def _spans() -> list[DecodedSpan]:
    spans = spans_from_sdk(fixture_spans())
    # A CI job controls attribute values: one carries markup that must stay inert text.
    spans[0] = replace(spans[0], attributes={**spans[0].attributes, "vcs.change.title": HOSTILE})
    return spans


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Page, PageRecord]]:
    """Render the fixture to a file, load it in Chromium, and hand over the live page."""
    page_path = tmp_path_factory.mktemp("html") / "traces.html"
    page_path.write_text(render_html(_spans()), encoding="utf-8")
    try:
        with chromium_page() as page:
            record = page.load(page_path.as_uri())
            if os.environ.get("PROWTRACE_SCREENSHOT"):  # a development aid: look at the page
                page.screenshot(Path(os.environ["PROWTRACE_SCREENSHOT"]))
            yield page, record
    except ChromiumMissing as missing:
        pytest.fail(f"{missing}. CI needs it too: `{INSTALL_HINT}`")


def _rows(page: Page) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = page.evaluate(_ROWS_JS)
    return rows


def test_the_page_loads_without_console_errors(loaded: tuple[Page, PageRecord]) -> None:
    """Loading the page logs no console error or warning and throws nothing."""
    _, record = loaded

    assert record.problems() == []


def test_every_span_is_a_visible_row(loaded: tuple[Page, PageRecord]) -> None:
    """Each span of the file is a laid-out row with its name and a drawn bar."""
    page, _ = loaded

    rows = _rows(page)

    assert sorted((row["id"], row["name"]) for row in rows) == sorted(
        (span.span_id, span.name) for span in _spans()
    )
    assert all(row["visible"] for row in rows)


def test_the_page_fetches_nothing_but_itself(loaded: tuple[Page, PageRecord]) -> None:
    """The only request the page causes is for the page file itself."""
    _, record = loaded

    assert len(record.requests) == 1
    assert record.requests[0].startswith("file://")


def test_hostile_markup_stays_text(loaded: tuple[Page, PageRecord]) -> None:
    """The <script>/onerror payload in an attribute neither runs nor becomes an element."""
    page, _ = loaded

    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate(f"document.body.textContent.includes({HOSTILE!r})") is True


def test_clicking_a_row_shows_its_details(loaded: tuple[Page, PageRecord]) -> None:
    """A click on a span row reveals its attributes; a second click hides them."""
    page, _ = loaded
    row = "document.querySelector('details.span.st-bad:not([data-search^=run]) summary')"
    info = "document.querySelector('details.span.st-bad:not([data-search^=run]) .info')"

    visible_before = page.evaluate(f"{info}.checkVisibility()")
    page.evaluate(f"{row}.click()")
    visible_open = page.evaluate(f"{info}.checkVisibility()")
    text = page.evaluate(f"{info}.innerText")
    page.evaluate(f"{row}.click()")
    visible_after = page.evaluate(f"{info}.checkVisibility()")

    assert (visible_before, visible_open, visible_after) == (False, True, False)
    assert "process.exit.code" in text
    assert "exit code 1 (Error)" in text


def test_the_filter_hides_rows_that_do_not_match(loaded: tuple[Page, PageRecord]) -> None:
    """Typing in the filter box leaves only the matching spans visible."""
    page, _ = loaded
    page.evaluate(
        "var f = document.getElementById('filter'); f.value = 'git fetch';"
        "f.dispatchEvent(new Event('input'))"
    )
    visible = [row["name"] for row in _rows(page) if row["visible"]]
    page.evaluate("f.value = ''; f.dispatchEvent(new Event('input'))")

    assert visible == ["git fetch https://github.com/kubernetes/kubernetes.git --tags --prune"]
    assert all(row["visible"] for row in _rows(page))


def test_expand_all_opens_every_row(loaded: tuple[Page, PageRecord]) -> None:
    """The Expand all button opens every span's details, Collapse all closes them."""
    page, record = loaded
    page.evaluate("document.getElementById('expand').click()")
    opened = page.evaluate("document.querySelectorAll('details.span:not([open])').length")
    page.evaluate("document.getElementById('collapse').click()")
    closed = page.evaluate("document.querySelectorAll('details.span[open]').length")

    assert (opened, closed) == (0, 0)
    assert record.problems() == []


def test_the_harness_sees_errors_and_fetches(tmp_path: Path) -> None:
    """The recorder catches console errors, exceptions and requests (so passing means clean)."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><script>console.error("boom"); throw new Error("bad");</script>'
        '<img src="http://127.0.0.1:9/pixel.png">',
        encoding="utf-8",
    )

    with chromium_page() as page:
        record = page.load(broken.as_uri())

    problems = record.problems()
    assert any("boom" in problem for problem in problems)
    assert any("bad" in problem for problem in problems)
    assert "http://127.0.0.1:9/pixel.png" in record.requests
