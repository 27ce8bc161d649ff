"""OTLP/JSON trace files: the OpenTelemetry file-exporter format.

A file holds one ``ExportTraceServiceRequest`` rendered as OTLP/JSON per line. OTLP/JSON is the
proto3 JSON mapping with three OTLP-specific rules: keys are lowerCamelCase, enums are integers,
and trace/span IDs are lowercase hex strings (the generic mapping would give base64 for bytes).
64-bit integers are written as strings, as proto3 JSON does; readers accept strings or numbers.

The writer is an SDK ``SpanExporter``; the reader turns a file back into plain ``DecodedSpan``
records for the ``show`` command, tolerating base64 IDs from writers that missed the hex rule.
``DecodedSpan`` is the one decoded form of a span: ``show`` reads it from files, and the test
receiver and oracle decode what they are sent into it with ``spans_from_request``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeAlias

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util.types import Attributes

_logger = logging.getLogger(__name__)

AttributeValue: TypeAlias = (
    "str | bool | int | float | bytes | tuple[AttributeValue, ...] | "
    "dict[str, AttributeValue] | None"
)

_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8

# OTLP's SpanKind numbering (0 = unspecified) differs from the API enum's.
_KIND_FROM_PROTO = {
    ProtoSpan.SpanKind.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    ProtoSpan.SpanKind.SPAN_KIND_SERVER: SpanKind.SERVER,
    ProtoSpan.SpanKind.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    ProtoSpan.SpanKind.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    ProtoSpan.SpanKind.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}


@dataclass(frozen=True)
class DecodedEvent:
    """A span event as read from a file."""

    name: str
    time_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class DecodedLink:
    """A span link as read from a file (IDs in lowercase hex)."""

    trace_id: str
    span_id: str
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True)
class DecodedSpan:
    """One decoded span: plain values, IDs in lowercase hex, arrays as tuples."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    events: tuple[DecodedEvent, ...] = ()
    links: tuple[DecodedLink, ...] = ()
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    resource_attributes: dict[str, AttributeValue] = field(default_factory=dict)
    scope_name: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """The span's identity: ``(trace_id, span_id)``."""
        return (self.trace_id, self.span_id)


class MalformedOtlpJson(ValueError):
    """A line of an OTLP/JSON file is not a valid ``ExportTraceServiceRequest``."""

    def __init__(self, line_number: int, reason: str) -> None:
        """Record which line is wrong and why."""
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


# --- writing ----------------------------------------------------------------------------------


def render_request_line(request: ExportTraceServiceRequest) -> str:
    """Render one request as a single OTLP/JSON line (no trailing newline)."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for span in _spans_in(document):
        _rewrite_ids(span, _base64_id_to_hex)
        for link in _list_at(span, "links"):
            _rewrite_ids(link, _base64_id_to_hex)
    # ensure_ascii keeps each record on one physical line for every reader: a raw U+2028 or
    # U+0085 in a span name is a line break to str.splitlines() and to some editors.
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


def _base64_id_to_hex(value: str, _size: int) -> str:
    return base64.b64decode(value).hex()


class OtlpJsonFileExporter(SpanExporter):
    """Append each exported batch as one OTLP/JSON line to a file or a text stream.

    Thread-safe; never raises: an encoding or I/O problem makes ``export`` return FAILURE.
    A path is opened (append mode) on first export and closed by ``shutdown``; a stream
    passed in stays the caller's to close.
    """

    def __init__(self, destination: str | os.PathLike[str] | TextIO) -> None:
        """Write to ``destination``: a file path, or an open text stream."""
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._stream: TextIO | None = None
        if isinstance(destination, str | os.PathLike):
            self._path = Path(destination)
        else:
            self._stream = destination
        self._owns_stream = self._path is not None
        self._is_shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write ``spans`` as one line; SUCCESS once it is flushed."""
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            line = render_request_line(encode_spans(spans)) + "\n"
        except Exception:  # an exporter must never raise into the SDK's worker thread
            _logger.warning("cannot encode %d spans as OTLP/JSON", len(spans), exc_info=True)
            return SpanExportResult.FAILURE
        with self._lock:
            if self._is_shut_down:
                return SpanExportResult.FAILURE
            try:
                stream = self._open_stream()
                stream.write(line)
                stream.flush()
            except (OSError, ValueError) as error:  # ValueError: the stream was closed
                _logger.warning("cannot write OTLP/JSON to %s: %s", self._describe(), error)
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file if this exporter opened it; later exports fail."""
        with self._lock:
            self._is_shut_down = True
            if self._owns_stream and self._stream is not None:
                try:
                    self._stream.close()
                except OSError as error:
                    _logger.warning("cannot close %s: %s", self._describe(), error)
            self._stream = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:  # noqa: ARG002 - SDK signature
        """Return True: every export is flushed before it returns."""
        return True

    def _open_stream(self) -> TextIO:
        if self._stream is None:
            if self._path is None:  # pragma: no cover - a stream exporter always has its stream
                raise ValueError("no destination")
            self._stream = self._path.open("a", encoding="utf-8")
        return self._stream

    def _describe(self) -> str:
        return str(self._path) if self._path is not None else "the stream"


# --- reading ----------------------------------------------------------------------------------


def read_otlp_json(lines: Iterable[str]) -> list[DecodedSpan]:
    """Read the spans of an OTLP/JSON file, in file order; blank lines are skipped.

    Raises ``MalformedOtlpJson`` naming the first line that is not a valid request.
    """
    spans: list[DecodedSpan] = []
    for line_number, line in enumerate(lines, start=1):
        text = line.strip()
        if text:
            spans.extend(_read_line(line_number, text))
    return spans


def _read_line(line_number: int, text: str) -> list[DecodedSpan]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedOtlpJson(
            line_number, f"not JSON ({error.msg} at column {error.colno})"
        ) from error
    except RecursionError as error:
        raise MalformedOtlpJson(line_number, "JSON nested too deeply") from error
    if not isinstance(document, dict):
        raise MalformedOtlpJson(
            line_number,
            f"expected a JSON object (an ExportTraceServiceRequest), got {type(document).__name__}",
        )
    try:
        request = request_from_otlp_json(document)
    except ValueError as error:
        raise MalformedOtlpJson(line_number, str(error)) from error
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                _check_id_sizes(line_number, span)
    return spans_from_request(request)


def request_from_otlp_json(document: dict[str, Any]) -> ExportTraceServiceRequest:
    """Parse one decoded OTLP/JSON trace export (a file line, an OTLP/HTTP JSON body).

    IDs may be hex (the OTLP/JSON rule) or base64 (generic proto3 JSON), keys camelCase or
    snake_case. ``document`` is rewritten in place. Raises ``ValueError`` when it is not a valid
    ``ExportTraceServiceRequest``.
    """
    for span in _spans_in(document):
        _rewrite_ids(span, _any_id_to_base64)
        for link in _list_at(span, "links"):
            _rewrite_ids(link, _any_id_to_base64)
    try:
        return json_format.ParseDict(
            document, ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except json_format.ParseError as error:
        raise ValueError(str(error)) from error


def spans_from_request(request: ExportTraceServiceRequest) -> list[DecodedSpan]:
    """Decode every span of an export request, in request order (IDs are not size-checked)."""
    spans: list[DecodedSpan] = []
    for resource_spans in request.resource_spans:
        resource_attributes = decode_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(  # noqa: PERF401 - a comprehension three loops deep reads worse
                    DecodedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=_KIND_FROM_PROTO.get(span.kind, SpanKind.INTERNAL),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=decode_attributes(span.attributes),
                        events=tuple(
                            DecodedEvent(e.name, e.time_unix_nano, decode_attributes(e.attributes))
                            for e in span.events
                        ),
                        links=tuple(
                            DecodedLink(
                                link.trace_id.hex(),
                                link.span_id.hex(),
                                decode_attributes(link.attributes),
                            )
                            for link in span.links
                        ),
                        status_code=_status_code(span.status.code),
                        status_message=span.status.message,
                        resource_attributes=resource_attributes,
                        scope_name=scope_spans.scope.name,
                    )
                )
    return spans


def _check_id_sizes(line_number: int, span: ProtoSpan) -> None:
    if len(span.trace_id) != _TRACE_ID_BYTES:
        raise MalformedOtlpJson(line_number, f"span {span.name!r} has no valid 16-byte traceId")
    if len(span.span_id) != _SPAN_ID_BYTES:
        raise MalformedOtlpJson(line_number, f"span {span.name!r} has no valid 8-byte spanId")
    if len(span.parent_span_id) not in (0, _SPAN_ID_BYTES):
        raise MalformedOtlpJson(line_number, f"span {span.name!r} has an invalid parentSpanId")


def _status_code(code: int) -> StatusCode:
    try:
        return StatusCode(code)
    except ValueError:
        return StatusCode.UNSET


def decode_attributes(pairs: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    """Turn OTLP ``KeyValue`` attributes into a plain dict (arrays as tuples)."""
    return {pair.key: decode_value(pair.value) for pair in pairs}


def decode_value(value: AnyValue) -> AttributeValue:
    """Turn an OTLP ``AnyValue`` into str, bool, int, float, bytes, tuple, dict or None."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "array_value":
        return tuple(decode_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return None


def _any_id_to_base64(value: str, size: int) -> str:
    """Accept an ID as hex (the OTLP/JSON rule) or base64 (generic proto3 JSON)."""
    raw: bytes | None = None
    if len(value) == 2 * size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = None
    if raw is None and value:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if value and (raw is None or len(raw) != size):
        raise ValueError(
            f"ID {value[:48]!r} is neither {2 * size} hex digits nor base64 of {size} bytes"
        )
    return base64.b64encode(raw or b"").decode("ascii")


# --- walking the JSON document ------------------------------------------------------------------

# proto3 JSON parsers accept the proto field name as well as the lowerCamelCase one.
_ID_FIELDS = {
    "traceId": _TRACE_ID_BYTES,
    "trace_id": _TRACE_ID_BYTES,
    "spanId": _SPAN_ID_BYTES,
    "span_id": _SPAN_ID_BYTES,
    "parentSpanId": _SPAN_ID_BYTES,
    "parent_span_id": _SPAN_ID_BYTES,
}


def _list_at(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Return the objects in the list under ``name``, spelt in camelCase or snake_case."""
    for key in (name, _snake_case(name)):
        value = document.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def _snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _spans_in(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for resource_spans in _list_at(document, "resourceSpans"):
        for scope_spans in _list_at(resource_spans, "scopeSpans"):
            yield from _list_at(scope_spans, "spans")


def _rewrite_ids(item: dict[str, Any], convert: Callable[[str, int], str]) -> None:
    for key, size in _ID_FIELDS.items():
        value = item.get(key)
        if isinstance(value, str):
            item[key] = convert(value, size)


# --- from the SDK, for in-process rendering ------------------------------------------------------


def spans_from_sdk(spans: Iterable[ReadableSpan]) -> list[DecodedSpan]:
    """Convert finished SDK spans to ``DecodedSpan`` records without going through a file."""
    return [_span_from_sdk(span) for span in spans]


def _span_from_sdk(span: ReadableSpan) -> DecodedSpan:
    context = span.get_span_context()
    if context is None:  # pragma: no cover - finished SDK spans always carry their context
        raise ValueError(f"span {span.name!r} has no context")
    scope = span.instrumentation_scope
    return DecodedSpan(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_span_id=f"{span.parent.span_id:016x}" if span.parent is not None else None,
        name=span.name,
        kind=span.kind,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        attributes=_sdk_attributes(span.attributes),
        events=tuple(
            DecodedEvent(event.name, event.timestamp, _sdk_attributes(event.attributes))
            for event in span.events
        ),
        links=tuple(
            DecodedLink(
                f"{link.context.trace_id:032x}",
                f"{link.context.span_id:016x}",
                _sdk_attributes(link.attributes),
            )
            for link in span.links
        ),
        status_code=span.status.status_code,
        status_message=span.status.description or "",
        resource_attributes=_sdk_attributes(span.resource.attributes),
        scope_name=scope.name if scope is not None else "",
    )


def _sdk_attributes(attributes: Attributes) -> dict[str, AttributeValue]:
    return {key: _sdk_value(value) for key, value in (attributes or {}).items()}


def _sdk_value(value: object) -> AttributeValue:
    if isinstance(value, str | bool | int | float | bytes) or value is None:
        return value
    if isinstance(value, Sequence):
        return tuple(_sdk_value(item) for item in value)
    return str(value)
