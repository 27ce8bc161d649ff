"""Export the CI/CD metrics (:mod:`processor.core.metrics`) through the OpenTelemetry metrics SDK.

Metrics are off unless ``OTEL_METRICS_EXPORTER`` names an exporter (comma-separated):

- ``otlp``: OTLP over ``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL``/``OTEL_EXPORTER_OTLP_PROTOCOL``
  (``http/protobuf`` by default, or ``grpc``). The exporter reads the rest itself from the
  process environment: ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` (else ``..._OTLP_ENDPOINT``),
  headers, timeout, compression, ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``
  (``cumulative``, the default, ``delta`` or ``lowmemory``) and
  ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``.
- ``gcp_otlp``: Cloud Monitoring through the Telemetry API's OTLP endpoint
  (``telemetry.googleapis.com``, which ingests OTLP metrics as Managed Service for Prometheus
  data), OTLP/gRPC with Application Default Credentials, as Google recommends for SDKs. Needs
  ``roles/telemetry.metricsWriter``, the project (``GOOGLE_CLOUD_PROJECT``) and a location
  (``cloud.region`` in ``OTEL_RESOURCE_ATTRIBUTES``; the Terraform module sets both).
- ``console``: the SDK's JSON dump on standard output; ``none``: off (the default).

The SDK reads ``OTEL_METRIC_EXPORT_INTERVAL`` (ms, default 60000), ``OTEL_METRIC_EXPORT_TIMEOUT``
and ``OTEL_METRICS_EXEMPLAR_FILTER`` (``trace_based`` by default: each point carries its job's
trace as an exemplar). The resource is the spans' plus ``service.instance.id``, a random UUID per
process unless given, so every instance (and every restart) reports its own series: instances
never merge counts, and a restarted or scaled-to-zero instance starts a new cumulative series
instead of resetting an old one. Spans keep the shared resource: they must be identical whichever
instance sends them.

Recording never blocks on or fails with the backend: the SDK aggregates in memory and a background
thread exports, so a metrics outage costs metrics, never trace delivery.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import Counter, Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from processor import __version__
from processor.config import ConfigError
from processor.core.metrics import DEFINITIONS, DURATION_BUCKETS, Instrument, MetricPoint
from processor.export.exporters import (
    GCP_PROJECT_ATTRIBUTE,
    TELEMETRY_API_ENDPOINT,
    build_resource,
    gcp_channel_credentials,
    gcp_project,
)

log = structlog.get_logger("prowtrace.metrics")

METRICS_EXPORTER_NAMES = ("otlp", "gcp_otlp", "console", "none")
INSTANCE_ATTRIBUTE = "service.instance.id"
REGION_ATTRIBUTE = "cloud.region"
SHUTDOWN_SECONDS = 1.5
"""How long the final flush may take: after an 8 s drain it still ends inside Cloud Run's 10 s."""
OFFLINE_FLUSH_SECONDS = 10.0
"""How long replay and backfill wait for their last metrics to go out (no platform deadline)."""
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class MetricsRecorder:
    """Records metric points into the SDK; does nothing when metrics are off. Thread-safe."""

    def __init__(self, provider: MeterProvider | None) -> None:
        """Create the instruments on ``provider`` (``None``: metrics off)."""
        self.provider = provider
        self._instruments: dict[str, Histogram | Counter] = {}
        if provider is None:
            return
        meter = provider.get_meter("prowtrace", __version__)
        for definition in DEFINITIONS:
            if definition.instrument is Instrument.HISTOGRAM:
                self._instruments[definition.name] = meter.create_histogram(
                    definition.name,
                    unit=definition.unit,
                    description=definition.description,
                    explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
                )
            else:
                self._instruments[definition.name] = meter.create_counter(
                    definition.name, unit=definition.unit, description=definition.description
                )

    @property
    def enabled(self) -> bool:
        """True when points go anywhere."""
        return self.provider is not None

    def record(self, points: Sequence[MetricPoint]) -> None:
        """Record ``points``; never raises (metrics must not cost a trace)."""
        for point in points:
            instrument = self._instruments.get(point.metric)
            if instrument is None:
                continue
            try:
                context = _exemplar_context(point)
                if isinstance(instrument, Histogram):
                    instrument.record(point.value, dict(point.attributes), context=context)
                else:
                    instrument.add(point.value, dict(point.attributes), context=context)
            except Exception as error:  # noqa: BLE001 - a metrics bug must not nack a message
                log.warning("metric_not_recorded", metric=point.metric, error=repr(error))

    def flush(self, timeout_seconds: float = SHUTDOWN_SECONDS) -> bool:
        """Export what was recorded now; False if it did not finish in time."""
        if self.provider is None:
            return True
        return self.provider.force_flush(timeout_millis=timeout_seconds * 1000)

    def shutdown(self, timeout_seconds: float = SHUTDOWN_SECONDS) -> None:
        """Export what is left and stop, within ``timeout_seconds`` even if the backend is down."""
        if self.provider is None:
            return
        try:
            self.provider.shutdown(timeout_millis=timeout_seconds * 1000)
        except Exception as error:  # noqa: BLE001 - the exit must go on
            log.warning("metrics_shutdown_failed", error=repr(error))


def _exemplar_context(point: MetricPoint) -> Context | None:
    """Return a context holding the point's span, so a trace-based exemplar names its trace."""
    if not point.trace_id or not point.span_id:
        return None
    span = NonRecordingSpan(SpanContext(point.trace_id, point.span_id, False, _SAMPLED))  # noqa: FBT003 - is_remote, positional in the API
    return trace.set_span_in_context(span)


def metric_exporter_names(env: Mapping[str, str]) -> list[str]:
    """Return the exporters ``OTEL_METRICS_EXPORTER`` names ([] when metrics are off)."""
    names = [name.strip() for name in env.get("OTEL_METRICS_EXPORTER", "").split(",")]
    names = [name for name in names if name and name != "none"]
    unknown = [name for name in names if name not in METRICS_EXPORTER_NAMES]
    if unknown:
        raise ConfigError(
            f"OTEL_METRICS_EXPORTER names unknown exporter(s) {', '.join(unknown)}: "
            f"choose from {', '.join(METRICS_EXPORTER_NAMES)}"
        )
    return names


def otlp_metric_exporter(env: Mapping[str, str]) -> MetricExporter:
    """Return an OTLP metric exporter for the protocol the environment names."""
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415 - import only the transport in use
            OTLPMetricExporter as GrpcExporter,
        )

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415 - import only the transport in use
            OTLPMetricExporter as HttpExporter,
        )

        return HttpExporter()
    raise ConfigError(
        f"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL={protocol!r} is not supported: "
        "use grpc or http/protobuf"
    )


def gcp_otlp_metric_exporter() -> MetricExporter:
    """Return an OTLP/gRPC metric exporter to the Telemetry API, authenticated by ADC."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415 - only deployments on Google Cloud need it
        OTLPMetricExporter,
    )

    credentials = gcp_channel_credentials("OTEL_METRICS_EXPORTER=gcp_otlp")
    return OTLPMetricExporter(endpoint=TELEMETRY_API_ENDPOINT, credentials=credentials)


def metrics_resource(env: Mapping[str, str]) -> Resource:
    """Return the spans' resource plus what tells this instance's series apart.

    For ``gcp_otlp`` also what the Telemetry API needs: the project and a location.
    """
    base = build_resource(env)
    attributes = dict(base.attributes)
    attributes.setdefault(INSTANCE_ATTRIBUTE, str(uuid.uuid4()))
    if "gcp_otlp" in metric_exporter_names(env):
        project = str(attributes.get(GCP_PROJECT_ATTRIBUTE, "")) or gcp_project(env)
        if not project:
            raise ConfigError(
                "OTEL_METRICS_EXPORTER=gcp_otlp needs the project that receives the metrics: "
                "set GOOGLE_CLOUD_PROJECT (or gcp.project_id in OTEL_RESOURCE_ATTRIBUTES)"
            )
        attributes[GCP_PROJECT_ATTRIBUTE] = project
        if REGION_ATTRIBUTE not in attributes:
            raise ConfigError(
                "OTEL_METRICS_EXPORTER=gcp_otlp needs a location for Cloud Monitoring: add "
                "cloud.region=REGION to OTEL_RESOURCE_ATTRIBUTES"
            )
    return Resource(attributes)


def build_metrics(
    env: Mapping[str, str] = os.environ,
    *,
    stdout: TextIO = sys.stdout,
    readers: Sequence[MetricReader] | None = None,
) -> MetricsRecorder:
    """Return the recorder ``OTEL_METRICS_EXPORTER`` asks for (a no-op one when it is unset).

    ``readers`` replaces the periodic exporting readers the variable names (the demo reads its
    summary from an in-memory reader).
    """
    if readers is None:
        builders: dict[str, Callable[[], MetricExporter]] = {
            "otlp": lambda: otlp_metric_exporter(env),
            "gcp_otlp": gcp_otlp_metric_exporter,
            "console": lambda: ConsoleMetricExporter(out=stdout),
        }
        names = metric_exporter_names(env)
        readers = [PeriodicExportingMetricReader(builders[name]()) for name in names]
    if not readers:
        return MetricsRecorder(None)
    # Shut down by the command, inside its exit budget, not by an atexit hook without one.
    provider = MeterProvider(
        metric_readers=list(readers), resource=metrics_resource(env), shutdown_on_exit=False
    )
    return MetricsRecorder(provider)
