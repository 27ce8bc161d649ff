"""Choosing and configuring the metrics exporter from OTEL_METRICS_EXPORTER and the resource."""

from __future__ import annotations

import io
import json

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)

from processor.app import service_metrics
from processor.config import ConfigError
from processor.core.metrics import RUN_DURATION, MetricPoint
from processor.export.metrics import (
    build_metrics,
    metric_exporter_names,
    metrics_resource,
    otlp_metric_exporter,
)


@pytest.mark.parametrize("value", ["", "none", " none "])
def test_metrics_are_off_unless_an_exporter_is_named(value: str) -> None:
    """Unset or none: no provider, and recording is a no-op."""
    metrics = build_metrics({"OTEL_METRICS_EXPORTER": value})
    assert not metrics.enabled
    metrics.record([MetricPoint(RUN_DURATION, 1.0)])
    metrics.shutdown()


def test_unknown_exporter_is_a_configuration_error_naming_the_choices() -> None:
    """A typo is refused with the names that would work."""
    with pytest.raises(ConfigError, match=r"prometheus.*otlp, gcp_otlp, console, none"):
        metric_exporter_names({"OTEL_METRICS_EXPORTER": "otlp,prometheus"})


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({}, HttpMetricExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcMetricExporter),
        ({"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"}, GrpcMetricExporter),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            },
            HttpMetricExporter,
        ),
    ],
)
def test_otlp_protocol_follows_the_specification(env: dict[str, str], kind: type) -> None:
    """http/protobuf by default; the metrics-specific protocol variable wins over the general."""
    assert isinstance(otlp_metric_exporter(env), kind)


def test_unsupported_protocol_is_refused() -> None:
    """http/json is not offered by the Python exporters: say so instead of failing later."""
    with pytest.raises(ConfigError, match="http/json"):
        otlp_metric_exporter({"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json"})


def test_each_process_gets_its_own_instance_id() -> None:
    """Two resources built from the same environment differ in service.instance.id only."""
    first, second = metrics_resource({}), metrics_resource({})
    assert first.attributes["service.instance.id"] != second.attributes["service.instance.id"]
    assert first.attributes["service.name"] == second.attributes["service.name"] == "prow"


def test_a_given_instance_id_is_kept() -> None:
    """service.instance.id from OTEL_RESOURCE_ATTRIBUTES wins over the random one."""
    resource = metrics_resource({"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=worker-7"})
    assert resource.attributes["service.instance.id"] == "worker-7"


def test_telemetry_api_needs_a_project() -> None:
    """gcp_otlp without GOOGLE_CLOUD_PROJECT is refused with what to set."""
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        metrics_resource({"OTEL_METRICS_EXPORTER": "gcp_otlp"})


def test_telemetry_api_needs_a_location() -> None:
    """gcp_otlp without cloud.region is refused: the API files metrics under a location."""
    with pytest.raises(ConfigError, match=r"cloud\.region"):
        metrics_resource({"OTEL_METRICS_EXPORTER": "gcp_otlp", "GOOGLE_CLOUD_PROJECT": "p"})


def test_telemetry_api_resource_carries_project_and_region() -> None:
    """The Telemetry API's resource names the project and keeps the region given."""
    resource = metrics_resource(
        {
            "OTEL_METRICS_EXPORTER": "gcp_otlp",
            "GOOGLE_CLOUD_PROJECT": "prow-metrics",
            "OTEL_RESOURCE_ATTRIBUTES": "cloud.region=europe-west1",
        }
    )
    assert resource.attributes["gcp.project_id"] == "prow-metrics"
    assert resource.attributes["cloud.region"] == "europe-west1"


def test_console_exporter_prints_the_recorded_metrics() -> None:
    """OTEL_METRICS_EXPORTER=console writes the recorded points as JSON on standard output."""
    out = io.StringIO()
    metrics = build_metrics({"OTEL_METRICS_EXPORTER": "console"}, stdout=out)
    metrics.record([MetricPoint(RUN_DURATION, 42.0, {"cicd.pipeline.name": "job"})])
    metrics.shutdown()
    document = json.loads(out.getvalue())
    metric = document["resource_metrics"][0]["scope_metrics"][0]["metrics"][0]
    assert (metric["name"], metric["data"]["data_points"][0]["sum"]) == (RUN_DURATION, 42.0)


def test_replay_and_backfill_get_no_metrics_unless_asked() -> None:
    """service_metrics(wanted=False) is off even when the environment names an exporter."""
    assert not service_metrics({"OTEL_METRICS_EXPORTER": "console"}, wanted=False).enabled
