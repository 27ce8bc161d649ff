"""The waterfall layout shared by the terminal and HTML views: traces, rows, scale, durations.

Pure functions over ``DecodedSpan`` records. Every span given ends up in exactly one row: spans
whose parent is missing (or that sit on a parent cycle, which a hostile file can contain) are
laid out under their trace's orphan section instead of being dropped.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from opentelemetry.trace import SpanKind, StatusCode

from processor.export.otlp_json import AttributeValue, DecodedSpan

# The attributes that say which job run a trace is, in the order they are shown.
KEY_ATTRIBUTES = (
    "cicd.pipeline.name",
    "cicd.pipeline.result",
    "cicd.pipeline.run.url.full",
    "vcs.repository.name",
    "vcs.change.id",
    "prow.job.type",
    "prow.build_id",
    "error.type",
)

_THOUSAND = 1_000
_NS_PER_US = 1_000
_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_SECONDS_PER_MINUTE = 60
_SECONDS_PER_HOUR = 3_600


class Tone(Enum):
    """How a trace or span ended, for colouring."""

    GOOD = "good"
    BAD = "bad"
    WARNING = "warning"
    NEUTRAL = "neutral"


# cicd.pipeline.result values (semantic conventions) and how they read.
_RESULT_OUTCOMES = {
    "success": Tone.GOOD,
    "failure": Tone.BAD,
    "error": Tone.BAD,
    "timeout": Tone.BAD,
    "cancellation": Tone.WARNING,
    "skip": Tone.WARNING,
}


@dataclass(frozen=True)
class Row:
    """One span placed in its trace's tree.

    ``last_at_level[i]`` says whether the ancestor-or-self at depth ``i + 1`` is the last of its
    siblings, which is what tree guides need. ``orphan_parent_id`` is set on the top span of an
    orphaned subtree: the parent ID that is not in the file.
    """

    span: DecodedSpan
    depth: int
    last_at_level: tuple[bool, ...]
    orphan_parent_id: str | None = None
    duplicate_id: bool = False


@dataclass(frozen=True)
class TraceView:
    """A trace laid out for display."""

    trace_id: str
    title: str
    result: str
    outcome: Tone
    start_ns: int
    end_ns: int
    key_attributes: tuple[tuple[str, str], ...]
    rows: tuple[Row, ...]
    orphan_rows: tuple[Row, ...]

    @property
    def duration_ns(self) -> int:
        """The trace's wall-clock span, first start to last end."""
        return self.end_ns - self.start_ns

    @property
    def span_count(self) -> int:
        """How many rows (spans) the trace shows."""
        return len(self.rows) + len(self.orphan_rows)

    def fraction(self, time_ns: int) -> float:
        """Return where ``time_ns`` falls in the trace's range, clamped to 0..1."""
        scale = max(self.duration_ns, 1)
        return min(max((time_ns - self.start_ns) / scale, 0.0), 1.0)


def build_trace_views(spans: Iterable[DecodedSpan]) -> list[TraceView]:
    """Group spans by trace, drop exact repeats, and lay each trace out; earliest trace first."""
    by_trace: dict[str, list[DecodedSpan]] = defaultdict(list)
    for span in unique_spans(spans):
        by_trace[span.trace_id].append(span)
    views = [_trace_view(trace_id, members) for trace_id, members in by_trace.items()]
    return sorted(views, key=lambda view: (view.start_ns, view.trace_id))


def unique_spans(spans: Iterable[DecodedSpan]) -> list[DecodedSpan]:
    """Return spans in order with exact repeats (same content received twice) removed."""
    kept: list[DecodedSpan] = []
    seen: dict[tuple[str, str], list[DecodedSpan]] = defaultdict(list)
    for span in spans:
        same_id = seen[(span.trace_id, span.span_id)]
        if span not in same_id:
            same_id.append(span)
            kept.append(span)
    return kept


def _start_order(span: DecodedSpan) -> int:
    """Sort by start alone: sorting is stable, so spans that start together keep file order.

    That is the order prowtrace built them in, the artifacts' order: git commands as clonerefs
    ran them, init containers before containers, the queue before the pod.
    """
    return span.start_ns


def _trace_view(trace_id: str, spans: list[DecodedSpan]) -> TraceView:
    span_ids = {span.span_id for span in spans}
    children: dict[str, list[DecodedSpan]] = defaultdict(list)
    tops: list[DecodedSpan] = []
    for span in spans:
        if span.parent_span_id is None or span.parent_span_id not in span_ids:
            tops.append(span)
        else:
            children[span.parent_span_id].append(span)
    for siblings in children.values():
        siblings.sort(key=_start_order)
    tops.sort(key=_start_order)

    placed: set[int] = set()
    layout = _Layout(children, placed, Counter(span.span_id for span in spans))

    roots = [span for span in tops if span.parent_span_id is None]
    rows = layout.subtrees(roots, orphan=False)
    orphans = [span for span in tops if span.parent_span_id is not None]
    orphan_rows = layout.subtrees(orphans, orphan=True)
    # Whatever is still unplaced hangs off a parent cycle: show it as orphaned too.
    for stranded in sorted(spans, key=_start_order):
        if id(stranded) not in placed:
            orphan_rows += layout.subtrees([stranded], orphan=True)

    root = _title_span(roots)
    result, outcome = _result(root) if root is not None else ("", Tone.NEUTRAL)
    return TraceView(
        trace_id=trace_id,
        title=root.name if root is not None else "(no root span in this file)",
        result=result,
        outcome=outcome,
        start_ns=min(span.start_ns for span in spans),
        end_ns=max(max(span.end_ns, span.start_ns) for span in spans),
        key_attributes=_key_attributes(root, spans),
        rows=tuple(rows),
        orphan_rows=tuple(orphan_rows),
    )


@dataclass
class _Layout:
    children: Mapping[str, list[DecodedSpan]]
    placed: set[int]
    id_counts: Mapping[str, int]

    def subtrees(self, tops: list[DecodedSpan], *, orphan: bool) -> list[Row]:
        """Lay out the subtrees under ``tops`` depth-first, each span once (no recursion)."""
        rows: list[Row] = []
        stack: list[tuple[DecodedSpan, tuple[bool, ...], bool]]
        stack = [(span, (), orphan) for span in reversed(tops)]
        while stack:
            span, last_at_level, is_orphan_top = stack.pop()
            if id(span) in self.placed:
                continue
            self.placed.add(id(span))
            rows.append(
                Row(
                    span=span,
                    depth=len(last_at_level),
                    last_at_level=last_at_level,
                    orphan_parent_id=span.parent_span_id if is_orphan_top else None,
                    duplicate_id=self.id_counts[span.span_id] > 1,
                )
            )
            # Children of a repeated span ID hang under the first of its copies only.
            kids = [
                kid for kid in self.children.get(span.span_id, []) if id(kid) not in self.placed
            ]
            for index in reversed(range(len(kids))):
                is_last = index == len(kids) - 1
                stack.append((kids[index], (*last_at_level, is_last), False))
        return rows


def _title_span(roots: list[DecodedSpan]) -> DecodedSpan | None:
    """Pick the job span: a SERVER root if there is one, else the earliest root."""
    for span in roots:
        if span.kind is SpanKind.SERVER:
            return span
    return roots[0] if roots else None


def _result(root: DecodedSpan) -> tuple[str, Tone]:
    declared = root.attributes.get("cicd.pipeline.result")
    if isinstance(declared, str) and declared:
        return declared, _RESULT_OUTCOMES.get(declared.lower(), Tone.NEUTRAL)
    if root.status_code is StatusCode.UNSET:
        return "", Tone.NEUTRAL  # no result declared: no badge rather than "unset"
    return status_label(root.status_code), status_outcome(root.status_code)


def status_label(code: StatusCode) -> str:
    """Return the lowercase name of a status code (``error``, ``ok``, ``unset``)."""
    return code.name.lower()


def status_outcome(code: StatusCode) -> Tone:
    """Map a span status to its colour class."""
    if code is StatusCode.ERROR:
        return Tone.BAD
    if code is StatusCode.OK:
        return Tone.GOOD
    return Tone.NEUTRAL


def _key_attributes(
    root: DecodedSpan | None, spans: list[DecodedSpan]
) -> tuple[tuple[str, str], ...]:
    """Find each key attribute on the root span, its resource, or else any span of the trace."""
    sources: list[Mapping[str, AttributeValue]] = []
    if root is not None:
        sources += [root.attributes, root.resource_attributes]
    sources += [span.attributes for span in spans]
    found: list[tuple[str, str]] = []
    for key in KEY_ATTRIBUTES:
        for source in sources:
            if key in source:
                found.append((key, attribute_text(source[key])))
                break
    return tuple(found)


def attribute_text(value: AttributeValue) -> str:
    """Render an attribute value as text (arrays comma-separated, bytes as hex)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return ", ".join(attribute_text(item) for item in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {attribute_text(v)}" for k, v in value.items()) + "}"
    if value is None:
        return ""
    return str(value)


def format_duration(nanoseconds: int) -> str:
    """Format a duration for people: ``850µs``, ``850ms``, ``12.3s``, ``4m05s``, ``2h03m``."""
    if nanoseconds <= 0:
        return "0s"
    # Round in the unit shown, then check it still fits that unit (999.7ms shows as 1.0s).
    micros = round(nanoseconds / _NS_PER_US)
    if micros < _THOUSAND:
        return f"{micros}µs"
    millis = round(nanoseconds / _NS_PER_MS)
    if millis < _THOUSAND:
        return f"{millis}ms"
    tenths = round(nanoseconds / (_NS_PER_S // 10))
    if tenths < 10 * _SECONDS_PER_MINUTE:
        return f"{tenths // 10}.{tenths % 10}s"
    seconds = round(nanoseconds / _NS_PER_S)
    if seconds < _SECONDS_PER_HOUR:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    minutes = round(nanoseconds / (_SECONDS_PER_MINUTE * _NS_PER_S))
    return f"{minutes // 60}h{minutes % 60:02d}m"


# Control, format (bidi overrides, zero-width), separator and lone-surrogate characters.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible_text(text: str, *, keep: str = "") -> str:
    r"""Escape characters that could steer a terminal or page; the ones in ``keep`` stay.

    Span names and attribute values come from CI jobs: an ANSI escape, a bidi override or a
    lone surrogate in them must show up as ``\x1b``-style text, not act.
    """
    if text.isprintable():
        return text
    return "".join(
        char.encode("unicode_escape", "backslashreplace").decode("ascii")
        if unicodedata.category(char) in _UNSAFE_CATEGORIES and char not in keep
        else char
        for char in text
    )
