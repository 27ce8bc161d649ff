"""Build the span exporter a deployment asked for, from the standard OpenTelemetry variables.

``OTEL_TRACES_EXPORTER`` (comma-separated; default ``otlp``):

- ``otlp``: OTLP over ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``/``OTEL_EXPORTER_OTLP_PROTOCOL``
  (``http/protobuf``, the specification's default, or ``grpc``); endpoint, headers, timeout,
  compression and certificates from the usual ``OTEL_EXPORTER_OTLP_*`` variables, which the
  OpenTelemetry exporters read themselves from the process environment (``os.environ``), not
  from the mapping given to :func:`build_exporter`. They retry transient failures on their own.
- ``gcp_otlp``: Google Cloud Trace through the Telemetry API's OTLP endpoint
  (``telemetry.googleapis.com``) with Application Default Credentials: Google's recommended path.
- ``gcp_trace``: the legacy ``CloudTraceSpanExporter`` (deprecated by its authors), under the
  same name as its own entry point. It does not retry, so it is wrapped in a tenacity retry.
- ``console``: one JSON span per line on standard output, for debugging.
- ``none``: export nothing (every message still counts as exported).

With several names, spans go to each, and a message counts as exported only if all succeeded.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TextIO
from urllib.parse import unquote

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_exponential

from processor.config import ConfigError

if TYPE_CHECKING:  # grpc is imported only by the deployments that use it
    import grpc

TELEMETRY_API_ENDPOINT = "telemetry.googleapis.com:443"
GCP_PROJECT_ATTRIBUTE = "gcp.project_id"
EXPORTER_NAMES = ("otlp", "gcp_otlp", "gcp_trace", "console", "none")


class FanOutExporter(SpanExporter):
    """Send spans to several exporters; succeed only if every one of them succeeded."""

    def __init__(self, exporters: Sequence[SpanExporter]) -> None:
        """Wrap ``exporters``, called in order."""
        self.exporters = tuple(exporters)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export to all; FAILURE if any failed (they are all tried regardless)."""
        results = [exporter.export(spans) for exporter in self.exporters]
        ok = all(result is SpanExportResult.SUCCESS for result in results)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Shut every exporter down."""
        for exporter in self.exporters:
            exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush every exporter."""
        return all(exporter.force_flush(timeout_millis) for exporter in self.exporters)


class NullExporter(SpanExporter):
    """Accept and drop spans (``OTEL_TRACES_EXPORTER=none``)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002 - drops
        """Report success without sending anything."""
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


class RetryingExporter(SpanExporter):
    """Retry an exporter that reports FAILURE and does not retry itself (legacy Cloud Trace)."""

    def __init__(self, inner: SpanExporter, attempts: int = 4, max_wait: float = 4.0) -> None:
        """Retry ``inner`` up to ``attempts`` times with exponential backoff."""
        self.inner = inner
        self._retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.25, max=max_wait),
            retry=retry_if_result(lambda result: result is not SpanExportResult.SUCCESS),
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export, retrying failures; FAILURE once the attempts are used up."""
        try:
            result: SpanExportResult = self._retrying(self.inner.export, spans)
        except RetryError:
            return SpanExportResult.FAILURE
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()


class _LineConsoleExporter(ConsoleSpanExporter):
    """Console exporter writing compact one-line JSON, safe to call from several threads."""

    def __init__(self, out: TextIO) -> None:
        self._lock = threading.Lock()
        super().__init__(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            return super().export(spans)


def otlp_exporter(env: Mapping[str, str]) -> SpanExporter:
    """Return an OTLP exporter for the protocol the environment names."""
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        # OpenTelemetry's gRPC exporter with a faster, byte-identical encoder (otlp_encode).
        from processor.export.otlp_encode import GrpcSpanExporter  # noqa: PLC0415 - import only the transport in use

        return GrpcSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - import only the transport in use
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter()
    raise ConfigError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use grpc or http/protobuf"
    )


def gcp_channel_credentials(setting: str) -> grpc.ChannelCredentials:
    """Return gRPC credentials signing each call with Application Default Credentials.

    ``setting`` names what asked for them, for the error message when there are none.
    """
    import google.auth  # noqa: PLC0415 - only deployments on Google Cloud pay for these imports
    import google.auth.exceptions  # noqa: PLC0415
    import google.auth.transport.grpc  # noqa: PLC0415
    import google.auth.transport.requests  # noqa: PLC0415
    import grpc  # noqa: PLC0415

    try:
        credentials, _ = google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError as error:
        raise ConfigError(
            f"{setting} needs Application Default Credentials (on Cloud Run the service "
            "account provides them; locally run `gcloud auth application-default login`): "
            f"{error}"
        ) from None
    plugin = google.auth.transport.grpc.AuthMetadataPlugin(  # type: ignore[no-untyped-call] # google-auth ships no annotations here
        credentials=credentials, request=google.auth.transport.requests.Request()
    )
    return grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(), grpc.metadata_call_credentials(plugin)
    )


def gcp_otlp_exporter() -> SpanExporter:
    """Return an OTLP/gRPC exporter to Cloud Trace's Telemetry API, authenticated by ADC."""
    from processor.export.otlp_encode import GrpcSpanExporter  # noqa: PLC0415

    credentials = gcp_channel_credentials("OTEL_TRACES_EXPORTER=gcp_otlp")
    return GrpcSpanExporter(endpoint=TELEMETRY_API_ENDPOINT, credentials=credentials)


def gcp_trace_exporter(project_id: str, client: object | None = None) -> SpanExporter:
    """Return the legacy Cloud Trace exporter, retried (it does not retry by itself).

    ``client`` is a ``TraceServiceClient`` to use instead of one built from ADC (tests inject a
    client pointed at a local TraceService).
    """
    from opentelemetry.exporter.cloud_trace import (  # noqa: PLC0415 - legacy path, rarely used
        CloudTraceSpanExporter,
    )

    legacy = CloudTraceSpanExporter(project_id=project_id or None, client=client)  # type: ignore[no-untyped-call] # the package is unannotated
    return RetryingExporter(legacy)


def build_exporter(
    env: Mapping[str, str] = os.environ,
    *,
    stdout: TextIO = sys.stdout,
    factories: Mapping[str, Callable[[], SpanExporter]] | None = None,
) -> SpanExporter:
    """Return the exporter ``OTEL_TRACES_EXPORTER`` selects (see the module docstring).

    ``factories`` overrides how a name is built (tests inject exporters pointed at local fakes).
    """
    names = [name.strip() for name in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    names = [name for name in names if name] or ["otlp"]
    builders: dict[str, Callable[[], SpanExporter]] = {
        "otlp": lambda: otlp_exporter(env),
        "gcp_otlp": gcp_otlp_exporter,
        "gcp_trace": lambda: gcp_trace_exporter(gcp_project(env)),
        "console": lambda: _LineConsoleExporter(stdout),
        "none": NullExporter,
    }
    builders.update(factories or {})
    unknown = [name for name in names if name not in builders]
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER names unknown exporter(s) {', '.join(unknown)}: "
            f"choose from {', '.join(EXPORTER_NAMES)}"
        )
    exporters = [builders[name]() for name in names]
    return exporters[0] if len(exporters) == 1 else FanOutExporter(exporters)


def gcp_project(env: Mapping[str, str]) -> str:
    """Return the Google Cloud project traces go to: GOOGLE_CLOUD_PROJECT, else ADC's."""
    return env.get("GOOGLE_CLOUD_PROJECT", "") or env.get("GCLOUD_PROJECT", "")


def build_resource(env: Mapping[str, str] = os.environ) -> Resource:
    """Return the resource of the job spans: ``service.name`` defaults to ``prow``.

    The spans describe Prow's jobs, not prowtrace, so the service is Prow (override with
    ``OTEL_SERVICE_NAME``); ``OTEL_RESOURCE_ATTRIBUTES`` is honoured. For ``gcp_otlp`` the Telemetry
    API requires ``gcp.project_id``, filled in from ``GOOGLE_CLOUD_PROJECT`` when not given.
    """
    attributes: dict[str, str] = {}
    for pair in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
    attributes["service.name"] = env.get("OTEL_SERVICE_NAME", "") or attributes.get(
        "service.name", "prow"
    )
    if (
        "gcp_otlp" in env.get("OTEL_TRACES_EXPORTER", "")
        and GCP_PROJECT_ATTRIBUTE not in attributes
    ):
        project = gcp_project(env)
        if not project:
            raise ConfigError(
                "OTEL_TRACES_EXPORTER=gcp_otlp needs the project that receives the traces: "
                "set GOOGLE_CLOUD_PROJECT (or gcp.project_id in OTEL_RESOURCE_ATTRIBUTES)"
            )
        attributes[GCP_PROJECT_ATTRIBUTE] = project
    return Resource(attributes)
