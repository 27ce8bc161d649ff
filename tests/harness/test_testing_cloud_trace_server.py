"""The fake Cloud Trace server, driven by the real CloudTraceSpanExporter and TraceServiceClient."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.cloud.trace_v2 import Span, TruncatableString
from opentelemetry import trace as trace_api
from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from support.cloud_trace_server import FakeCloudTraceServer

# The legacy exporter warns about its own deprecation and its use of BoundedDict; it is the
# exporter under test here, so those warnings are expected noise.
pytestmark = [
    pytest.mark.filterwarnings("ignore:CloudTraceSpanExporter is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Deprecated since version 1.4.0:DeprecationWarning"),
]

PROJECT = "prow-project"
TRACE_ID = 0x0123456789ABCDEF0123456789ABCDEF
SPAN_ID = 0x1111111111111111
PARENT_ID = 0x2222222222222222


def make_span(name: str = "job") -> ReadableSpan:
    """Build a finished SDK child span with one attribute."""
    return ReadableSpan(
        name=name,
        context=trace_api.SpanContext(TRACE_ID, SPAN_ID, is_remote=False),
        parent=trace_api.SpanContext(TRACE_ID, PARENT_ID, is_remote=False),
        attributes={"prow.job": "unit"},
        start_time=1_000_000_000,
        end_time=2_000_000_000,
    )


@pytest.fixture
def server() -> Iterator[FakeCloudTraceServer]:
    """Run a fake Cloud Trace server for one test."""
    with FakeCloudTraceServer() as running:
        yield running


@pytest.fixture
def exporter(server: FakeCloudTraceServer) -> CloudTraceSpanExporter:
    """Build the real Cloud Trace exporter with a client aimed at the fake."""
    return CloudTraceSpanExporter(  # type: ignore[no-untyped-call]  # the exporter has no annotations
        project_id=PROJECT, client=server.client()
    )


def test_exporter_writes_spans_to_the_fake(
    server: FakeCloudTraceServer, exporter: CloudTraceSpanExporter
) -> None:
    """An exported span arrives with its Cloud Trace name, display name, parent and attributes."""
    assert exporter.export([make_span()]) is SpanExportResult.SUCCESS
    [span] = server.spans()
    assert span.name == f"projects/{PROJECT}/traces/{TRACE_ID:032x}/spans/{SPAN_ID:016x}"
    assert span.display_name.value == "job"
    assert span.parent_span_id == f"{PARENT_ID:016x}"
    assert span.attributes.attribute_map["prow.job"].string_value.value == "unit"


def test_requests_record_the_project(
    server: FakeCloudTraceServer, exporter: CloudTraceSpanExporter
) -> None:
    """Each BatchWriteSpans request is kept with the project it was written to."""
    exporter.export([make_span("a")])
    exporter.export([make_span("b")])
    assert [request.name for request in server.requests()] == [f"projects/{PROJECT}"] * 2
    assert server.batch_requests == 2


def test_refused_export_fails_until_accepted(
    server: FakeCloudTraceServer, exporter: CloudTraceSpanExporter
) -> None:
    """While refusing, the exporter reports FAILURE and nothing is stored; accept() restores it."""
    server.refuse(grpc.StatusCode.PERMISSION_DENIED)
    assert exporter.export([make_span()]) is SpanExportResult.FAILURE
    assert (server.refused_requests, server.spans()) == (1, [])
    server.accept()
    assert exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert len(server.spans()) == 1


def test_create_span_is_stored_like_a_one_span_batch(server: FakeCloudTraceServer) -> None:
    """CreateSpan through the real client is stored, under the span's project."""
    name = f"projects/{PROJECT}/traces/{TRACE_ID:032x}/spans/{SPAN_ID:016x}"
    span = Span(name=name, span_id=f"{SPAN_ID:016x}", display_name=TruncatableString(value="x"))
    assert server.client().create_span(request=span).name == name
    assert [request.name for request in server.requests()] == [f"projects/{PROJECT}"]
    assert [stored.name for stored in server.spans()] == [name]


def test_wait_for_and_clear(server: FakeCloudTraceServer, exporter: CloudTraceSpanExporter) -> None:
    """wait_for sees a write; clear() forgets it, after which wait_for times out."""
    exporter.export([make_span()])
    assert server.wait_for(lambda s: len(s.spans()) == 1, timeout=1)
    server.clear()
    assert not server.wait_for(lambda s: len(s.spans()) == 1, timeout=0.1)


def test_delay_slows_each_write(
    server: FakeCloudTraceServer, exporter: CloudTraceSpanExporter
) -> None:
    """With a delay set, a write takes at least that long and still succeeds."""
    server.set_delay(0.2)
    started = time.monotonic()
    assert exporter.export([make_span()]) is SpanExportResult.SUCCESS
    assert time.monotonic() - started >= 0.2
