"""The demo's user endpoint: the forwarder and the endpoint checks."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from processor.tools.demo.sinks import (
    EndpointForwarder,
    endpoint_address,
    endpoint_hint,
    otlp_endpoint,
    otlp_protocol,
    unreachable_reason,
)

TRACE_A = 0xA0000000000000000000000000000001
TRACE_B = 0xB0000000000000000000000000000002


def _span(trace_id: int, span_id: int) -> ReadableSpan:
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return ReadableSpan(name=f"s{span_id}", context=context, start_time=1, end_time=2)


class _Recording(SpanExporter):
    """An exporter that answers as told, logging a complaint when it fails."""

    def __init__(self, result: SpanExportResult, release: threading.Event | None = None) -> None:
        self.result = result
        self.release = release
        self.spans: list[ReadableSpan] = []
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.release is not None:
            self.release.wait(5)
        self.spans.extend(spans)
        if self.result is not SpanExportResult.SUCCESS:
            logging.getLogger("opentelemetry.exporter.otlp.test").error("code: %s", 404)
        return self.result

    def shutdown(self) -> None:
        self.shut_down = True


def test_the_forwarder_delivers_in_order_and_reports_success() -> None:
    """Batches reach the inner exporter in order; finish says all were sent and shuts it down."""
    inner = _Recording(SpanExportResult.SUCCESS)
    forwarder = EndpointForwarder(inner)

    assert forwarder.export([_span(TRACE_A, 1)]) is SpanExportResult.SUCCESS
    forwarder.export([_span(TRACE_A, 2), _span(TRACE_B, 3)])
    delivery = forwarder.finish(timeout=5)

    assert [span.name for span in inner.spans] == ["s1", "s2", "s3"]
    assert (delivery.sent, delivery.failed, delivery.unsent, delivery.ok) == (3, 0, 0, True)
    assert inner.shut_down


def test_the_forwarder_reports_refused_spans_with_the_exporters_words() -> None:
    """A failing endpoint: export still succeeds for the pipeline; finish counts and explains."""
    forwarder = EndpointForwarder(_Recording(SpanExportResult.FAILURE))
    forwarder.export([_span(TRACE_A, 1), _span(TRACE_A, 2)])
    delivery = forwarder.finish(timeout=5)

    assert (delivery.sent, delivery.failed, delivery.ok) == (0, 2, False)
    assert delivery.last_error == "code: 404"


def test_the_forwarder_stops_waiting_for_a_hung_endpoint() -> None:
    """Finishing gives up after its timeout, counting what never went out."""
    release = threading.Event()
    forwarder = EndpointForwarder(_Recording(SpanExportResult.SUCCESS, release))
    forwarder.export([_span(TRACE_A, 1)])
    forwarder.export([_span(TRACE_A, 2)])
    delivery = forwarder.finish(timeout=0.1)
    release.set()

    assert (delivery.sent, delivery.unsent) == (0, 2)


def test_finishing_twice_gives_the_first_answer() -> None:
    """A second finish (cleanup after success) changes nothing."""
    forwarder = EndpointForwarder(_Recording(SpanExportResult.SUCCESS))
    forwarder.export([_span(TRACE_A, 1)])

    assert forwarder.finish(timeout=5) == forwarder.finish(timeout=0)


def test_the_traces_endpoint_wins_over_the_generic_one() -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used before OTEL_EXPORTER_OTLP_ENDPOINT."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": " http://traces:4318/v1/traces ",
    }

    assert otlp_endpoint(env) == "http://traces:4318/v1/traces"
    assert otlp_endpoint({}) == ""


def test_the_protocol_defaults_to_http_protobuf() -> None:
    """Unset protocol means the specification's default."""
    assert otlp_protocol({}) == "http/protobuf"
    assert otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"


@pytest.mark.parametrize(
    ("endpoint", "address"),
    [
        ("http://localhost:4318", ("localhost", 4318)),
        ("https://tempo.example.com/otlp", ("tempo.example.com", 443)),
        ("127.0.0.1:4317", ("127.0.0.1", 4317)),
        ("http://[::1]:4318/", ("::1", 4318)),
    ],
)
def test_endpoint_address_parses_urls_and_host_port(
    endpoint: str, address: tuple[str, int]
) -> None:
    """Scheme, host, port (or the scheme's default) as the exporters read them."""
    assert endpoint_address(endpoint) == address


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317"}, "OTLP/gRPC's"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
            "OTLP/HTTP's",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318/v1/traces"}, "base URL"),
    ],
)
def test_likely_misconfigurations_get_a_hint(env: dict[str, str], says: str) -> None:
    """The wrong port for the protocol, or /v1/traces on the base URL, is pointed out."""
    assert says in endpoint_hint(env)


def test_a_consistent_endpoint_gets_no_hint() -> None:
    """http://localhost:4318 with the default protocol is fine."""
    assert endpoint_hint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}) == ""


@pytest.fixture
def listening() -> Iterator[int]:
    """Listen on a TCP port of 127.0.0.1 and give its number."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_an_endpoint_that_accepts_connections_is_reachable(listening: int) -> None:
    """Something listening: no reason to skip it."""
    assert unreachable_reason(f"http://127.0.0.1:{listening}") == ""


def test_an_endpoint_where_nothing_listens_is_unreachable() -> None:
    """A closed port gives a reason naming the address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    assert f"127.0.0.1:{port}" in unreachable_reason(f"http://127.0.0.1:{port}")
