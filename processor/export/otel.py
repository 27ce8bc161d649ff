"""Translate the core's span records into OpenTelemetry SDK spans: pure, no I/O.

Exporters (OTLP, Cloud Trace, console, file) all take ``ReadableSpan``; building them directly,
with our deterministic IDs and the artifacts' timestamps, is what lets prowtrace call exporters
itself and know whether each message's spans were delivered.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from processor import __version__
from processor.core.spans import SpanKind as CoreKind
from processor.core.spans import TraceSpan

SCOPE = InstrumentationScope("prowtrace", __version__)
_KINDS = {CoreKind.SERVER: SpanKind.SERVER, CoreKind.INTERNAL: SpanKind.INTERNAL}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SpanConverter:
    """Converts :class:`TraceSpan` to ``ReadableSpan`` under one resource."""

    def __init__(self, resource: Resource) -> None:
        """Use ``resource`` (service name, deployment attributes) for every span."""
        self.resource = resource

    def convert(self, spans: Iterable[TraceSpan]) -> list[ReadableSpan]:
        """Return SDK spans for ``spans``, in the same order."""
        return [to_readable_span(span, self.resource) for span in spans]


def to_readable_span(span: TraceSpan, resource: Resource) -> ReadableSpan:
    """Build the SDK span for one trace span."""
    record = span.record
    context = SpanContext(span.trace_id, span.span_id, is_remote=False, trace_flags=_SAMPLED)
    parent = (
        None
        if span.parent_span_id is None
        else SpanContext(span.trace_id, span.parent_span_id, is_remote=True, trace_flags=_SAMPLED)
    )
    status = (
        Status(StatusCode.ERROR, record.error)
        if record.error is not None
        else Status(StatusCode.UNSET)
    )
    return ReadableSpan(
        name=record.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes=record.attributes,
        events=[Event(event.name, event.attributes, event.time_ns) for event in record.events],
        kind=_KINDS[record.kind],
        status=status,
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=SCOPE,
    )
