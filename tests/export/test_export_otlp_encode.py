"""The fast OTLP encoder: the same bytes as OpenTelemetry's encoder, for every span it may meet."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from support.otlp_receiver import OtlpReceiver

from processor.artifacts.mirror import MirrorArtifactStore
from processor.core.message import Delivery
from processor.export import otlp_encode
from processor.export.exporters import build_exporter, build_resource
from processor.export.otel import SpanConverter
from processor.export.otlp_encode import GrpcSpanExporter, encode_spans
from processor.pipeline import Pipeline, PipelineSettings
from processor.synthetic import generate, message_bytes, stream, write_mirror

TRACE = 0x0AF7651916CD43DD8448EB211C80319C
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
RESOURCE = Resource({"service.name": "prow", "deployment": "test"})


def same_bytes(spans: Sequence[ReadableSpan]) -> bool:
    """Return whether both encoders produce byte-identical requests."""
    return encode_spans(spans).SerializeToString() == library_encode(spans).SerializeToString()


def context(span_id: int, *, remote: bool = False, state: TraceState | None = None) -> SpanContext:
    """Return a sampled span context of the test trace."""
    return SpanContext(TRACE, span_id, is_remote=remote, trace_flags=SAMPLED, trace_state=state)


def span(name: str = "s", **fields: object) -> ReadableSpan:
    """Return a span with sensible defaults that ``fields`` override."""
    values: dict[str, object] = {
        "name": name,
        "context": context(0x1111),
        "resource": RESOURCE,
        "start_time": 1_700_000_000_000_000_000,
        "end_time": 1_700_000_001_000_000_000,
    }
    values.update(fields)
    return ReadableSpan(**values)  # type: ignore[arg-type] # test helper: fields are checked by the SDK


class _Batches(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[list[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(list(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def test_every_export_of_a_corpus_encodes_identically(tmp_path: Path) -> None:
    """Each export the pipeline makes over 40 jobs (every scenario) gives the library's bytes."""
    jobs = list(generate(40, seed=11))
    write_mirror(jobs, tmp_path)
    recorder = _Batches()
    pipeline = Pipeline(
        MirrorArtifactStore(tmp_path),
        recorder,
        SpanConverter(build_resource({})),
        PipelineSettings(grace=timedelta(0)),
    )
    for published in stream(jobs):
        pipeline.handle(Delivery(message_bytes(published), published.publish_time))
    assert len(recorder.batches) > 40
    assert all(same_bytes(batch) for batch in recorder.batches)
    assert same_bytes([item for batch in recorder.batches for item in batch])


def test_links_trace_state_and_remote_parents_encode_identically() -> None:
    """Links (remote and local), a trace state and parent flags match the library."""
    linked = Link(context(0x2222, remote=True), {"link.kind": "follows"})
    spans = [
        span(
            "child",
            context=context(0x3333, state=TraceState([("vendor", "v1"), ("other", "x")])),
            parent=context(0x1111, remote=True),
            links=[linked, Link(context(0x4444))],
        ),
        span("local-parent", context=context(0x5555), parent=context(0x1111)),
        span("root", context=context(0x1111)),
    ]
    assert same_bytes(spans)


def test_events_status_kinds_and_dropped_counts_encode_identically() -> None:
    """Events, every status and kind, and dropped attribute counts match the library."""
    bounded = BoundedAttributes(maxlen=1, attributes={"kept": 1, "dropped": 2})
    spans = [
        span(
            f"kind-{kind.name}",
            kind=kind,
            status=status,
            attributes=bounded,
            events=[Event("e", {"n": 1}, timestamp=5), Event("bare", timestamp=6)],
        )
        for kind in SpanKind
        for status in (
            Status(StatusCode.UNSET),
            Status(StatusCode.OK),
            Status(StatusCode.ERROR, "it broke"),
        )
    ]
    assert same_bytes(spans)


def test_every_attribute_type_encodes_identically() -> None:
    """bool, int, float, str, bytes, None, sequences and nested mappings match the library."""
    attributes = {
        "b": True,
        "i": -7,
        "f": 0.25,
        "s": "text",
        "bytes": b"\x00\xff",
        "none": None,
        "ints": (1, 2, 3),
        "strs": ["a", "b"],
        "empty": (),
        "map": {"inner": {"deep": [1, "two"]}, 3: "key made a string"},
    }
    assert same_bytes([span(attributes=attributes)])


def test_a_value_it_cannot_encode_is_left_out_like_upstream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An attribute of an unknown type is dropped (and logged), the others kept, as upstream."""
    spans = [span(attributes={"ok": 1, "bad": object(), "also ok": "x"})]
    with caplog.at_level(logging.ERROR):
        assert same_bytes(spans)
    assert "Failed to encode key bad" in caplog.text


def test_resources_and_scopes_group_like_upstream() -> None:
    """Equal resources (distinct objects) share a group; scopes split them, first seen first."""
    equal_copy = Resource({"service.name": "prow", "deployment": "test"})
    other = Resource({"service.name": "other"}, schema_url="https://example.com/schema")
    scope = InstrumentationScope("a", "1.0", "https://example.com/s", {"scope.attr": 1})
    spans = [
        span("1", instrumentation_scope=scope),
        span("2", resource=other),
        span("3", resource=equal_copy, instrumentation_scope=scope),
        span("4", instrumentation_scope=InstrumentationScope("b")),
        span("5", resource=equal_copy),
        span("6", resource=other, instrumentation_scope=scope),
    ]
    assert same_bytes(spans)


def test_no_spans_make_an_empty_request() -> None:
    """An empty batch encodes to the empty request, as upstream."""
    assert same_bytes([])


def test_grpc_protocol_selects_the_fast_exporter_and_it_delivers() -> None:
    """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc builds it, and a real receiver gets the spans."""
    with OtlpReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{receiver.grpc_endpoint}",
        }
        assert isinstance(build_exporter(env), GrpcSpanExporter)
        exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
        try:
            result = exporter.export([span("delivered", attributes={"k": "v"})])
        finally:
            exporter.shutdown()
        assert result is SpanExportResult.SUCCESS
        assert [(s.name, s.attributes) for s in receiver.spans()] == [("delivered", {"k": "v"})]


def test_the_library_exporter_still_encodes_through_the_overridden_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The speed-up rides on the private ``_translate_data``: if upstream stops calling it, fail.

    A renamed hook would not break delivery (the library's own encoder would run), so only this
    test notices; pyproject.toml pins the exporter to the patch releases this was checked with.
    """
    encoded: list[int] = []

    def counting(spans: Sequence[ReadableSpan]) -> object:
        encoded.append(len(spans))
        return encode_spans(spans)

    monkeypatch.setattr(otlp_encode, "encode_spans", counting)
    with OtlpReceiver() as receiver:
        exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
        try:
            result = exporter.export([span("a"), span("b")])
        finally:
            exporter.shutdown()
        names = sorted(s.name for s in receiver.spans())

    assert result is SpanExportResult.SUCCESS
    assert names == ["a", "b"]
    assert encoded == [2]
