"""The exporter factory: what each OTEL_TRACES_EXPORTER value builds, and how failures surface."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence

import grpc
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from support.cloud_trace_server import FakeCloudTraceServer
from support.otlp_receiver import OtlpReceiver

from processor.config import ConfigError
from processor.core.ids import identity_from_uid
from processor.core.spans import SpanRecord, TraceSpan
from processor.export.exporters import (
    FanOutExporter,
    NullExporter,
    RetryingExporter,
    build_exporter,
    build_resource,
    gcp_trace_exporter,
)
from processor.export.otel import to_readable_span

UID = "5b0d3c52-7e8f-4f31-9a65-0c4b3f2a1d9e"


def _spans() -> list[ReadableSpan]:
    identity = identity_from_uid(UID)
    record = SpanRecord(
        path="", parent=None, name="RUN ci-demo", start_ns=10**18, end_ns=10**18 + 5
    )
    span = TraceSpan(identity.trace_id, identity.root_span_id, None, record)
    return [to_readable_span(span, Resource({"service.name": "prow"}))]


class _Scripted(SpanExporter):
    """Answers export calls from a script of results."""

    def __init__(self, results: Sequence[SpanExportResult]) -> None:
        self.results = list(results)
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002 - scripted
        self.calls += 1
        return self.results.pop(0)

    def shutdown(self) -> None:
        """Nothing to release."""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """Run a real OTLP receiver on loopback."""
    with OtlpReceiver() as local:
        yield local


def test_otlp_grpc_exporter_reaches_the_receiver(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc exports over gRPC to the configured endpoint."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{receiver.grpc_endpoint}")
    exporter = build_exporter({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    (span,) = receiver.spans()
    assert (span.trace_id, span.span_id) == (UID.replace("-", ""), UID.replace("-", "")[:16])


def test_otlp_defaults_to_http_protobuf(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a protocol, OTLP goes over http/protobuf as the specification says."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.http_endpoint)
    exporter = build_exporter({})
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    assert receiver.export_requests == 1


def test_unknown_protocol_is_a_configuration_error() -> None:
    """An unsupported OTLP protocol is refused with the supported ones named."""
    with pytest.raises(ConfigError, match="grpc or http/protobuf"):
        build_exporter({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_unknown_exporter_name_is_a_configuration_error() -> None:
    """An unknown OTEL_TRACES_EXPORTER value is refused with the choices listed."""
    with pytest.raises(ConfigError, match=r"zipkin.*choose from otlp, gcp_otlp"):
        build_exporter({"OTEL_TRACES_EXPORTER": "zipkin"})


def test_console_exporter_writes_one_json_line_per_span() -> None:
    """OTEL_TRACES_EXPORTER=console prints each span as one JSON line."""
    out = io.StringIO()
    exporter = build_exporter({"OTEL_TRACES_EXPORTER": "console"}, stdout=out)
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["name"] == "RUN ci-demo"


def test_none_exporter_accepts_everything() -> None:
    """OTEL_TRACES_EXPORTER=none drops spans and reports success."""
    exporter = build_exporter({"OTEL_TRACES_EXPORTER": "none"})
    assert isinstance(exporter, NullExporter)
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS


def test_several_exporters_fan_out(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A comma-separated list sends spans to each exporter."""
    out = io.StringIO()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{receiver.grpc_endpoint}")
    env = {"OTEL_TRACES_EXPORTER": "otlp, console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    exporter = build_exporter(env, stdout=out)
    assert isinstance(exporter, FanOutExporter)
    assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    assert len(receiver.spans()) == 1
    assert out.getvalue().count("\n") == 1


def test_fan_out_fails_when_any_exporter_fails() -> None:
    """If one destination failed the message is not done, though the others were still tried."""
    failing = _Scripted([SpanExportResult.FAILURE])
    working = _Scripted([SpanExportResult.SUCCESS])
    assert FanOutExporter([failing, working]).export(_spans()) is SpanExportResult.FAILURE
    assert working.calls == 1


def test_retrying_exporter_retries_until_success() -> None:
    """Failures are retried with backoff; success on the third attempt is success."""
    inner = _Scripted(
        [SpanExportResult.FAILURE, SpanExportResult.FAILURE, SpanExportResult.SUCCESS]
    )
    assert RetryingExporter(inner, max_wait=0.01).export(_spans()) is SpanExportResult.SUCCESS
    assert inner.calls == 3


def test_retrying_exporter_gives_up_with_failure() -> None:
    """After the last attempt the failure is reported, not raised."""
    inner = _Scripted([SpanExportResult.FAILURE] * 4)
    result = RetryingExporter(inner, attempts=4, max_wait=0.01).export(_spans())
    assert result is SpanExportResult.FAILURE
    assert inner.calls == 4


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_legacy_cloud_trace_exporter_writes_to_a_trace_service() -> None:
    """gcp_trace: the legacy exporter writes the spans to a (local) Cloud Trace TraceService."""
    with FakeCloudTraceServer() as server:
        exporter = gcp_trace_exporter("demo-project", client=server.client())
        assert exporter.export(_spans()) is SpanExportResult.SUCCESS
        (span,) = server.spans()
    trace = UID.replace("-", "")
    assert span.name == f"projects/demo-project/traces/{trace}/spans/{trace[:16]}"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_legacy_cloud_trace_exporter_reports_a_refusing_service_as_failure() -> None:
    """A Cloud Trace that refuses the write makes the export FAILURE after the retries."""
    with FakeCloudTraceServer() as server:
        server.refuse(grpc.StatusCode.PERMISSION_DENIED)
        exporter = gcp_trace_exporter("demo-project", client=server.client())
        assert isinstance(exporter, RetryingExporter)
        quick = RetryingExporter(exporter.inner, max_wait=0.01)  # same exporter, shorter waits
        assert quick.export(_spans()) is SpanExportResult.FAILURE
        assert server.refused_requests == 4


def test_gcp_otlp_requires_the_project_that_receives_traces() -> None:
    """gcp_otlp without GOOGLE_CLOUD_PROJECT is a configuration error naming the variable."""
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        build_resource({"OTEL_TRACES_EXPORTER": "gcp_otlp"})


def test_gcp_otlp_resource_carries_the_project_id() -> None:
    """The Telemetry API's required gcp.project_id resource attribute is filled in."""
    resource = build_resource({"OTEL_TRACES_EXPORTER": "gcp_otlp", "GOOGLE_CLOUD_PROJECT": "p1"})
    assert resource.attributes["gcp.project_id"] == "p1"


def test_gcp_otlp_without_credentials_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without Application Default Credentials, gcp_otlp says how to provide them."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/adc.json")
    with pytest.raises(ConfigError, match="Application Default Credentials"):
        build_exporter({"OTEL_TRACES_EXPORTER": "gcp_otlp"})


def test_resource_service_name_defaults_to_prow() -> None:
    """The spans describe Prow's jobs, so the service is 'prow' unless configured."""
    assert build_resource({}).attributes["service.name"] == "prow"


def test_resource_honours_the_standard_variables() -> None:
    """OTEL_SERVICE_NAME wins; OTEL_RESOURCE_ATTRIBUTES is parsed and percent-decoded."""
    resource = build_resource(
        {
            "OTEL_SERVICE_NAME": "prow-canary",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=ci%20infra",
        }
    )
    assert resource.attributes["service.name"] == "prow-canary"
    assert resource.attributes["team"] == "ci infra"
    assert resource.attributes["deployment.environment"] == "prod"
