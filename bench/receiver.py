"""A counting OTLP/gRPC trace receiver in its own process, pinned away from the measured core.

The test fake :class:`support.otlp_receiver.OtlpReceiver` decodes every span into Python
objects, which costs more CPU than the pipeline spends producing them; a benchmark's receiver
must be cheap, so this one only counts requests and spans and notes when the first and last
request arrived (``time.monotonic``, which every process on the machine shares).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Event
from typing import Self

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)

from processor.local_service import LocalService

_REQUESTS, _SPANS, _FIRST, _LAST, _PORT = range(5)
_WORKERS = 8
_POLL_SECONDS = 0.01


def count_spans(request: ExportTraceServiceRequest) -> int:
    """Return how many spans an export request carries."""
    return sum(
        len(scope_spans.spans)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
    )


class _CountingService(TraceServiceServicer):
    def __init__(self, counters: SynchronizedArray[float]) -> None:
        self._counters = counters

    def Export(  # noqa: N802 - the gRPC method's name
        self,
        request: ExportTraceServiceRequest,
        context: grpc.ServicerContext,  # noqa: ARG002 - part of the servicer signature
    ) -> ExportTraceServiceResponse:
        spans = count_spans(request)
        now = time.monotonic()
        with self._counters.get_lock():
            self._counters[_REQUESTS] += 1
            self._counters[_SPANS] += spans
            if not self._counters[_FIRST]:
                self._counters[_FIRST] = now
            self._counters[_LAST] = now
        return ExportTraceServiceResponse()


def _serve(counters: SynchronizedArray[float], stop: Event, cpus: frozenset[int]) -> None:
    os.sched_setaffinity(0, cpus)
    server = grpc.server(ThreadPoolExecutor(max_workers=_WORKERS))
    add_TraceServiceServicer_to_server(_CountingService(counters), server)  # type: ignore[no-untyped-call] # generated code is unannotated
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with counters.get_lock():
        counters[_PORT] = port
    stop.wait()
    server.stop(grace=1).wait()


class CountingReceiver(LocalService):
    """Start/stop handle of the receiver process; read its counters at any time."""

    def __init__(self, cpus: frozenset[int]) -> None:
        """Prepare a receiver that will run on ``cpus``."""
        context = multiprocessing.get_context("spawn")
        self._counters: SynchronizedArray[float] = context.Array("d", 5)
        self._stop = context.Event()
        self._process = context.Process(
            target=_serve, args=(self._counters, self._stop, cpus), name="bench-receiver"
        )

    def start(self, timeout: float = 30.0) -> Self:
        """Start the process and wait until it listens."""
        self._process.start()
        deadline = time.monotonic() + timeout
        while not self._counters[_PORT]:
            if not self._process.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the benchmark's OTLP receiver did not start")
            time.sleep(_POLL_SECONDS)
        return self

    def stop(self) -> None:
        """Stop the receiver process and wait for it."""
        self._stop.set()
        if self._process.pid is not None:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes it."""
        return f"http://127.0.0.1:{int(self._counters[_PORT])}"

    @property
    def pid(self) -> int:
        """The receiver's process ID."""
        if self._process.pid is None:
            raise RuntimeError("the receiver is not started")
        return self._process.pid

    def counts(self) -> tuple[int, int]:
        """Return (export requests, spans) received so far."""
        with self._counters.get_lock():
            return int(self._counters[_REQUESTS]), int(self._counters[_SPANS])

    def window(self) -> tuple[float, float]:
        """Return the monotonic times of the first and the last request (0 if none yet)."""
        with self._counters.get_lock():
            return self._counters[_FIRST], self._counters[_LAST]

    def reset(self) -> None:
        """Zero the counters (the port stays)."""
        with self._counters.get_lock():
            for index in (_REQUESTS, _SPANS, _FIRST, _LAST):
                self._counters[index] = 0

    def wait_for_spans(self, spans: int, timeout: float) -> bool:
        """Wait until at least ``spans`` spans arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.counts()[1] < spans:
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True


def otlp_environ(endpoint: str) -> dict[str, str]:
    """Return the OTEL_* variables that send spans over OTLP/gRPC to ``endpoint``."""
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }


__all__ = ["CountingReceiver", "count_spans", "otlp_environ"]
