"""The terminal waterfall: titles, key attributes, nesting, bars to scale, colours, width."""

from __future__ import annotations

import io
from dataclasses import replace

from opentelemetry.trace import SpanKind, StatusCode
from rich.cells import cell_len
from rich.console import Console
from show_fixture import fixture_spans

from processor.export.otlp_json import DecodedSpan, spans_from_sdk
from processor.tools.show import bar_cells, render_waterfall

SECOND = 1_000_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _render(spans: list[DecodedSpan], width: int = 160, *, colour: bool = False) -> str:
    stream = io.StringIO()
    console = Console(
        file=stream,
        width=width,
        force_terminal=colour,
        color_system="standard" if colour else None,
        legacy_windows=False,
    )
    render_waterfall(spans, console)
    return stream.getvalue()


def _fixture() -> list[DecodedSpan]:
    return spans_from_sdk(fixture_spans())


def _line_with(text: str, needle: str) -> str:
    """Return the first span row (a line with a bar) that contains ``needle``."""
    return next(
        line for line in text.splitlines() if needle in line and set(line) & set("█▏▎▍▌▋▊▉")
    )


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


def test_each_trace_has_a_title_with_name_id_and_result() -> None:
    """The title line carries the root span name, the trace ID and the result."""
    title = _render(_fixture()).splitlines()[0]

    assert "RUN ci-kubernetes-e2e" in title
    assert "6c0f3b529a4e4d1f8b273e5a90d1c4f7" in title
    assert "FAILURE" in title


def test_key_attributes_are_listed_under_the_title() -> None:
    """The job's key attributes that are present appear, URL unbroken."""
    text = _render(_fixture())

    assert "  vcs.change.id: 128734" in text
    assert "  prow.job.type: presubmit" in text
    assert (
        "cicd.pipeline.run.url.full: https://prow.k8s.io/view/gs/kubernetes-ci-logs/logs/"
        "ci-kubernetes-e2e/1984650123456789504"
    ) in text


def test_every_span_is_a_row() -> None:
    """Each span name of the fixture appears in the output."""
    text = _render(_fixture(), width=220)

    for span in _fixture():
        assert span.name in text


def test_rows_are_nested_with_tree_guides() -> None:
    """Children are drawn under their parent with tree guides."""
    text = _render(_fixture())

    assert "\n  ├─init/clonerefs " in text
    assert "\n  │ ├─clone kubernetes/kubernetes " in text
    assert "\n  │ │ ├─git init /home/prow/go/src/k8s.io/kubernetes " in text
    # test and sidecar start together: they keep podinfo.json's order, test first
    assert "\n  ├─✗ container/test" in text
    assert "\n  └─container/sidecar" in text


def test_durations_are_shown_for_people() -> None:
    """Each row ends with a human duration."""
    text = _render(_fixture())

    assert _line_with(text, "├─queue").endswith("4.2s")
    assert _line_with(text, "└─pod pull-kubernetes-unit").endswith("12m11s")
    assert _line_with(text, "git config").endswith("4ms")


def test_bars_are_drawn_to_scale() -> None:
    """A span covering the second half of its trace has a bar over the timeline's right half."""
    spans = [_span(1, None, 0, 100, "root"), _span(2, 1, 50, 100, "second-half")]
    text = _render(spans, width=100)
    axis_start = text.splitlines()[1].index("0")  # the timeline's first column
    line = _line_with(text, "second-half")
    bar_width = len(line) - axis_start - 9  # a space and the 8-cell duration column follow

    assert line.index("█") - axis_start == bar_width // 2
    assert line.count("█") == bar_width - bar_width // 2


def test_bar_cells_fill_the_right_fraction() -> None:
    """Bars cover the given fraction of the width, with an eighth-cell right edge."""
    assert bar_cells(0.0, 1.0, 10) == "█" * 10
    assert bar_cells(0.5, 1.0, 10) == " " * 5 + "█" * 5
    assert bar_cells(0.0, 0.25, 10) == "██▌       "


def test_an_instant_span_still_gets_a_sliver() -> None:
    """A zero-length span is drawn as a thin mark, not nothing."""
    assert bar_cells(0.3, 0.3, 10) == "   ▏      "


def test_errors_are_red_and_marked() -> None:
    """ERROR spans carry a cross and red colour, with their status message."""
    line = _line_with(_render(_fixture(), colour=True), "container/test")

    assert "✗" in line
    assert "\x1b[31m" in line
    assert "exit code 1 (Error)" in line


def test_orphans_are_shown_under_a_marker() -> None:
    """Spans whose parent is missing are listed after an orphan marker, never dropped."""
    spans = [_span(1, None, 0, 10, "root"), _span(2, 99, 1, 2, "lost-child")]
    text = _render(spans)

    marker = text.index("orphaned spans")
    assert text.index("lost-child") > marker
    assert "parent 0000000000000063 missing" in text


def test_repeated_spans_are_shown_once() -> None:
    """A span received twice with identical content is one row."""
    spans = _fixture()

    assert _render(spans + spans) == _render(spans)


def test_long_traces_fit_the_width() -> None:
    """With hundreds of spans and long names every row fits a narrow terminal."""
    spans = [_span(1, None, 0, 600, "root")] + [
        _span(index, 1 if index % 10 == 2 else index - 1, index, index + 5, f"step {index} " * 8)
        for index in range(2, 302)
    ]
    lines = _render(spans, width=72).splitlines()

    rows = [line for line in lines if not line.startswith("  ") or "─" in line]
    assert len(rows) >= 300
    assert max(cell_len(line) for line in rows) <= 72


def test_hostile_names_cannot_drive_the_terminal() -> None:
    """Escape sequences are shown escaped and rich markup is shown literally."""
    spans = [
        replace(
            _span(1, None, 0, 1, "evil\x1b[2J[bold red]markup[/]"),
            attributes={"cicd.pipeline.name": "\x1b]8;;http://x\x07link"},
        )
    ]
    text = _render(spans, colour=True)

    assert "\x1b[2J" not in text
    assert "\x1b]8" not in text
    assert "evil\\x1b[2J[bold red]markup[/]" in text
    assert "\\x1b]8;;http://x\\x07link" in text


def test_an_ok_status_is_green() -> None:
    """OK spans draw green bars."""
    spans = [replace(_span(1, None, 0, 1, "fine"), status_code=StatusCode.OK)]

    assert "\x1b[32m█" in _line_with(_render(spans, colour=True), "fine")


def test_an_ascii_terminal_gets_ascii_bars() -> None:
    """On a terminal that cannot encode Unicode, bars and guides are plain ASCII."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    render_waterfall(_fixture(), Console(file=stream, width=120, color_system=None))
    stream.flush()
    text = raw.getvalue().decode("ascii")

    assert "|-x container/test" in text
    assert "#" * 20 in text


def test_deep_nesting_leaves_room_for_names() -> None:
    """Rows 40 levels deep still show their names: only the innermost guides are drawn."""
    spans = [_span(1, None, 0, 100, "root")] + [
        _span(index, index - 1, index, 100, f"d{index}") for index in range(2, 42)
    ]
    text = _render(spans, width=80)

    assert "\n…" + "  " * 10 + "└─d41 " in text
