"""A local fake of Cloud Trace's v2 gRPC API, for tests of the Cloud Trace exporter.

``FakeCloudTraceServer`` serves ``google.devtools.cloudtrace.v2.TraceService`` (``BatchWriteSpans``
and ``CreateSpan``) on 127.0.0.1 and stores what it receives. ``client()`` builds the
``TraceServiceClient`` to inject into the exporter::

    with FakeCloudTraceServer() as server:
        exporter = CloudTraceSpanExporter(project_id="proj", client=server.client())
        exporter.export(spans)
        assert server.spans()[0].display_name.value == "job"
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Self

import grpc
from google.cloud.trace_v2 import BatchWriteSpansRequest, Span, TraceServiceClient
from google.cloud.trace_v2.services.trace_service.transports.grpc import TraceServiceGrpcTransport
from google.protobuf import empty_pb2

from processor.local_service import LocalService
from support.otlp_receiver import ExportFaults

SERVICE_NAME = "google.devtools.cloudtrace.v2.TraceService"
_WORKERS = 4
_STOP_GRACE_SECONDS = 1.0


class FakeCloudTraceServer(LocalService):
    """Cloud Trace v2 ``TraceService`` on 127.0.0.1, storing every span written to it.

    Use it as a context manager, or ``start()`` / ``stop()``. Accessors return snapshots.
    ``refuse()`` fails every call with a gRPC status until ``accept()``; ``set_delay()`` answers
    slowly. ``stop()`` also closes the channels of the clients ``client()`` built.
    """

    def __init__(self) -> None:
        """Create a stopped server; ``start()`` binds its port."""
        self._changed = threading.Condition(threading.RLock())
        self._requests: list[BatchWriteSpansRequest] = []
        self._refused_requests = 0
        self._faults = ExportFaults()
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._port = 0
        self._channels: list[grpc.Channel] = []

    # Lifecycle

    def start(self) -> Self:
        """Start serving on a free port of 127.0.0.1."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._faults = ExportFaults()
        self._executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fake-trace")
        self._server = grpc.server(self._executor)
        self._server.add_generic_rpc_handlers((self._handlers(),))
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        """Close the clients' channels and stop serving; pending delays end at once. Idempotent."""
        self._faults.interrupt()
        for channel in self._channels:
            channel.close()
        self._channels = []
        if self._server is not None:
            self._server.stop(grace=_STOP_GRACE_SECONDS).wait()
            self._server = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # Where it is

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return f"127.0.0.1:{self._port}"

    def client(self) -> TraceServiceClient:
        """Build a ``TraceServiceClient`` on an insecure channel to this server.

        Inject it as ``CloudTraceSpanExporter(project_id=..., client=server.client())``.
        """
        channel = grpc.insecure_channel(self.endpoint)
        self._channels.append(channel)
        return TraceServiceClient(transport=TraceServiceGrpcTransport(channel=channel))

    # Fault injection

    def refuse(self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        """Fail every call with ``code`` until ``accept()``.

        The client's default retry for ``BatchWriteSpans`` retries UNAVAILABLE and
        DEADLINE_EXCEEDED for up to 120 s: refuse with a non-retryable code (PERMISSION_DENIED,
        INVALID_ARGUMENT...) when a test wants the export to fail fast.
        """
        self._faults.refuse(code)

    def accept(self) -> None:
        """Accept calls again."""
        self._faults.accept()

    def set_delay(self, seconds: float) -> None:
        """Make each call wait ``seconds`` before it is answered (0 to stop delaying)."""
        self._faults.set_delay(seconds)

    # What was received

    def requests(self) -> list[BatchWriteSpansRequest]:
        """Every accepted ``BatchWriteSpans`` request, in arrival order."""
        with self._changed:
            return list(self._requests)

    def spans(self) -> list[Span]:
        """Every span written (by either method), in arrival order, duplicates included."""
        with self._changed:
            return [span for request in self._requests for span in request.spans]

    @property
    def batch_requests(self) -> int:
        """How many write requests were accepted (a ``CreateSpan`` counts as one)."""
        with self._changed:
            return len(self._requests)

    @property
    def refused_requests(self) -> int:
        """How many calls were refused by ``refuse()``."""
        with self._changed:
            return self._refused_requests

    def wait_for(self, predicate: Callable[[FakeCloudTraceServer], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds, re-checking on every call; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout=timeout)

    def clear(self) -> None:
        """Forget every request and reset the refusal count."""
        with self._changed:
            self._requests.clear()
            self._refused_requests = 0

    # Serving

    def _handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "BatchWriteSpans": grpc.unary_unary_rpc_method_handler(
                    self._batch_write_spans,
                    request_deserializer=BatchWriteSpansRequest.deserialize,
                    response_serializer=empty_pb2.Empty.SerializeToString,
                ),
                "CreateSpan": grpc.unary_unary_rpc_method_handler(
                    self._create_span,
                    request_deserializer=Span.deserialize,
                    response_serializer=Span.serialize,
                ),
            },
        )

    def _admit(self, context: grpc.ServicerContext) -> None:
        refusal = self._faults.refusal_after_delay()
        if refusal is not None:
            with self._changed:
                self._refused_requests += 1
                self._changed.notify_all()
            context.abort(refusal.grpc_code, "refused by the fake Cloud Trace server")

    def _store(self, request: BatchWriteSpansRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _batch_write_spans(
        self, request: BatchWriteSpansRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._admit(context)
        self._store(request)
        return empty_pb2.Empty()

    def _create_span(self, span: Span, context: grpc.ServicerContext) -> Span:
        self._admit(context)
        project = "/".join(span.name.split("/", 2)[:2])  # projects/P/traces/... -> projects/P
        self._store(BatchWriteSpansRequest(name=project, spans=[span]))
        return span


__all__ = ["SERVICE_NAME", "FakeCloudTraceServer"]
