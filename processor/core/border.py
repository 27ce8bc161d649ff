r"""The border every span record crosses before export: whatever the artifacts held, it fits OTLP.

Artifacts are written by jobs, and jobs run untrusted code, so anything can be in them: times
before 1970 or after 2554 (outside OTLP's unsigned 64-bit nanoseconds), lone UTF-16 surrogates
(``"\ud800"`` is valid JSON but not UTF-8, so protobuf refuses it), 200k-character names,
integers beyond int64, 780k clone commands, 20k pod events. Any of these used to make the export
fail for every message sharing a request. :func:`enforce` is applied by the pipeline to a job's
records, after they are built and before IDs are derived, so no build site has to remember it:

* every string (span and event names, attribute keys and values, status descriptions) has
  invalid Unicode replaced by U+FFFD, secrets stripped (:func:`processor.core.redact.strip_secrets`)
  and is capped at :data:`MAX_ATTRIBUTE_CHARS` (the README's promise);
* integers are clamped into int64, times into what OTLP can carry, end never before start;
* at most :data:`MAX_ATTRIBUTES` attributes and :data:`MAX_EVENTS_PER_SPAN` events per span
  (the OpenTelemetry SDK's own defaults) and :data:`MAX_SPANS_PER_JOB` spans per job;
* a job's spans stay under :data:`MAX_JOB_BYTES` of estimated OTLP request size: past it, later
  spans lose their events, then are dropped with their descendants (the root comes first and
  always stays), so one job always fits one export request below gRPC's 4 MiB default.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from processor.core.redact import MAX_ATTRIBUTE_CHARS, cap, strip_secrets
from processor.core.spans import AttributeValue, SpanEvent, SpanRecord

MAX_ATTRIBUTES = 128
"""Attributes per span and per event (the SDK's ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` default)."""
MAX_EVENTS_PER_SPAN = 128
"""The SDK's ``OTEL_SPAN_EVENT_COUNT_LIMIT`` default."""
MAX_ARRAY_ITEMS = 128
MAX_SPANS_PER_JOB = 10_000
"""Far above any real job (the corpus's largest has a few dozen), far below 780k clone commands."""
MAX_REQUEST_BYTES = 3 * 1024 * 1024
"""Estimated bytes of one export request: below gRPC's and the Collector's 4 MiB default with
room for the estimate's error (it counts generously, see :func:`estimated_bytes`)."""
MAX_JOB_BYTES = 2 * 1024 * 1024
"""Estimated bytes of one job's spans, so one job always fits a request with others."""
MAX_TIME_NS = 2**64 - 1
"""OTLP times are fixed64 nanoseconds since 1970: 2554-07-21 is the last one it can carry."""
_INT64 = (-(2**63), 2**63 - 1)

# Overheads of the OTLP protobuf encoding, rounded up: field tags, lengths, IDs, times, flags.
_SPAN_OVERHEAD = 96
_EVENT_OVERHEAD = 24
_ATTRIBUTE_OVERHEAD = 12


@dataclass(frozen=True, slots=True)
class Enforced:
    """A job's records as they may be exported, and what had to be left out to get there."""

    records: tuple[SpanRecord, ...]
    dropped_spans: int = 0
    dropped_events: int = 0
    dropped_attributes: int = 0

    @property
    def trimmed(self) -> bool:
        """True when anything was left out (worth a warning: the job was hostile or huge)."""
        return bool(self.dropped_spans or self.dropped_events or self.dropped_attributes)


def enforce(records: Sequence[SpanRecord]) -> Enforced:
    """Return ``records`` made safe to export (see the module docstring); parents come first."""
    kept: list[SpanRecord] = []
    dropped: set[str] = set()
    dropped_events = dropped_attributes = 0
    budget = MAX_JOB_BYTES
    for record in records:
        if record.parent is not None and (
            record.parent in dropped
            or len(kept) >= MAX_SPANS_PER_JOB
            # Checked before cleaning, so a flood of fat spans past the budget costs no scrubbing.
            or _capped_bytes(record) > budget
        ):
            dropped.add(record.path)
            continue
        clean, lost_attributes = _clean_record(record)
        size = record_bytes(clean)
        if size > budget and clean.parent is not None:
            dropped.add(record.path)
            continue
        events, lost_event_attributes, size = _clean_events(record, clean, budget - size)
        budget -= size
        dropped_events += len(record.events) - len(events)
        dropped_attributes += lost_attributes + lost_event_attributes
        kept.append(replace(clean, events=events))
    return Enforced(tuple(kept), len(dropped), dropped_events, dropped_attributes)


def _capped_bytes(record: SpanRecord) -> int:
    """Estimate a record's size without events as capping would leave it (before scrubbing)."""
    return _SPAN_OVERHEAD + sum(
        min(len(key), MAX_ATTRIBUTE_CHARS) + _ATTRIBUTE_OVERHEAD + 10
        if not isinstance(value, str)
        else min(len(key), MAX_ATTRIBUTE_CHARS) + min(len(value), MAX_ATTRIBUTE_CHARS)
        for key, value in list(record.attributes.items())[:MAX_ATTRIBUTES]
    )


def text(value: str, limit: int = MAX_ATTRIBUTE_CHARS) -> str:
    """Return ``value`` as valid Unicode, without secrets, at most ``limit`` characters."""
    if limit == MAX_ATTRIBUTE_CHARS and len(value) <= _REMEMBERED_CHARS:
        return _remembered_text(value)
    return cap(strip_secrets(valid_unicode(value[: limit * 4])), limit)


_REMEMBERED_CHARS = 256
"""Short strings repeat across a job's spans and across jobs (attribute keys, job, repository
and container names): scrubbing them was half the pipeline's CPU, so their results are kept.
Only short ones, so the cache stays small (8,192 x 256 characters) whatever the input."""


@functools.lru_cache(maxsize=8192)
def _remembered_text(value: str) -> str:
    return cap(strip_secrets(valid_unicode(value)), MAX_ATTRIBUTE_CHARS)


def valid_unicode(value: str) -> str:
    """Replace lone surrogates (valid in JSON and Python, not in UTF-8) with U+FFFD."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16, well-formed surrogate pairs survive and only lone halves are replaced.
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def clamp_time(ns: int) -> int:
    """Clamp a time in nanoseconds since 1970 into what OTLP can carry."""
    return min(max(ns, 0), MAX_TIME_NS)


def _clean_record(record: SpanRecord) -> tuple[SpanRecord, int]:
    """Clean everything but the events (see :func:`_clean_events`); count attributes left out."""
    start = clamp_time(record.start_ns)
    end = max(start, clamp_time(record.end_ns))
    attributes, lost_attributes = _clean_attributes(record.attributes)
    clean = replace(
        record,
        name=text(record.name),
        start_ns=start,
        end_ns=end,
        attributes=attributes,
        events=(),
        error=None if record.error is None else text(record.error),
    )
    return clean, lost_attributes


def _clean_events(
    record: SpanRecord, clean: SpanRecord, budget: int
) -> tuple[tuple[SpanEvent, ...], int, int]:
    """Clean the first events that fit ``budget``; return them, attributes lost, bytes used."""
    events: list[SpanEvent] = []
    used = record_bytes(clean)
    lost_attributes = 0
    for event in record.events[:MAX_EVENTS_PER_SPAN]:
        event_attributes, lost = _clean_attributes(event.attributes)
        cleaned = SpanEvent(
            name=text(event.name),
            time_ns=min(max(clamp_time(event.time_ns), clean.start_ns), clean.end_ns),
            attributes=event_attributes,
        )
        size = _event_bytes(cleaned)
        if size > budget:
            break
        budget -= size
        used += size
        lost_attributes += lost
        events.append(cleaned)
    return tuple(events), lost_attributes, used


def _event_bytes(event: SpanEvent) -> int:
    return _EVENT_OVERHEAD + _text_bytes(event.name) + _attributes_bytes(event.attributes)


def _clean_attributes(
    attributes: Mapping[str, AttributeValue],
) -> tuple[dict[str, AttributeValue], int]:
    clean: dict[str, AttributeValue] = {}
    for key, value in list(attributes.items())[:MAX_ATTRIBUTES]:
        clean[text(key)] = _clean_value(value)
    return clean, max(0, len(attributes) - MAX_ATTRIBUTES)


def _clean_value(value: AttributeValue) -> AttributeValue:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return min(max(value, _INT64[0]), _INT64[1])
    items = value[:MAX_ARRAY_ITEMS]
    if all(isinstance(item, str) for item in items):
        return tuple(text(str(item)) for item in items)
    return tuple(min(max(int(item), _INT64[0]), _INT64[1]) for item in items)


# --- size estimate ----------------------------------------------------------------------------


class _EventLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, object] | None: ...


class _StatusLike(Protocol):
    @property
    def description(self) -> str | None: ...


class _SpanLike(Protocol):
    """What the estimate reads of an SDK ``ReadableSpan``."""

    @property
    def name(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, object] | None: ...
    @property
    def events(self) -> Sequence[_EventLike]: ...
    @property
    def status(self) -> _StatusLike: ...


def _text_bytes(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8", "replace"))


def _value_bytes(value: object) -> int:
    if isinstance(value, str):
        return _text_bytes(value)
    if isinstance(value, tuple | list):
        return sum(_value_bytes(item) + 2 for item in value)
    return 10  # a varint or a double


def _attributes_bytes(attributes: Mapping[str, object] | None) -> int:
    if not attributes:
        return 0
    return sum(
        _text_bytes(key) + _value_bytes(value) + _ATTRIBUTE_OVERHEAD
        for key, value in attributes.items()
    )


def record_bytes(record: SpanRecord) -> int:
    """Estimate (generously) the bytes ``record`` adds to an OTLP export request."""
    return (
        _SPAN_OVERHEAD
        + _text_bytes(record.name)
        + _text_bytes(record.error or "")
        + _attributes_bytes(record.attributes)
        + sum(_event_bytes(event) for event in record.events)
    )


def estimated_bytes(spans: Iterable[_SpanLike]) -> int:
    """Estimate (generously) the bytes of an OTLP export request carrying ``spans``."""
    return sum(
        _SPAN_OVERHEAD
        + _text_bytes(span.name)
        + _text_bytes(span.status.description or "")
        + _attributes_bytes(span.attributes)
        + sum(
            _EVENT_OVERHEAD + _text_bytes(event.name) + _attributes_bytes(event.attributes)
            for event in span.events
        )
        for span in spans
    )
