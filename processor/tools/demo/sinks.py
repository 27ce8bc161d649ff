"""The user's OTLP endpoint, where the demo also sends its spans when one is set.

The OTLP/JSON file is in the pipeline's exporter, so a message is acked only once its spans are
written. The user's endpoint is different: the demo must finish
promptly even when nothing listens there, or something that answers slowly or wrongly (an OTLP
exporter retries for up to ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s, per call). So its exporter,
built by the standard factory, runs on a thread of its own behind :class:`EndpointForwarder`,
and the demo reports what it delivered. (``prowtrace pull`` does make acks wait for it.)
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = structlog.get_logger("prowtrace.demo")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
TRACES_PATH = "/v1/traces"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
_CONNECT_TIMEOUT_SECONDS = 1.0
EXPORTER_LOGGER = "opentelemetry.exporter.otlp"
"""Where the OTLP exporters log why an export failed."""


@dataclass(frozen=True)
class EndpointDelivery:
    """What the forwarder achieved: spans the endpoint accepted, refused, or never got."""

    sent: int
    failed: int
    unsent: int
    last_error: str = ""
    """The exporter's last complaint (it logs why, and returns only FAILURE)."""

    @property
    def ok(self) -> bool:
        """True when every span handed over was accepted."""
        return not self.failed and not self.unsent


_STOP = object()


class EndpointForwarder(SpanExporter):
    """Passes spans to ``inner`` on a background thread; ``export`` itself never waits.

    Batches keep their order and are exported one at a time (as the SDK's contract requires).
    ``finish(timeout)`` waits for the backlog, then shuts ``inner`` down and says what happened.
    """

    def __init__(self, inner: SpanExporter, complaints: str = EXPORTER_LOGGER) -> None:
        """Start the forwarding thread (a daemon: it never holds the process open).

        Warnings the exporter logs under the ``complaints`` logger are kept, to say what failed.
        """
        self._inner = inner
        self._complaints = _LastComplaint()
        self._complaints_logger = logging.getLogger(complaints)
        self._complaints_logger.addHandler(self._complaints)
        self._queue: queue.SimpleQueue[Sequence[ReadableSpan] | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._sent = 0
        self._failed = 0
        self._handed = 0
        self._finished: EndpointDelivery | None = None
        self._thread = threading.Thread(target=self._run, name="demo-otlp-forwarder", daemon=True)
        self._thread.start()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Queue ``spans`` for the endpoint and report success at once."""
        with self._lock:
            self._handed += len(spans)
        self._queue.put(list(spans))
        return SpanExportResult.SUCCESS

    def finish(self, timeout: float) -> EndpointDelivery:
        """Wait up to ``timeout`` seconds for what is queued to go out; shut the exporter down.

        Later calls return the first call's answer.
        """
        if self._finished is not None:
            return self._finished
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._inner.shutdown()  # also cuts short an OTLP exporter's retry wait
        self._complaints_logger.removeHandler(self._complaints)
        with self._lock:
            self._finished = EndpointDelivery(
                sent=self._sent,
                failed=self._failed,
                unsent=self._handed - self._sent - self._failed,
                last_error=self._complaints.last,
            )
        return self._finished

    def shutdown(self) -> None:
        """Nothing here: ``finish`` shuts the inner exporter down."""

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if not isinstance(batch, list):
                return
            try:
                result = self._inner.export(batch)
            except Exception:  # an exporter bug must not kill the forwarder
                log.exception("demo_endpoint_export_raised", spans=len(batch))
                result = SpanExportResult.FAILURE
            with self._lock:
                if result is SpanExportResult.SUCCESS:
                    self._sent += len(batch)
                else:
                    self._failed += len(batch)


class _LastComplaint(logging.Handler):
    """Keeps the last warning logged, as one line."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed log call: keep its template
            message = str(record.msg)
        self.last = " ".join(message.split())


# --- the user's endpoint -------------------------------------------------------------------------


def otlp_endpoint(env: Mapping[str, str]) -> str:
    """Return the OTLP traces endpoint the environment names ('' if none)."""
    return next((env[name].strip() for name in ENDPOINT_VARIABLES if env.get(name, "").strip()), "")


def otlp_protocol(env: Mapping[str, str]) -> str:
    """Return the OTLP protocol the environment names (the specification's default otherwise)."""
    chosen = (env.get(name, "").strip() for name in PROTOCOL_VARIABLES)
    return next((value for value in chosen if value), "http/protobuf")


def endpoint_address(endpoint: str) -> tuple[str, int]:
    """Return the host and port an OTLP endpoint URL points at (``host:port`` alone is allowed)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return parts.hostname or "localhost", port


def endpoint_hint(env: Mapping[str, str]) -> str:
    """Point out a likely misconfiguration of the endpoint ('' if none is apparent)."""
    generic = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip() and generic.rstrip(
        "/"
    ).endswith(TRACES_PATH):
        return (
            f"OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: the exporter appends {TRACES_PATH} "
            f"itself. Drop {TRACES_PATH}, or set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT instead"
        )
    return protocol_hint(otlp_endpoint(env), otlp_protocol(env))


def protocol_hint(endpoint: str, protocol: str) -> str:
    """Say when the port is the other OTLP transport's well-known one ('' if it looks right)."""
    _, port = endpoint_address(endpoint)
    if port == OTLP_GRPC_PORT and protocol != "grpc":
        return (
            f"port {OTLP_GRPC_PORT} is OTLP/gRPC's, but the protocol is {protocol}: "
            "set OTEL_EXPORTER_OTLP_PROTOCOL=grpc, or use port 4318"
        )
    if port == OTLP_HTTP_PORT and protocol == "grpc":
        return (
            f"port {OTLP_HTTP_PORT} is OTLP/HTTP's, but the protocol is grpc: "
            "unset OTEL_EXPORTER_OTLP_PROTOCOL, or use port 4317"
        )
    return ""


def unreachable_reason(endpoint: str) -> str:
    """Try to connect to the endpoint; return why that failed ('' if something accepted)."""
    host, port = endpoint_address(endpoint)
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_SECONDS):
            return ""
    except OSError as error:
        return f"nothing accepts connections at {host}:{port} ({error.strerror or error})"
