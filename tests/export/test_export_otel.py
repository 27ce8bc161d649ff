"""Conversion of the core's spans to SDK ReadableSpans keeps everything the core decided."""

from __future__ import annotations

from core_fixtures import UID, terminal_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode, TraceFlags

from processor import __version__
from processor.core.ids import identity_from_uid, span_id_for
from processor.core.spans import AttributeValue, SpanEvent, SpanRecord, TraceSpan, identify
from processor.export.otel import SpanConverter, to_readable_span

RESOURCE = Resource.create({"service.name": "prowtrace-test", "deployment.environment": "ci"})
IDENTITY = identity_from_uid(UID)


def converted() -> tuple[list[TraceSpan], list[ReadableSpan]]:
    """Return the failure run's trace spans and their conversions."""
    spans = identify(IDENTITY, terminal_spans())
    return spans, SpanConverter(RESOURCE).convert(spans)


def one(record: SpanRecord) -> ReadableSpan:
    """Convert a single record of the job's trace."""
    [span] = identify(IDENTITY, [record])
    return to_readable_span(span, RESOURCE)


def test_conversion_keeps_order_and_count() -> None:
    """The converter returns one SDK span per trace span, in the same order."""
    spans, readable = converted()
    assert [span.name for span in readable] == [span.record.name for span in spans]


def test_conversion_keeps_trace_and_span_ids() -> None:
    """Trace and span IDs are the deterministic ones, unchanged."""
    spans, readable = converted()
    for span, sdk in zip(spans, readable, strict=True):
        assert sdk.context is not None
        assert (sdk.context.trace_id, sdk.context.span_id) == (span.trace_id, span.span_id)


def test_root_has_no_parent() -> None:
    """The root converts to a span without a parent, with the root span ID."""
    _, readable = converted()
    root = readable[0]
    assert root.parent is None
    assert root.context is not None
    assert root.context.span_id == IDENTITY.root_span_id


def test_children_keep_their_parent() -> None:
    """A child's parent context carries the trace ID and its parent's span ID."""
    _, readable = converted()
    queue = next(span for span in readable if span.name == "queue")
    assert queue.parent is not None
    assert (queue.parent.trace_id, queue.parent.span_id) == (
        IDENTITY.trace_id,
        IDENTITY.root_span_id,
    )
    command = next(span for span in readable if span.name == "git merge")
    assert command.parent is not None
    assert command.parent.span_id == span_id_for(
        IDENTITY, "pod/init/clonerefs/clone/kubernetes/kubernetes"
    )


def test_spans_are_sampled() -> None:
    """Every span is sampled, so parent-based samplers downstream keep the job's own spans."""
    _, readable = converted()
    for span in readable:
        assert span.context is not None
        assert span.context.trace_flags == TraceFlags.SAMPLED


def test_kinds_are_kept() -> None:
    """SERVER stays SERVER and INTERNAL stays INTERNAL."""
    _, readable = converted()
    assert readable[0].kind is SpanKind.SERVER
    assert {span.kind for span in readable[1:]} == {SpanKind.INTERNAL}


def test_error_becomes_error_status_with_description() -> None:
    """A record's error is an ERROR status carrying the description."""
    span = one(SpanRecord("pod", "", "pod", 1, 2, error="container test: OOMKilled"))
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "container test: OOMKilled"


def test_no_error_leaves_status_unset() -> None:
    """A record without error has an UNSET status (not OK: we do not judge success)."""
    span = one(SpanRecord("pod", "", "pod", 1, 2))
    assert span.status.status_code is StatusCode.UNSET


def test_times_are_kept_to_the_nanosecond() -> None:
    """Start and end times are the records' nanoseconds exactly."""
    span = one(SpanRecord("queue", "", "queue", 1588812735000000001, 1588812740875000999))
    assert (span.start_time, span.end_time) == (1588812735000000001, 1588812740875000999)


def test_attributes_are_kept_with_their_types() -> None:
    """Strings, booleans, integers and tuples keep their values and types."""
    attributes: dict[str, AttributeValue] = {
        "cicd.pipeline.name": "pull-kubernetes-unit",
        "prow.clone.failed": False,
        "prow.pod.revival_count": 2,
        "prow.pulls": (123, 124),
        "prow.extra_repos": ("kubernetes/test-infra@master",),
    }
    span = one(SpanRecord("pod", "", "pod", 1, 2, attributes=attributes))
    assert dict(span.attributes or {}) == attributes


def test_events_are_kept_with_times_and_attributes() -> None:
    """Span events keep their names, times and attributes, in order."""
    events = (
        SpanEvent("prow.pod.revived", 5, {"prow.pod.revival_count": 1}),
        SpanEvent("Scheduled", 7, {"prow.event.message": "assigned", "prow.event.count": 1}),
    )
    span = one(SpanRecord("pod", "", "pod", 1, 9, events=events))
    assert [(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events] == [
        ("prow.pod.revived", 5, {"prow.pod.revival_count": 1}),
        ("Scheduled", 7, {"prow.event.message": "assigned", "prow.event.count": 1}),
    ]


def test_resource_and_scope_are_attached() -> None:
    """Every span carries the configured resource and prowtrace's instrumentation scope."""
    _, readable = converted()
    for span in readable:
        assert span.resource is RESOURCE
        assert span.instrumentation_scope is not None
        assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == (
            "prowtrace",
            __version__,
        )


def test_converted_span_serializes_to_json() -> None:
    """An SDK span built this way is complete enough for the SDK's own JSON rendering."""
    _, readable = converted()
    rendered = readable[0].to_json()
    assert f'"trace_id": "0x{IDENTITY.trace_id_hex}"' in rendered
    assert '"kind": "SpanKind.SERVER"' in rendered
