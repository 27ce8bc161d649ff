"""``prowtrace show``: traces from an OTLP/JSON file as waterfalls, in the terminal or as HTML.

All text shown comes from CI jobs and is treated as hostile: it is never interpreted as rich
markup, and control characters (ANSI escapes, bidi overrides, newlines) are shown escaped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.text import Text

from processor.export.otlp_json import DecodedSpan, MalformedOtlpJson, read_otlp_json
from processor.tools.waterfall import (
    Row,
    Tone,
    TraceView,
    build_trace_views,
    format_duration,
    status_outcome,
    visible_text,
)
from processor.tools.waterfall_html import render_html

__all__ = ["render_html", "render_waterfall", "show_main"]

_OUTCOME_STYLES = {
    Tone.GOOD: "green",
    Tone.BAD: "red",
    Tone.WARNING: "yellow",
    Tone.NEUTRAL: "blue",
}
_DURATION_WIDTH = 8
_MIN_BAR_WIDTH = 10
_MIN_NAME_WIDTH = 16
_MAX_GUIDE_LEVELS = 12  # deeper rows show only the innermost levels' guides
_NAME_SHARE = 0.45  # the name column never takes more of the width than this


@dataclass(frozen=True)
class _Glyphs:
    full: str
    partial: str  # index n = a cell filled n/8 from the left; index 0 unused
    tee: str
    corner: str
    pipe: str
    blank: str
    orphan: str
    error: str
    ellipsis: str
    ascii_only: bool

    def show(self, text: str) -> str:
        """Make text from a span safe to print, and encodable on an ASCII-only terminal."""
        safe = visible_text(text)
        return safe.encode("ascii", "backslashreplace").decode("ascii") if self.ascii_only else safe

    def duration(self, nanoseconds: int) -> str:
        """Format a duration with the glyphs this terminal has."""
        text = format_duration(nanoseconds)
        return text.replace("µ", "u") if self.ascii_only else text


_UNICODE = _Glyphs("█", " ▏▎▍▌▋▊▉", "├─", "└─", "│ ", "  ", "⚠", "✗ ", "…", ascii_only=False)
_ASCII = _Glyphs("#", "        ", "|-", "`-", "| ", "  ", "!", "x ", "~", ascii_only=True)


def render_waterfall(spans: Iterable[DecodedSpan], console: Console) -> None:
    """Print one waterfall per trace: title, key attributes, then the nested span rows."""
    for index, view in enumerate(build_trace_views(spans)):
        if index:
            console.print()
        _render_trace(view, console)


def _render_trace(view: TraceView, console: Console) -> None:
    glyphs = _ASCII if console.options.ascii_only else _UNICODE
    width = max(console.width, _MIN_NAME_WIDTH + _MIN_BAR_WIDTH + _DURATION_WIDTH + 2)
    title = Text()
    title.append(glyphs.show(view.title), style="bold")
    title.append(f"  trace {view.trace_id}", style="dim")
    if view.result:
        title.append("  ")
        title.append(f" {glyphs.show(view.result).upper()} ", style=f"bold reverse {_style(view)}")
    title.append(f"  {glyphs.duration(view.duration_ns)}, {view.span_count} spans", style="dim")
    _print_line(console, title, glyphs)
    for key, value in view.key_attributes:
        line = Text("  ")
        line.append(f"{key}: ", style="dim")
        line.append(glyphs.show(value))
        console.print(line, soft_wrap=True)  # one line, so terminals can link URLs

    labelled = [(row, _row_label(row, glyphs)) for row in view.rows]
    labelled += [
        (row, _row_label(row, glyphs, under_marker=last))
        for row, last in zip(view.orphan_rows, _last_orphan_flags(view.orphan_rows), strict=True)
    ]
    natural = max(label.cell_len for _, label in labelled)
    name_width = max(_MIN_NAME_WIDTH, min(natural, int(width * _NAME_SHARE)))
    bar_width = width - name_width - _DURATION_WIDTH - 2

    header = Text(" " * name_width + " ", style="dim")
    header.append(_axis(view, bar_width, glyphs), style="dim")
    header.append(" " + "duration".rjust(_DURATION_WIDTH), style="dim")
    _print_line(console, header, glyphs)
    for index, (row, label) in enumerate(labelled):
        if index == len(view.rows):
            marker = f"{glyphs.orphan} orphaned spans: their parent span is not in this file"
            _print_line(console, Text(marker, style="yellow"), glyphs)
        line = _row_line(
            view, row, label, name_width=name_width, bar_width=bar_width, glyphs=glyphs
        )
        _print_line(console, line, glyphs)


def _style(view: TraceView) -> str:
    return _OUTCOME_STYLES[view.outcome]


def _print_line(console: Console, line: Text, glyphs: _Glyphs) -> None:
    # rich's ellipsis character is not ASCII
    console.print(line, no_wrap=True, overflow="crop" if glyphs.ascii_only else "ellipsis")


def _last_orphan_flags(rows: tuple[Row, ...]) -> list[bool]:
    """Say for each orphan row whether its subtree's top is the last under the orphan marker."""
    tops = [index for index, row in enumerate(rows) if row.depth == 0]
    last_top = tops[-1] if tops else 0
    return [index >= last_top for index in range(len(rows))]


def _row_label(row: Row, glyphs: _Glyphs, *, under_marker: bool | None = None) -> Text:
    """Return a row's tree guides and name; ``under_marker`` places it in the orphan section."""
    levels = row.last_at_level if under_marker is None else (under_marker, *row.last_at_level)
    guides = "".join(glyphs.blank if last else glyphs.pipe for last in levels[:-1])
    if levels:
        guides += glyphs.corner if levels[-1] else glyphs.tee
    if len(levels) > _MAX_GUIDE_LEVELS:  # very deep trees: keep room for the name
        guides = glyphs.ellipsis + guides[-2 * (_MAX_GUIDE_LEVELS - 1) :]
    span = row.span
    is_error = status_outcome(span.status_code) is Tone.BAD
    label = Text(guides, style="dim")
    if is_error:
        label.append(glyphs.error, style="bold red")
    label.append(glyphs.show(span.name), style="red" if is_error else "")
    if is_error and span.status_message:
        label.append(f"  {glyphs.show(span.status_message)}", style="dim red")
    if row.orphan_parent_id is not None:
        label.append(f"  (parent {row.orphan_parent_id} missing)", style="dim yellow")
    if row.duplicate_id:
        label.append("  (span ID repeated with other content)", style="dim yellow")
    return label


def _row_line(  # noqa: PLR0913 - the columns of one row
    view: TraceView, row: Row, label: Text, *, name_width: int, bar_width: int, glyphs: _Glyphs
) -> Text:
    name = label.copy()
    if name.cell_len > name_width:
        name.truncate(name_width - len(glyphs.ellipsis), overflow="crop")
        name.append(glyphs.ellipsis)
    name.truncate(name_width, pad=True)
    span = row.span
    line = Text()
    line.append_text(name)
    line.append(" ")
    bar = bar_cells(view.fraction(span.start_ns), view.fraction(span.end_ns), bar_width, glyphs)
    line.append(bar, style=_OUTCOME_STYLES[status_outcome(span.status_code)])
    line.append(" ")
    line.append(glyphs.duration(span.end_ns - span.start_ns).rjust(_DURATION_WIDTH))
    return line


def bar_cells(start: float, end: float, width: int, glyphs: _Glyphs = _UNICODE) -> str:
    """Draw a bar from ``start`` to ``end`` (fractions of the trace) in ``width`` cells.

    The bar begins at the cell holding ``start``; its right edge has 1/8-cell resolution;
    even an instant span gets a visible sliver.
    """
    first = min(int(start * width), width - 1)
    eighths = round((max(end, start) * width - first) * 8)
    eighths = min(max(eighths, 1), (width - first) * 8)
    full, remainder = divmod(eighths, 8)
    bar = glyphs.full * full + (glyphs.partial[remainder] if remainder else "")
    if not bar.strip():  # the ASCII set has no partial cells
        bar = glyphs.full
    return (" " * first + bar).ljust(width)


def _axis(view: TraceView, width: int, glyphs: _Glyphs) -> str:
    """Label the timeline: 0 at the left, the middle, and the total at the right."""
    end = glyphs.duration(view.duration_ns)
    middle = glyphs.duration(view.duration_ns // 2)
    axis = list("0".ljust(width))
    axis[width - len(end) :] = end
    start = width // 2 - len(middle) // 2
    if start > 2 and start + len(middle) < width - len(end) - 1:  # noqa: PLR2004 - gap after "0"
        axis[start : start + len(middle)] = middle
    return "".join(axis)


def show_main(
    path: str | None,
    html_out: str | None,
    stream: TextIO,
    *,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``prowtrace show``: read ``path`` (``None`` or ``-``: stdin), render, return the status.

    Writes the terminal waterfall to ``stream``, or with ``html_out`` the HTML page to that
    file (``-``: to ``stream``). Returns 0 on success, 2 if the input cannot be read or is not
    OTLP/JSON, 1 if the HTML file cannot be written; errors go to ``stderr``.
    """
    errors = stderr if stderr is not None else sys.stderr
    source = "<stdin>" if path in {None, "-"} else str(path)
    try:
        spans = _read_spans(path, stdin if stdin is not None else sys.stdin)
    except MalformedOtlpJson as error:
        print(
            f"prowtrace show: {source}: {error}\n"
            "  (expected OTLP/JSON: one ExportTraceServiceRequest object per line)",
            file=errors,
        )
        return 2
    except UnicodeDecodeError as error:
        print(f"prowtrace show: {source}: not UTF-8 text ({error.reason})", file=errors)
        return 2
    except OSError as error:
        print(f"prowtrace show: cannot read {source}: {error.strerror or error}", file=errors)
        return 2

    if html_out is not None:
        return _write_html(spans, html_out, stream, errors)
    if not spans:
        print(f"No spans in {source}.", file=stream)
        return 0
    render_waterfall(spans, Console(file=stream, highlight=False))
    return 0


def _read_spans(path: str | None, stdin: TextIO) -> list[DecodedSpan]:
    if path in {None, "-"}:
        return read_otlp_json(stdin)
    with Path(str(path)).open(encoding="utf-8") as lines:
        return read_otlp_json(lines)


def _write_html(spans: list[DecodedSpan], html_out: str, stream: TextIO, errors: TextIO) -> int:
    page = render_html(spans)
    if html_out == "-":
        stream.write(page)
        return 0
    try:
        Path(html_out).write_text(page, encoding="utf-8")
    except OSError as error:
        print(f"prowtrace show: cannot write {html_out}: {error.strerror or error}", file=errors)
        return 1
    views = build_trace_views(spans)
    spans_shown = sum(view.span_count for view in views)
    print(f"Wrote {len(views)} traces ({spans_shown} spans) to {html_out}", file=stream)
    return 0
