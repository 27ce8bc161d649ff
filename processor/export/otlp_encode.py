"""OTLP protobuf encoding of SDK spans: byte for byte OpenTelemetry's, in a third of the time.

``opentelemetry-exporter-otlp-proto-common``'s ``encode_spans`` builds every protobuf message
from keyword arguments, which copies each nested message into its parent again, and hashes the
resource (a JSON dump of its attributes) once per span. Profiling showed it at a third of the
pipeline's CPU time (~340 µs for a job's dozen spans). :func:`encode_spans` here fills the
request in place and looks the resource up once per run of spans that share it; a test holds it
to the same bytes as the library's encoder over the whole corpus and every field the encoder
writes (links, trace state, dropped counts, schema URLs, several resources and scopes).

:class:`GrpcSpanExporter` is OpenTelemetry's OTLP/gRPC exporter with this encoder plugged into
its ``_translate_data`` hook; everything else (endpoint, headers, TLS, compression, retries and
the ``OTEL_EXPORTER_OTLP_*`` variables) is the library's own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope as SdkScope
from opentelemetry.trace import SpanContext

_log = logging.getLogger(__name__)

_HAS_IS_REMOTE = 0x100
"""``SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK``: each span and link says if its parent is remote."""
_IS_REMOTE = 0x200
"""``SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK``."""
# The SDK's SpanKind counts from INTERNAL = 0; OTLP's from SPAN_KIND_UNSPECIFIED = 0.
_KIND_OFFSET = 1


def _set_value(target: AnyValue, value: Any) -> None:  # noqa: ANN401 - attribute values are Any
    """Fill ``target`` as the library's ``_encode_value`` would build it (same type checks)."""
    if value is None:
        target.SetInParent()  # upstream sends an empty AnyValue, present all the same
        return
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    else:
        _set_composite(target, value)


def _set_composite(target: AnyValue, value: Any) -> None:  # noqa: ANN401 - attribute values are Any
    if isinstance(value, Sequence):
        target.array_value.SetInParent()  # an empty array is still an array
        values = target.array_value.values
        for item in value:
            _set_value(values.add(), item)
    elif isinstance(value, Mapping):
        target.kvlist_value.SetInParent()
        pairs = target.kvlist_value.values
        for key, item in value.items():
            pair = pairs.add()
            pair.key = str(key)
            _set_value(pair.value, item)
    else:
        raise TypeError(f"Invalid type {type(value)} of value {value}")


def _add_attributes(target: Any, attributes: Mapping[str, Any] | None) -> None:  # noqa: ANN401 - a protobuf repeated field
    """Append ``attributes``; a value that cannot be encoded is logged and left out, as upstream."""
    if not attributes:
        return
    for key, value in attributes.items():
        pair: KeyValue = target.add()
        try:
            pair.key = key
            _set_value(pair.value, value)
        except Exception:  # noqa: BLE001 - upstream drops any key it cannot encode, and logs it
            del target[-1]
            _log.exception("Failed to encode key %s", key)


def _flags(parent: SpanContext | None) -> int:
    return (
        _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE
    )


def _fill_span(target: Span, span: ReadableSpan) -> None:
    context = span.get_span_context()
    if context is None:
        raise ValueError(f"span {span.name!r} has no span context; it cannot be exported")
    target.trace_id = context.trace_id.to_bytes(16, "big")
    target.span_id = context.span_id.to_bytes(8, "big")
    if context.trace_state is not None:
        target.trace_state = ",".join(
            f"{key}={value}" for key, value in context.trace_state.items()
        )
    parent = span.parent
    if parent:
        target.parent_span_id = parent.span_id.to_bytes(8, "big")
    target.name = span.name
    target.kind = cast("Span.SpanKind.ValueType", span.kind.value + _KIND_OFFSET)
    if span.start_time is not None:
        target.start_time_unix_nano = span.start_time
    if span.end_time is not None:
        target.end_time_unix_nano = span.end_time
    _add_attributes(target.attributes, span.attributes)
    for event in span.events:
        encoded = target.events.add()
        encoded.name = event.name
        encoded.time_unix_nano = event.timestamp
        _add_attributes(encoded.attributes, event.attributes)
        encoded.dropped_attributes_count = event.dropped_attributes
    for link in span.links:
        encoded_link = target.links.add()
        encoded_link.trace_id = link.context.trace_id.to_bytes(16, "big")
        encoded_link.span_id = link.context.span_id.to_bytes(8, "big")
        _add_attributes(encoded_link.attributes, link.attributes)
        encoded_link.dropped_attributes_count = link.dropped_attributes
        encoded_link.flags = _flags(link.context)
    status = span.status
    if status is not None:
        target.status.SetInParent()
        target.status.code = cast("Status.StatusCode.ValueType", status.status_code.value)
        if status.description is not None:
            target.status.message = status.description
    target.dropped_attributes_count = span.dropped_attributes
    target.dropped_events_count = span.dropped_events
    target.dropped_links_count = span.dropped_links
    target.flags = _flags(parent)


def _new_resource_spans(request: ExportTraceServiceRequest, resource: Resource) -> ResourceSpans:
    resource_spans: ResourceSpans = request.resource_spans.add()
    resource_spans.resource.SetInParent()
    _add_attributes(resource_spans.resource.attributes, resource.attributes)
    if resource.schema_url:
        resource_spans.schema_url = resource.schema_url
    return resource_spans


def _new_scope_spans(resource_spans: ResourceSpans, scope: SdkScope | None) -> ScopeSpans:
    scope_spans: ScopeSpans = resource_spans.scope_spans.add()
    encoded: InstrumentationScope = scope_spans.scope
    encoded.SetInParent()
    if scope is not None:
        encoded.name = scope.name
        if scope.version is not None:
            encoded.version = scope.version
        _add_attributes(encoded.attributes, scope.attributes)
        if scope.schema_url:
            scope_spans.schema_url = scope.schema_url
    return scope_spans


def encode_spans(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """Return the export request for ``spans``, identical to OpenTelemetry's ``encode_spans``.

    Spans are grouped by resource, then by instrumentation scope, each group in order of first
    appearance (the library groups with equal, not identical, resources and scopes; so does this,
    hashing only when the object changes from one span to the next).
    """
    request = ExportTraceServiceRequest()
    groups: dict[Resource, tuple[ResourceSpans, dict[SdkScope | None, ScopeSpans]]] = {}
    last_resource: Resource | None = None
    last_scope: SdkScope | None = None
    target: Any = None
    scopes: dict[SdkScope | None, ScopeSpans] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        if target is None or resource is not last_resource or scope is not last_scope:
            if resource not in groups:
                groups[resource] = (_new_resource_spans(request, resource), {})
            resource_spans, scopes = groups[resource]
            if scope not in scopes:
                scopes[scope] = _new_scope_spans(resource_spans, scope)
            target = scopes[scope].spans
            last_resource, last_scope = resource, scope
        _fill_span(target.add(), span)
    return request


class GrpcSpanExporter(OTLPSpanExporter):
    """OpenTelemetry's OTLP/gRPC span exporter, encoding with :func:`encode_spans`."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        return encode_spans(data)
