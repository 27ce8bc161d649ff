"""The static HTML waterfall: every span a row, to scale, self-contained, hostile text escaped."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from html.parser import HTMLParser

from opentelemetry.trace import SpanKind, StatusCode
from show_fixture import fixture_spans

from processor.export.otlp_json import DecodedSpan, spans_from_sdk
from processor.tools.show import render_html

SECOND = 1_000_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


class _Page(HTMLParser):
    """Collect the start tags (with attributes) and the script bodies of a page."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def with_class(self, tag: str, css_class: str) -> list[dict[str, str]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and css_class in attrs.get("class", "").split()
        ]


def _fixture() -> list[DecodedSpan]:
    return spans_from_sdk(fixture_spans())


def _span(span_id: int, parent: int | None, start_s: float, end_s: float, name: str) -> DecodedSpan:
    return DecodedSpan(
        trace_id=TRACE,
        span_id=f"{span_id:016x}",
        parent_span_id=f"{parent:016x}" if parent is not None else None,
        name=name,
        kind=SpanKind.INTERNAL,
        start_ns=round(start_s * SECOND),
        end_ns=round(end_s * SECOND),
    )


def test_every_span_is_a_row() -> None:
    """Each span of the file is one details row carrying its span ID."""
    page = _Page(render_html(_fixture()))

    rows = [attrs["data-span-id"] for attrs in page.with_class("details", "span")]
    assert sorted(rows) == sorted(span.span_id for span in _fixture())


def test_each_trace_is_a_section_with_title_and_key_attributes() -> None:
    """Traces get a section with the root name, result badge and key attributes."""
    page = render_html(_fixture())

    assert len(_Page(page).with_class("section", "trace")) == 2
    assert '<span class="title">RUN ci-kubernetes-e2e</span>' in page
    assert '<span class="badge bad">failure</span>' in page
    assert "<dt>vcs.change.id</dt><dd>128734</dd>" in page


def test_rows_are_indented_by_depth() -> None:
    """A row's depth (for indentation) follows the parent chain."""
    page = _Page(render_html(_fixture()))

    depths = {attrs["data-search"]: attrs["style"] for attrs in page.with_class("details", "span")}
    assert depths["run ci-kubernetes-e2e 6c0f3b529a4e4d1f"] == "--depth:0"
    fetch = next(key for key in depths if key.startswith("git fetch"))
    assert depths[fetch] == "--depth:4"


def test_bars_are_positioned_to_scale() -> None:
    """A bar's left offset and width are its span's share of the trace's time range."""
    spans = [_span(1, None, 0, 200, "root"), _span(2, 1, 50, 100, "middle")]
    page = _Page(render_html(spans))

    bars = [attrs["style"] for attrs in page.with_class("span", "bar")]
    assert bars == ["left:0.0000%;width:100.0000%", "left:25.0000%;width:25.0000%"]


def test_durations_and_axis_are_shown() -> None:
    """Rows show human durations and the axis is labelled from 0 to the total."""
    page = render_html([_span(1, None, 0, 245, "root"), _span(2, 1, 0, 0.85, "quick")])

    assert '<span class="dur">4m05s</span>' in page
    assert '<span class="dur">850ms</span>' in page
    assert '<span style="left:100%">4m05s</span>' in page


def test_status_colours_follow_span_status() -> None:
    """ERROR rows get the bad class, OK rows the good class, UNSET rows neutral."""
    spans = [
        replace(_span(1, None, 0, 3, "root"), status_code=StatusCode.ERROR),
        replace(_span(2, 1, 0, 1, "fine"), status_code=StatusCode.OK),
        _span(3, 1, 1, 2, "plain"),
    ]
    page = _Page(render_html(spans))

    classes = [attrs["class"] for attrs in page.with_class("details", "span")]
    assert classes == ["span st-bad", "span st-good", "span st-neutral"]


def test_span_details_hold_attributes_and_events() -> None:
    """Each row's details list its attributes, events, links and resource."""
    page = render_html(_fixture())

    assert "<tr><th>process.exit.code</th><td>1</td></tr>" in page
    assert "<th>exception</th><td>exception.message=3 tests failed</td>" in page
    assert "<h4>Links</h4>" in page
    assert "<tr><th>service.name</th><td>prowtrace</td></tr>" in page


def test_orphans_are_shown_under_a_marker() -> None:
    """A span whose parent is missing is still a row, after the orphan marker."""
    page = render_html([_span(1, None, 0, 10, "root"), _span(2, 99, 1, 2, "lost-child")])

    assert page.index("Orphaned spans") < page.index("lost-child")
    assert "parent 0000000000000063 missing" in page


def test_hostile_attribute_values_are_escaped() -> None:
    """A <script> in names and attribute values is text, not markup."""
    spans = [
        replace(
            _span(1, None, 0, 1, HOSTILE),
            attributes={"cicd.pipeline.name": HOSTILE, HOSTILE: HOSTILE},
            status_code=StatusCode.ERROR,
            status_message=HOSTILE,
        )
    ]
    page = render_html(spans)
    parsed = _Page(page)

    assert HOSTILE not in page
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    assert [name for name, _ in parsed.tags].count("script") == 1
    assert [name for name, _ in parsed.tags].count("img") == 0


def test_control_characters_are_made_visible() -> None:
    """Bidi overrides and escape characters in names are shown as escapes."""
    page = render_html([_span(1, None, 0, 1, "a\u202eb\x1bc")])

    assert "a\\u202eb\\x1bc" in page


def test_only_web_urls_become_links() -> None:
    """An http(s) URL attribute is a link; a javascript: URL stays plain text."""
    safe = replace(
        _span(1, None, 0, 1, "a"),
        attributes={"cicd.pipeline.run.url.full": "https://prow.example/view/1?a=1&b=2"},
    )
    evil = replace(
        _span(1, None, 0, 1, "a"),
        trace_id="1" * 32,
        attributes={"cicd.pipeline.run.url.full": "javascript:alert(1)"},
    )
    page = _Page(render_html([safe, evil]))

    links = [attrs["href"] for name, attrs in page.tags if name == "a"]
    assert links == ["https://prow.example/view/1?a=1&b=2"]


def test_the_page_references_nothing_outside_itself() -> None:
    """No tag loads anything: no src, no stylesheet link, no CSS url() or @import."""
    page = render_html(_fixture())
    parsed = _Page(page)

    assert not [attrs for _, attrs in parsed.tags if "src" in attrs]
    assert "link" not in [name for name, _ in parsed.tags]
    assert "url(" not in page
    assert "@import" not in page


def test_the_csp_forbids_loads_and_allows_only_the_inline_script() -> None:
    """The page's Content-Security-Policy blocks all fetches and pins its one script's hash."""
    parsed = _Page(render_html(_fixture()))
    policy = next(
        attrs["content"]
        for name, attrs in parsed.tags
        if name == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    )
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()

    assert "default-src 'none'" in policy
    assert re.search(r"script-src 'sha256-([^']+)'", policy) is not None
    assert f"'sha256-{digest}'" in policy


def test_an_empty_file_renders_a_page_saying_so() -> None:
    """With no spans the page still renders and says there is nothing."""
    assert "No spans in this file." in render_html([])
