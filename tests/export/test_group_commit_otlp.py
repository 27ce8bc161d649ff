"""GroupCommitExporter in front of a real OTLPSpanExporter and an in-process OTLP/gRPC receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from processor.export.group_commit import GroupCommitExporter

SUCCESS = SpanExportResult.SUCCESS
FAILURE = SpanExportResult.FAILURE
PATIENCE = 5.0
RESOURCE = Resource.create({"service.name": "group-commit-test"})
SCOPE = InstrumentationScope("tests.group_commit")


class RecordingTraceService(TraceServiceServicer):
    """An OTLP trace receiver that records requests; it can hold and reject the first one."""

    def __init__(self, *, delay: float = 0.0, reject_first: bool = False) -> None:
        """Sleep ``delay`` per request; with ``reject_first``, hold it until ``gate`` is set."""
        self.requests: list[ExportTraceServiceRequest] = []
        self.gate = threading.Event()
        self._delay = delay
        self._reject_first = reject_first
        self._lock = threading.Lock()

    def Export(  # noqa: N802 - the method name is fixed by the OTLP proto service
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        """Record the request; fail the first one with INVALID_ARGUMENT if so configured."""
        with self._lock:
            self.requests.append(request)
            first = len(self.requests) == 1
        time.sleep(self._delay)
        if first and self._reject_first:
            self.gate.wait(timeout=PATIENCE)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rejected by the test receiver")
        return ExportTraceServiceResponse()

    def span_names(self) -> list[str]:
        """Names of every span received, in arrival order."""
        with self._lock:
            return [
                span.name
                for request in self.requests
                for resource_spans in request.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]


@dataclass
class Receiver:
    """A running receiver and the OTLP exporter that talks to it."""

    service: RecordingTraceService
    otlp: OTLPSpanExporter


def start_receiver(service: RecordingTraceService) -> Iterator[Receiver]:
    """Serve ``service`` on 127.0.0.1 (free port) and stop everything afterwards."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    add_TraceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call] # generated glue is unannotated
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    otlp = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=PATIENCE)
    try:
        yield Receiver(service, otlp)
    finally:
        service.gate.set()
        otlp.shutdown()
        server.stop(grace=None).wait(PATIENCE)


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    """Serve a receiver taking 20 ms per request, so callers pile up behind each export."""
    yield from start_receiver(RecordingTraceService(delay=0.02))


@pytest.fixture
def rejecting_receiver() -> Iterator[Receiver]:
    """Serve a receiver that holds the first request until its gate opens, then rejects it."""
    yield from start_receiver(RecordingTraceService(reject_first=True))


def finished_span(name: str, number: int) -> ReadableSpan:
    """Build a finished span with a valid context, as the SDK hands to exporters."""
    return ReadableSpan(
        name=name,
        context=SpanContext(trace_id=number + 1, span_id=number + 1, is_remote=False),
        resource=RESOURCE,
        instrumentation_scope=SCOPE,
        start_time=1_000,
        end_time=2_000,
    )


def test_forty_callers_reach_the_receiver_in_few_rpcs(slow_receiver: Receiver) -> None:
    """Every span arrives, every caller gets SUCCESS, and the RPC count is far below 40."""
    exporter = GroupCommitExporter(slow_receiver.otlp, max_wait=0.005)
    start = threading.Barrier(40)

    def call(number: int) -> SpanExportResult:
        start.wait()
        return exporter.export([finished_span(f"span-{number}", number)])

    with ThreadPoolExecutor(max_workers=40) as callers:
        results = list(callers.map(call, range(40)))

    assert results == [SUCCESS] * 40
    assert sorted(slow_receiver.service.span_names()) == sorted(f"span-{i}" for i in range(40))
    assert len(slow_receiver.service.requests) == exporter.inner_exports <= 10


def test_a_rejected_rpc_fails_its_callers_and_not_the_next_batch(
    rejecting_receiver: Receiver,
) -> None:
    """INVALID_ARGUMENT from the receiver is FAILURE for the first batch only."""
    service = rejecting_receiver.service
    exporter = GroupCommitExporter(rejecting_receiver.otlp, max_wait=0)
    with ThreadPoolExecutor(max_workers=5) as callers:
        first = callers.submit(exporter.export, [finished_span("first", 0)])
        deadline = time.monotonic() + PATIENCE
        while not service.requests and time.monotonic() < deadline:
            time.sleep(0.001)
        later = [
            callers.submit(exporter.export, [finished_span(f"later-{i}", i + 1)]) for i in range(4)
        ]
        while exporter.queued_spans < 4 and time.monotonic() < deadline:
            time.sleep(0.001)
        service.gate.set()

        assert first.result(timeout=PATIENCE) is FAILURE
        assert [f.result(timeout=PATIENCE) for f in later] == [SUCCESS] * 4
    assert len(service.requests) == 2
    assert sorted(service.span_names()) == ["first", *(f"later-{i}" for i in range(4))]
