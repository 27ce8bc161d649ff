"""The floor: the least work that turns the messages into the same OTLP request, in plain Python.

Per message it does only what no implementation can skip: decode the message, read the artifact
files the pipeline read for it and decode their JSON (or XML, for JUnit files), and add the spans
to one ``ExportTraceServiceRequest`` built with opentelemetry-proto's messages directly; the
request is serialised once at the end. It derives nothing: span contents (names, IDs, times,
attributes) are taken ready-made from a recording run of the real pipeline, so the floor is a
strict lower bound, and the gap to the pipeline is the price of deriving spans, of the framework
and of one export per message.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from xml.parsers import expat

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processor.artifacts import ListedFile
from processor.artifacts.mirror import MirrorArtifactStore
from processor.core.message import Delivery
from processor.export.exporters import build_resource
from processor.export.otel import SCOPE, SpanConverter
from processor.pipeline import Pipeline, PipelineSettings
from processor.synthetic import mirror_path

Value = str | bool | int | float | tuple["Value", ...]
Attributes = tuple[tuple[str, Value], ...]


@dataclass(frozen=True, slots=True)
class SpanRow:
    """One span's content as plain values, ready to be copied into protobuf."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: Attributes
    events: tuple[tuple[str, int, Attributes], ...]
    status_code: int
    status_message: str


@dataclass(frozen=True, slots=True)
class FloorMessage:
    """One message: its bytes, the files the pipeline read for it, and the spans it exported."""

    data: bytes
    files: tuple[str, ...]
    spans: tuple[SpanRow, ...]


def _attributes(attributes: object) -> Attributes:
    items = dict(attributes or {}).items()  # type: ignore[call-overload] # SDK mappings are loosely typed
    return tuple(
        (str(key), tuple(value) if isinstance(value, list | tuple) else value)
        for key, value in items
    )


def span_row(span: ReadableSpan) -> SpanRow:
    """Copy an SDK span's content into plain values (OTLP's enum numbering)."""
    context = span.context
    if context is None or span.start_time is None or span.end_time is None:
        raise ValueError("the pipeline's spans always have a context and times")
    parent = span.parent
    return SpanRow(
        trace_id=context.trace_id.to_bytes(16, "big"),
        span_id=context.span_id.to_bytes(8, "big"),
        parent_span_id=parent.span_id.to_bytes(8, "big") if parent is not None else b"",
        name=span.name,
        kind=span.kind.value + 1,  # the SDK counts from INTERNAL=0, OTLP from UNSPECIFIED=0
        start_ns=span.start_time,
        end_ns=span.end_time,
        attributes=_attributes(span.attributes),
        events=tuple(
            (event.name, event.timestamp, _attributes(event.attributes)) for event in span.events
        ),
        status_code=span.status.status_code.value,
        status_message=span.status.description or "",
    )


class _RecordingStore:
    """Wraps the mirror store and notes the paths of the files it found."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._inner = MirrorArtifactStore(root)
        self.found: list[str] = []

    def read(self, folder: str, name: str) -> bytes | None:
        data = self._inner.read(folder, name)
        if data is not None:
            self.found.append(str(mirror_path(self._root, folder) / name))
        return data

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        return self._inner.list_files(folder, under, name_glob, limit)

    def find(self, prefix: str, name: str) -> Iterator[str]:
        return self._inner.find(prefix, name)


class _RecordingExporter(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def plan(
    deliveries: Sequence[Delivery], mirror: Path, *, test_spans: bool = True
) -> list[FloorMessage]:
    """Record, per message, which files the real pipeline read and which spans it exported."""
    store = _RecordingStore(mirror)
    exporter = _RecordingExporter()
    settings = PipelineSettings(grace=timedelta(0))
    if not test_spans:
        settings = dataclasses.replace(settings, junit=None)
    pipeline = Pipeline(store, exporter, SpanConverter(build_resource({})), settings)
    planned = []
    for delivery in deliveries:
        store.found.clear()
        exporter.spans.clear()
        pipeline.handle(delivery)
        planned.append(
            FloorMessage(
                data=delivery.data,
                files=tuple(store.found),
                spans=tuple(span_row(span) for span in exporter.spans),
            )
        )
    return planned


def _set_value(target: AnyValue, value: Value) -> None:
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    else:
        values = target.array_value.values
        for item in value:
            _set_value(values.add(), item)


def _add_attributes(target: Sequence[KeyValue], attributes: Attributes) -> None:
    for key, value in attributes:
        pair = target.add()  # type: ignore[attr-defined] # a protobuf repeated field
        pair.key = key
        _set_value(pair.value, value)


def _add_span(spans: Sequence[Span], row: SpanRow) -> None:
    span = spans.add()  # type: ignore[attr-defined] # a protobuf repeated field
    span.trace_id = row.trace_id
    span.span_id = row.span_id
    if row.parent_span_id:
        span.parent_span_id = row.parent_span_id
    span.name = row.name
    span.kind = row.kind
    span.start_time_unix_nano = row.start_ns
    span.end_time_unix_nano = row.end_ns
    # SpanFlags: "is_remote known" (0x100), and "parent is remote" (0x200) as the SDK encodes it.
    span.flags = 0x300 if row.parent_span_id else 0x100
    _add_attributes(span.attributes, row.attributes)
    for name, time_ns, attributes in row.events:
        event = span.events.add()
        event.name = name
        event.time_unix_nano = time_ns
        _add_attributes(event.attributes, attributes)
    span.status.SetInParent()  # the SDK's encoder always writes a status, even an empty one
    span.status.code = row.status_code
    if row.status_message:
        span.status.message = row.status_message


def encode(messages: Sequence[FloorMessage], resource: Resource) -> ExportTraceServiceRequest:
    """Do the floor's work for ``messages`` and return the one request holding every span."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_attributes = tuple((str(k), v) for k, v in resource.attributes.items())
    _add_attributes(resource_spans.resource.attributes, resource_attributes)  # type: ignore[arg-type] # SDK values are loosely typed
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = SCOPE.name
    scope_spans.scope.version = SCOPE.version or ""
    spans = scope_spans.spans
    for message in messages:
        json.loads(message.data)
        for path in message.files:
            with open(path, "rb") as file:  # noqa: PTH123 - the plainest way is the point
                data = file.read()
            if path.endswith(".xml"):  # JUnit results: one pass of expat, no tree kept
                expat.ParserCreate().Parse(data, True)  # noqa: FBT003 - expat's own signature
            else:
                json.loads(data)
        for row in message.spans:
            _add_span(spans, row)
    return request


def run(messages: Sequence[FloorMessage], resource: Resource) -> tuple[float, float, int]:
    """Time the floor: return (wall seconds, CPU seconds, bytes of the serialised request)."""
    wall, cpu = time.perf_counter(), time.process_time()
    size = len(encode(messages, resource).SerializeToString())
    return time.perf_counter() - wall, time.process_time() - cpu, size
