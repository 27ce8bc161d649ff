"""The OTLP test receiver, driven by the real OTLP gRPC and HTTP span exporters."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from support.otlp_receiver import OtlpReceiver, SpanConflict, metric_totals

from processor.export.otlp_json import DecodedEvent, DecodedLink, DecodedSpan

TRACE_ID = 0x0123456789ABCDEF0123456789ABCDEF
SPAN_ID = 0x1111111111111111
PARENT_ID = 0x2222222222222222
LINKED_SPAN_ID = 0x3333333333333333


def make_span(name: str = "job", *, span_id: int = SPAN_ID, job: str = "unit") -> ReadableSpan:
    """Build a finished SDK span carrying every field the receiver decodes."""
    context = trace_api.SpanContext(TRACE_ID, span_id, is_remote=False)
    parent = trace_api.SpanContext(TRACE_ID, PARENT_ID, is_remote=False)
    linked = trace_api.SpanContext(TRACE_ID, LINKED_SPAN_ID, is_remote=False)
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=Resource({"service.name": "prowtrace"}),
        attributes={"job": job, "retry": True, "attempt": 3, "ratio": 0.5, "tags": ("a", "b")},
        events=(Event("pod scheduled", {"node": "n1"}, timestamp=1_500),),
        links=(trace_api.Link(linked),),
        kind=trace_api.SpanKind.SERVER,
        status=trace_api.Status(trace_api.StatusCode.ERROR, "boom"),
        start_time=1_000,
        end_time=2_000,
        instrumentation_scope=InstrumentationScope("prowtrace.test"),
    )


def expected_span(name: str = "job", *, span_id: int = SPAN_ID, job: str = "unit") -> DecodedSpan:
    """Build what the receiver should decode ``make_span`` (same arguments) into."""
    return DecodedSpan(
        trace_id=f"{TRACE_ID:032x}",
        span_id=f"{span_id:016x}",
        parent_span_id=f"{PARENT_ID:016x}",
        name=name,
        kind=trace_api.SpanKind.SERVER,
        start_ns=1_000,
        end_ns=2_000,
        attributes={"job": job, "retry": True, "attempt": 3, "ratio": 0.5, "tags": ("a", "b")},
        events=(DecodedEvent(name="pod scheduled", time_ns=1_500, attributes={"node": "n1"}),),
        status_code=trace_api.StatusCode.ERROR,
        status_message="boom",
        resource_attributes={"service.name": "prowtrace"},
        links=(DecodedLink(f"{TRACE_ID:032x}", f"{LINKED_SPAN_ID:016x}"),),
        scope_name="prowtrace.test",
    )


def shut_down(exporter: SpanExporter) -> None:
    """Shut an exporter down through the typed SpanExporter interface."""
    exporter.shutdown()  # the OTLP/HTTP exporter's own override carries no annotations


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """Run a receiver for one test."""
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def grpc_exporter(receiver: OtlpReceiver) -> Iterator[GrpcSpanExporter]:
    """Aim a real OTLP/gRPC exporter at the receiver, with a short timeout."""
    exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=1)
    yield exporter
    exporter.shutdown()


@pytest.fixture
def http_exporter(receiver: OtlpReceiver) -> Iterator[HttpSpanExporter]:
    """Aim a real OTLP/HTTP exporter at the receiver, with a short timeout."""
    exporter = HttpSpanExporter(endpoint=receiver.http_endpoint, timeout=1)
    yield exporter
    shut_down(exporter)


def test_grpc_exporter_round_trips_every_field(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """A span exported over OTLP/gRPC comes back decoded field for field."""
    assert grpc_exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert receiver.spans() == [expected_span()]
    assert receiver.export_requests == 1


def test_http_exporter_round_trips_every_field(
    receiver: OtlpReceiver, http_exporter: HttpSpanExporter
) -> None:
    """A span exported over OTLP/HTTP protobuf comes back decoded field for field."""
    assert http_exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert receiver.spans() == [expected_span()]


def test_http_exporter_with_gzip_is_decoded(receiver: OtlpReceiver) -> None:
    """A gzip-compressed OTLP/HTTP export is decompressed before decoding."""
    exporter = HttpSpanExporter(
        endpoint=receiver.http_endpoint, timeout=1, compression=Compression.Gzip
    )
    try:
        assert exporter.export([make_span()]) is SpanExportResult.SUCCESS
    finally:
        shut_down(exporter)
    assert receiver.spans() == [expected_span()]


def test_http_accepts_otlp_json_with_hex_ids(receiver: OtlpReceiver) -> None:
    """An OTLP/JSON body, with its hex IDs and camelCase keys, is decoded like protobuf."""
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "k8s", "value": {"boolValue": True}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": f"{TRACE_ID:032x}",
                                "spanId": f"{SPAN_ID:016x}",
                                "name": "from-json",
                                "kind": 3,
                                "startTimeUnixNano": "10",
                                "endTimeUnixNano": "20",
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    request = urllib.request.Request(  # noqa: S310 - the URL is the receiver's own http://127.0.0.1
        receiver.http_endpoint,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - same
        assert response.status == 200
    [span] = receiver.spans()
    assert (span.trace_id, span.span_id, span.parent_span_id) == (
        f"{TRACE_ID:032x}",
        f"{SPAN_ID:016x}",
        None,
    )
    assert (span.name, span.kind, span.start_ns, span.end_ns) == (
        "from-json",
        trace_api.SpanKind.CLIENT,
        10,
        20,
    )
    assert (span.attributes, span.resource_attributes) == ({"n": 7}, {"k8s": True})


def test_http_rejects_an_unknown_content_type(receiver: OtlpReceiver) -> None:
    """A body that is neither protobuf nor JSON gets 400 and stores nothing."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the receiver's own http://127.0.0.1
        receiver.http_endpoint, data=b"x", headers={"Content-Type": "text/plain"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - same
    raised.value.close()
    assert raised.value.code == 400
    assert receiver.spans() == []


def test_refused_grpc_export_fails_until_accepted(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """While refusing, gRPC exports fail and are counted; after accept() they succeed."""
    receiver.refuse(grpc.StatusCode.PERMISSION_DENIED)
    assert grpc_exporter.export([make_span()]) is SpanExportResult.FAILURE
    assert (receiver.refused_requests, receiver.spans()) == (1, [])
    receiver.accept()
    assert grpc_exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert receiver.spans() == [expected_span()]


def test_refused_with_unavailable_fails_a_retrying_grpc_exporter(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """The default refusal (UNAVAILABLE) fails an exporter once its retries run out of time."""
    receiver.refuse()
    assert grpc_exporter.export([make_span()]) is SpanExportResult.FAILURE
    assert receiver.refused_requests >= 1
    assert receiver.export_requests == 0


def test_refused_http_export_fails_until_accepted(
    receiver: OtlpReceiver, http_exporter: HttpSpanExporter
) -> None:
    """While refusing, HTTP exports get 503 and fail; after accept() they succeed."""
    receiver.refuse()
    assert http_exporter.export([make_span()]) is SpanExportResult.FAILURE
    assert receiver.refused_requests >= 1
    receiver.accept()
    assert http_exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert receiver.spans() == [expected_span()]


def test_delay_slows_each_export(receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter) -> None:
    """With a delay set, an export takes at least that long and still succeeds."""
    receiver.set_delay(0.3)
    started = time.monotonic()
    assert grpc_exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert time.monotonic() - started >= 0.3


def test_delay_longer_than_exporter_timeout_fails_the_export(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """A backend slower than the exporter's timeout makes the export fail."""
    receiver.set_delay(1.5)
    assert grpc_exporter.export([make_span()]) is SpanExportResult.FAILURE


def test_duplicates_are_kept_and_unique_spans_collapses_identical_ones(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """The same span twice shows twice in spans() and once in unique_spans()."""
    grpc_exporter.export([make_span()])
    grpc_exporter.export([make_span()])
    assert len(receiver.spans()) == 2
    assert receiver.unique_spans() == {(f"{TRACE_ID:032x}", f"{SPAN_ID:016x}"): expected_span()}


def test_unique_spans_raises_on_conflicting_contents(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """One span ID received with two different contents raises SpanConflict."""
    grpc_exporter.export([make_span(job="first")])
    grpc_exporter.export([make_span(job="second")])
    with pytest.raises(SpanConflict, match="two different contents"):
        receiver.unique_spans()


def test_traces_group_spans_by_trace_id(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """traces() maps each trace ID to its unique spans in arrival order."""
    grpc_exporter.export([make_span("a", span_id=1), make_span("b", span_id=2)])
    grpc_exporter.export([make_span("a", span_id=1)])
    assert receiver.traces() == {
        f"{TRACE_ID:032x}": [expected_span("a", span_id=1), expected_span("b", span_id=2)]
    }


def test_wait_for_returns_true_once_spans_arrive(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """wait_for wakes up when an export from another thread satisfies the predicate."""
    exporting = threading.Thread(target=grpc_exporter.export, args=([make_span()],))
    exporting.start()
    try:
        assert receiver.wait_for(lambda r: len(r.spans()) == 1, timeout=5)
    finally:
        exporting.join()


def test_wait_for_returns_false_on_timeout(receiver: OtlpReceiver) -> None:
    """wait_for gives up with False when the predicate never holds."""
    assert not receiver.wait_for(lambda r: r.export_requests > 0, timeout=0.1)


def test_clear_forgets_spans_and_counts(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """clear() empties the store and resets the counters."""
    grpc_exporter.export([make_span()])
    receiver.clear()
    assert (receiver.spans(), receiver.export_requests, receiver.refused_requests) == ([], 0, 0)


def test_stop_leaves_no_thread_behind() -> None:
    """Starting, using and stopping a receiver ends every thread it started."""
    before = set(threading.enumerate())
    with OtlpReceiver() as receiver:
        receiver.set_delay(5)  # a pending delay must not hold stop() up
        exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=0.2)
        exporter.export([make_span()])
        exporter.shutdown()
    leftover = [thread for thread in threading.enumerate() if thread not in before]
    assert [thread for thread in leftover if thread.name.startswith("otlp")] == []


def test_endpoints_require_a_started_receiver() -> None:
    """Asking a stopped receiver for its endpoint is an error, not a bogus address."""
    with pytest.raises(RuntimeError, match="not started"):
        _ = OtlpReceiver().grpc_endpoint


# --- metrics ------------------------------------------------------------------------------------


def _record_metrics(exporter: MetricExporter) -> None:
    """Record one counter and one histogram point through the real SDK and export them."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=600_000)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource({"service.instance.id": "i-1"})
    )
    meter = provider.get_meter("prowtrace.test")
    meter.create_counter("runs").add(2, {"job": "unit"})
    meter.create_histogram("seconds", unit="s").record(1.5, {"job": "unit"})
    provider.shutdown()


@pytest.mark.parametrize("transport", ["grpc", "http-gzip"])
def test_metrics_are_decoded_from_both_transports(receiver: OtlpReceiver, transport: str) -> None:
    """A counter and a histogram arrive with values, attributes and resource, over gRPC and HTTP."""
    exporter: MetricExporter = (
        GrpcMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=1)
        if transport == "grpc"
        else HttpMetricExporter(
            endpoint=receiver.http_metrics_endpoint, compression=Compression.Gzip, timeout=1
        )
    )
    _record_metrics(exporter)
    points = {point.metric: point for point in receiver.points()}
    assert (points["runs"].kind, points["runs"].value) == ("sum", 2.0)
    assert (points["seconds"].kind, points["seconds"].count, points["seconds"].value) == (
        "histogram",
        1,
        1.5,
    )
    assert points["runs"].resource["service.instance.id"] == "i-1"
    assert metric_totals(receiver.points())[("runs", frozenset({("job", "unit")}))] == (2, 2.0)


def test_refusing_metrics_leaves_traces_accepted(
    receiver: OtlpReceiver, grpc_exporter: GrpcSpanExporter
) -> None:
    """The metrics fault switch is separate: traces still go through while metrics are refused."""
    receiver.refuse_metrics(grpc.StatusCode.PERMISSION_DENIED)
    _record_metrics(GrpcMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=1))
    assert grpc_exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert (receiver.points(), receiver.refused_requests, len(receiver.spans())) == ([], 1, 1)
