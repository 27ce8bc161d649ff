"""The span model the core produces: plain records, no OpenTelemetry SDK types.

A :class:`SpanRecord` names its place in the job's tree by ``path`` (``""`` is the root) and its
parent by ``parent``; :func:`identify` turns records into :class:`TraceSpan` with the deterministic
IDs of :mod:`processor.core.ids`. Conversion to SDK spans lives at the export edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from processor.core.ids import JobIdentity, span_id_for

AttributeValue = str | bool | int | float | tuple[str, ...] | tuple[int, ...]
Attributes = Mapping[str, AttributeValue]


class SpanKind(StrEnum):
    """The OpenTelemetry span kinds the core uses."""

    SERVER = "server"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A timestamped annotation on a span (pod events, revivals)."""

    name: str
    time_ns: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One span of a job's trace, placed in the tree by path."""

    path: str
    parent: str | None
    name: str
    start_ns: int
    end_ns: int
    kind: SpanKind = SpanKind.INTERNAL
    attributes: Attributes = field(default_factory=dict)
    events: tuple[SpanEvent, ...] = ()
    error: str | None = None
    """``None``: status unset. A string: status ERROR with this description."""


@dataclass(frozen=True, slots=True)
class TraceSpan:
    """A span record with its trace, span and parent span IDs resolved."""

    trace_id: int
    span_id: int
    parent_span_id: int | None
    record: SpanRecord


def fit_inside_parents(records: Sequence[SpanRecord]) -> list[SpanRecord]:
    """Clamp every span into its parent's interval and make no duration negative.

    Artifact times come from different clocks at one-second precision; the parent's interval is
    the better-sourced one (prowjob.json for the root), so children yield to it. Records must
    list parents before children. Events are clamped into their span too.
    """
    placed: dict[str, SpanRecord] = {}
    fitted: list[SpanRecord] = []
    for record in records:
        start, end = record.start_ns, max(record.start_ns, record.end_ns)
        parent = placed.get(record.parent) if record.parent is not None else None
        if parent is not None:
            start = min(max(start, parent.start_ns), parent.end_ns)
            end = min(max(end, start), parent.end_ns)
        events = tuple(
            event
            if start <= event.time_ns <= end
            else replace(event, time_ns=min(max(event.time_ns, start), end))
            for event in record.events
        )
        # Most spans already fit: copying a frozen record only to change nothing costs time.
        unchanged = start == record.start_ns and end == record.end_ns and events == record.events
        adjusted = (
            record if unchanged else replace(record, start_ns=start, end_ns=end, events=events)
        )
        placed[record.path] = adjusted
        fitted.append(adjusted)
    return fitted


def identify(identity: JobIdentity, records: Iterable[SpanRecord]) -> list[TraceSpan]:
    """Give each record its deterministic IDs; the root (path ``""``) gets the root span ID."""
    spans = []
    ids: dict[str, int] = {}  # a parent's ID is hashed once, not once per child

    def id_of(path: str) -> int:
        if path not in ids:
            ids[path] = span_id_for(identity, path)
        return ids[path]

    for record in records:
        parent_id = None if record.parent is None else id_of(record.parent)
        spans.append(
            TraceSpan(
                trace_id=identity.trace_id,
                span_id=id_of(record.path),
                parent_span_id=parent_id,
                record=record,
            )
        )
    return spans
