"""An in-process OTLP receiver for traces and metrics, over real gRPC and HTTP, for tests.

``OtlpReceiver`` listens on 127.0.0.1 with OS-chosen ports, decodes every exported span into the
product's ``DecodedSpan`` (``processor.export.otlp_json``, what ``prowtrace show`` reads) and every
metric data point into a ``ReceivedPoint``, and can be told to refuse or slow down exports (traces
and metrics each have their own switch)::

    with OtlpReceiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
        ...
        assert receiver.wait_for(lambda r: len(r.spans()) >= 1, timeout=5)

``ExportFaults`` is the fault switch it shares with the other fake backends.
"""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import (
    MetricsServiceServicer,
    add_MetricsServiceServicer_to_server,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)

from processor.export import otlp_json
from processor.export.otlp_json import DecodedSpan, decode_attributes, spans_from_request
from processor.local_service import LocalService

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
JSON_CONTENT_TYPE = "application/json"
# Enough workers that a delayed (slow-backend) export does not stall the next one.
_GRPC_WORKERS = 8
_GRPC_STOP_GRACE_SECONDS = 1.0
# How often the HTTP server checks for shutdown: bounds how long stop() takes.
_HTTP_POLL_SECONDS = 0.05


class SpanConflict(AssertionError):
    """One ``(trace_id, span_id)`` arrived twice with different contents: a product bug."""


@dataclass(frozen=True)
class ReceivedPoint:
    """One metric data point as the receiver decoded it (sums, gauges and histograms).

    ``value`` is a sum's or gauge's value, or a histogram's sum; ``count`` a histogram's count
    (1 otherwise). ``temporality`` is the proto's AggregationTemporality value (1 delta,
    2 cumulative; 0 for gauges). ``exemplars`` are (trace_id hex, span_id hex, value).
    """

    metric: str
    kind: str  # "sum", "gauge" or "histogram"
    unit: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str
    temporality: int
    start_ns: int
    time_ns: int
    value: float
    count: int = 1
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    exemplars: tuple[tuple[str, str, float], ...] = ()


def _number(point: Any) -> float:  # noqa: ANN401 - a NumberDataPoint or an Exemplar
    return float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)


def points_from_request(request: ExportMetricsServiceRequest) -> list[ReceivedPoint]:
    """Decode every data point of a metrics export request, in request order."""
    received: list[ReceivedPoint] = []
    for resource_metrics in request.resource_metrics:
        resource = decode_attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                temporality = getattr(data, "aggregation_temporality", 0)
                for point in data.data_points:
                    common = {
                        "metric": metric.name,
                        "kind": kind,
                        "unit": metric.unit,
                        "attributes": decode_attributes(point.attributes),
                        "resource": resource,
                        "scope_name": scope_metrics.scope.name,
                        "temporality": temporality,
                        "start_ns": point.start_time_unix_nano,
                        "time_ns": point.time_unix_nano,
                        "exemplars": tuple(
                            (e.trace_id.hex(), e.span_id.hex(), _number(e)) for e in point.exemplars
                        ),
                    }
                    if kind == "histogram":
                        received.append(
                            ReceivedPoint(
                                **common,
                                value=point.sum,
                                count=point.count,
                                bucket_counts=tuple(point.bucket_counts),
                                explicit_bounds=tuple(point.explicit_bounds),
                            )
                        )
                    else:
                        received.append(ReceivedPoint(**common, value=_number(point)))
    return received


SeriesKey = tuple[str, frozenset[tuple[str, Any]]]
"""A metric name and its point attributes: what a dashboard would group by."""


def metric_totals(points: Iterable[ReceivedPoint]) -> dict[SeriesKey, tuple[int, float]]:
    """Return (count, value) per metric and attributes, summed over every instance's series.

    Cumulative points: the latest point of each series (resource + start time + attributes)
    counts; delta points all add up. Counters' ``count`` is their value, histograms' their count.
    """
    latest: dict[tuple[object, ...], ReceivedPoint] = {}
    totals: dict[SeriesKey, tuple[int, float]] = {}

    def add(point: ReceivedPoint) -> None:
        key = (point.metric, frozenset(point.attributes.items()))
        count, value = totals.get(key, (0, 0.0))
        added = point.count if point.kind == "histogram" else int(point.value)
        totals[key] = (count + added, value + point.value)

    for point in points:
        if point.temporality == 1:
            add(point)
            continue
        series = (
            point.metric,
            frozenset(point.attributes.items()),
            frozenset(point.resource.items()),
            point.start_ns,
        )
        if series not in latest or latest[series].time_ns <= point.time_ns:
            latest[series] = point
    for point in latest.values():
        add(point)
    return totals


def request_from_otlp_json(body: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON trace export body with the product's decoder (``prowtrace show``'s).

    Raises ``ValueError`` if the body is not valid OTLP/JSON.
    """
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError(f"expected a JSON object, got {type(document).__name__}")  # noqa: TRY004 - callers map ValueError to HTTP 400
    return otlp_json.request_from_otlp_json(document)


def decode_http_body(
    body: bytes, content_type: str, content_encoding: str
) -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP trace body (protobuf or JSON, optionally gzip/deflate compressed).

    Raises ``ValueError`` for an unsupported content type or encoding, or an undecodable body.
    """
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    elif encoding not in {"", "identity"}:
        raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == PROTOBUF_CONTENT_TYPE:
        try:
            return ExportTraceServiceRequest.FromString(body)
        except DecodeError as error:
            raise ValueError(str(error)) from error
    if media_type == JSON_CONTENT_TYPE:
        return request_from_otlp_json(body)
    raise ValueError(f"unsupported Content-Type {content_type!r}")


@dataclass(frozen=True)
class Refusal:
    """How a fake backend answers while refusing: this gRPC status, or this HTTP status."""

    grpc_code: grpc.StatusCode
    http_status: int


class ExportFaults:
    """The fault switch of a fake backend: refuse exports, or answer them slowly.

    Thread-safe. ``interrupt()`` (called when the backend stops) cuts every pending delay short.
    """

    def __init__(self) -> None:
        """Start accepting every export at once."""
        self._lock = threading.Lock()
        self._refusal: Refusal | None = None
        self._delay_seconds = 0.0
        self._stopping = threading.Event()

    def refuse(
        self,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        *,
        http_status: int = HTTPStatus.SERVICE_UNAVAILABLE,
    ) -> None:
        """Fail every export from now on: gRPC with ``code``, HTTP with ``http_status``."""
        with self._lock:
            self._refusal = Refusal(grpc_code=code, http_status=http_status)

    def accept(self) -> None:
        """Accept exports again."""
        with self._lock:
            self._refusal = None

    def set_delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each export (0 for no delay)."""
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative, got {seconds}")
        with self._lock:
            self._delay_seconds = seconds

    def refusal_after_delay(self) -> Refusal | None:
        """Sleep the configured delay, then say whether to refuse this export (and how)."""
        with self._lock:
            delay = self._delay_seconds
        if delay > 0:
            self._stopping.wait(delay)
        with self._lock:
            return self._refusal

    def interrupt(self) -> None:
        """End every pending delay now: the backend is stopping."""
        self._stopping.set()


class OtlpReceiver(LocalService):
    """OTLP trace receiver on 127.0.0.1: gRPC ``TraceService/Export`` and HTTP ``POST /v1/traces``.

    Use it as a context manager, or call ``start()`` and ``stop()``. Storage is thread-safe; every
    accessor returns a snapshot. Duplicated spans are kept in ``spans()``: deduplication (and the
    check that duplicates are identical) is ``unique_spans()``'s job.

    Fault injection: ``refuse()`` fails every export (gRPC status ``code``, HTTP 503) until
    ``accept()``; ``set_delay()`` makes every export wait before answering. A delayed export is
    still stored, even if the client gave up waiting: that is what a slow real backend does.
    """

    def __init__(self) -> None:
        """Create a stopped receiver; ``start()`` binds its ports."""
        self._changed = threading.Condition(threading.RLock())
        self._spans: list[DecodedSpan] = []
        self._points: list[ReceivedPoint] = []
        self._export_requests = 0
        self._refused_requests = 0
        self._metric_requests = 0
        self._faults = ExportFaults()
        self._metric_faults = ExportFaults()
        self._grpc_server: grpc.Server | None = None
        self._grpc_executor: ThreadPoolExecutor | None = None
        self._grpc_port = 0
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> Self:
        """Start both servers on free ports of 127.0.0.1."""
        if self._grpc_server is not None:
            raise RuntimeError("the receiver is already started")
        self._faults = ExportFaults()
        self._metric_faults = ExportFaults()
        self._grpc_executor = ThreadPoolExecutor(
            max_workers=_GRPC_WORKERS, thread_name_prefix="otlp-grpc"
        )
        self._grpc_server = grpc.server(self._grpc_executor)
        add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]  # generated code has no annotations
            _TraceService(self), self._grpc_server
        )
        add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]  # generated code has no annotations
            _MetricsService(self), self._grpc_server
        )
        self._grpc_port = self._grpc_server.add_insecure_port("127.0.0.1:0")
        self._grpc_server.start()
        self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler_for(self))
        self._http_server.daemon_threads = True
        self._http_thread = threading.Thread(
            target=self._http_server.serve_forever,
            kwargs={"poll_interval": _HTTP_POLL_SECONDS},
            name="otlp-http",
            daemon=True,
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        """Stop both servers and their threads; pending delays end at once. Idempotent."""
        self._faults.interrupt()
        self._metric_faults.interrupt()
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=_GRPC_STOP_GRACE_SECONDS).wait()
            self._grpc_server = None
        if self._grpc_executor is not None:
            self._grpc_executor.shutdown(wait=True)
            self._grpc_executor = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        if self._http_thread is not None:
            self._http_thread.join()
            self._http_thread = None

    # Endpoints

    @property
    def grpc_endpoint(self) -> str:
        """``127.0.0.1:PORT``, as ``OTLPSpanExporter(endpoint=..., insecure=True)`` takes it."""
        if self._grpc_server is None:
            raise RuntimeError("the receiver is not started")
        return f"127.0.0.1:{self._grpc_port}"

    @property
    def http_metrics_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/v1/metrics``, as the OTLP/HTTP metric exporter takes it."""
        return self.http_endpoint.removesuffix(TRACES_PATH) + METRICS_PATH

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/v1/traces``, as the OTLP/HTTP ``OTLPSpanExporter`` takes it."""
        if self._http_server is None:
            raise RuntimeError("the receiver is not started")
        return f"http://127.0.0.1:{self._http_server.server_port}{TRACES_PATH}"

    # Fault injection

    def refuse(self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        """Fail every export until ``accept()``: gRPC with ``code``, HTTP with 503.

        OTLP exporters retry UNAVAILABLE (and HTTP 503) until their timeout: give the exporter a
        short ``timeout`` in tests, or refuse with a non-retryable code such as PERMISSION_DENIED.
        """
        self._faults.refuse(code)

    def accept(self) -> None:
        """Accept exports again."""
        self._faults.accept()

    def set_delay(self, seconds: float) -> None:
        """Make each export wait ``seconds`` before it is answered (0 to stop delaying)."""
        self._faults.set_delay(seconds)

    def refuse_metrics(self, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        """Fail every metrics export (not trace exports) until ``accept_metrics()``."""
        self._metric_faults.refuse(code)

    def accept_metrics(self) -> None:
        """Accept metrics exports again."""
        self._metric_faults.accept()

    def set_metrics_delay(self, seconds: float) -> None:
        """Make each metrics export wait ``seconds`` before it is answered."""
        self._metric_faults.set_delay(seconds)

    # What was received

    def points(self) -> list[ReceivedPoint]:
        """Every received metric data point in arrival order."""
        with self._changed:
            return list(self._points)

    @property
    def metric_requests(self) -> int:
        """How many metrics export requests were accepted and stored."""
        with self._changed:
            return self._metric_requests

    def spans(self) -> list[DecodedSpan]:
        """Every received span in arrival order, duplicates included."""
        with self._changed:
            return list(self._spans)

    def unique_spans(self) -> dict[tuple[str, str], DecodedSpan]:
        """Received spans by ``(trace_id, span_id)``, in first-arrival order.

        Raises ``SpanConflict`` if one ``(trace_id, span_id)`` arrived with two different contents.
        """
        return unique_spans_of(self.spans())

    def traces(self) -> dict[str, list[DecodedSpan]]:
        """Group the unique spans by trace ID, in arrival order (raises like ``unique_spans``)."""
        grouped: dict[str, list[DecodedSpan]] = {}
        for span in self.unique_spans().values():
            grouped.setdefault(span.trace_id, []).append(span)
        return grouped

    @property
    def export_requests(self) -> int:
        """How many export requests (gRPC and HTTP) were accepted and stored."""
        with self._changed:
            return self._export_requests

    @property
    def refused_requests(self) -> int:
        """How many export requests were refused by ``refuse()``."""
        with self._changed:
            return self._refused_requests

    def wait_for(self, predicate: Callable[[OtlpReceiver], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds, re-checking on every request; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout=timeout)

    def clear(self) -> None:
        """Forget every received span and reset both request counters."""
        with self._changed:
            self._spans.clear()
            self._points.clear()
            self._metric_requests = 0
            self._export_requests = 0
            self._refused_requests = 0

    # Called by the servers

    def _admit(self) -> Refusal | None:
        refusal = self._faults.refusal_after_delay()
        if refusal is not None:
            with self._changed:
                self._refused_requests += 1
                self._changed.notify_all()
        return refusal

    def _store(self, request: ExportTraceServiceRequest) -> None:
        decoded = spans_from_request(request)
        with self._changed:
            self._spans.extend(decoded)
            self._export_requests += 1
            self._changed.notify_all()

    def _admit_metrics(self) -> Refusal | None:
        refusal = self._metric_faults.refusal_after_delay()
        if refusal is not None:
            with self._changed:
                self._refused_requests += 1
                self._changed.notify_all()
        return refusal

    def _store_metrics(self, request: ExportMetricsServiceRequest) -> None:
        decoded = points_from_request(request)
        with self._changed:
            self._points.extend(decoded)
            self._metric_requests += 1
            self._changed.notify_all()


def unique_spans_of(spans: Iterable[DecodedSpan]) -> dict[tuple[str, str], DecodedSpan]:
    """Index spans by ``(trace_id, span_id)``; raise ``SpanConflict`` if a key has two contents."""
    unique: dict[tuple[str, str], DecodedSpan] = {}
    for span in spans:
        first = unique.setdefault(span.key, span)
        if first != span:
            raise SpanConflict(
                f"span {span.key} was received with two different contents:\n"
                f"  first: {first!r}\n  later: {span!r}"
            )
    return unique


class _TraceService(TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the name is the gRPC method's
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        refusal = self._receiver._admit()
        if refusal is not None:
            context.abort(refusal.grpc_code, "refused by the test receiver")
        self._receiver._store(request)
        return ExportTraceServiceResponse()


class _MetricsService(MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the name is the gRPC method's
        self, request: ExportMetricsServiceRequest, context: grpc.ServicerContext
    ) -> ExportMetricsServiceResponse:
        refusal = self._receiver._admit_metrics()
        if refusal is not None:
            context.abort(refusal.grpc_code, "refused by the test receiver")
        self._receiver._store_metrics(request)
        return ExportMetricsServiceResponse()


def _post_metrics(handler: Any, receiver: OtlpReceiver) -> None:  # noqa: ANN401 - the handler class is local
    """Answer an OTLP/HTTP metrics POST, protobuf only (what the SDK's HTTP exporter sends)."""
    body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
    try:
        if handler.headers.get("Content-Encoding", "").strip().lower() == "gzip":
            body = gzip.decompress(body)
        request = ExportMetricsServiceRequest.FromString(body)
    except (DecodeError, OSError) as error:
        handler._answer(HTTPStatus.BAD_REQUEST, str(error).encode(), "text/plain")
        return
    refusal = receiver._admit_metrics()
    if refusal is not None:
        handler._answer(refusal.http_status, b"refused by the test receiver", "text/plain")
        return
    receiver._store_metrics(request)
    response = ExportMetricsServiceResponse().SerializeToString()
    handler._answer(HTTPStatus.OK, response, PROTOBUF_CONTENT_TYPE)


def _http_handler_for(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class OtlpHttpHandler(BaseHTTPRequestHandler):
        # HTTP/1.0 closes each connection after its answer, so no handler thread outlives stop().
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] == METRICS_PATH:
                _post_metrics(self, receiver)
                return
            if self.path.split("?", 1)[0] != TRACES_PATH:
                self._answer(HTTPStatus.NOT_FOUND, b"", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            content_type = self.headers.get("Content-Type", "")
            try:
                request = decode_http_body(
                    body, content_type, self.headers.get("Content-Encoding", "")
                )
            except (ValueError, OSError, zlib.error) as error:
                self._answer(HTTPStatus.BAD_REQUEST, str(error).encode(), "text/plain")
                return
            refusal = receiver._admit()
            if refusal is not None:
                self._answer(refusal.http_status, b"refused by the test receiver", "text/plain")
                return
            receiver._store(request)
            if content_type.startswith(JSON_CONTENT_TYPE):
                self._answer(HTTPStatus.OK, b"{}", JSON_CONTENT_TYPE)
            else:
                response = ExportTraceServiceResponse().SerializeToString()
                self._answer(HTTPStatus.OK, response, PROTOBUF_CONTENT_TYPE)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 - the base class's signature
            """Keep test output quiet."""

    return OtlpHttpHandler


__all__ = [
    "ExportFaults",
    "OtlpReceiver",
    "ReceivedPoint",
    "Refusal",
    "SpanConflict",
    "decode_http_body",
    "metric_totals",
    "points_from_request",
    "request_from_otlp_json",
    "unique_spans_of",
]
