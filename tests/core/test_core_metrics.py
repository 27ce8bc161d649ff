"""The CI/CD metric points a message's spans give (processor.core.metrics), tested directly."""

from __future__ import annotations

from core_fixtures import (
    COMPLETION,
    JOB,
    PENDING_PUBLISH,
    SNOWFLAKE_INSTANT,
    START,
    UID,
    artifacts,
    instant,
    prowjob_doc,
    terminal_spans,
    traceable,
)

from processor.core import semconv as sc
from processor.core.build import job_spans, to_ns
from processor.core.ids import identity_from_uid
from processor.core.metrics import (
    DURATION_BUCKETS,
    RUN_DURATION,
    RUN_ERRORS,
    SYSTEM_ERRORS,
    MetricPoint,
    SystemErrorType,
    run_points,
    system_error_point,
)
from processor.core.spans import SpanRecord, TraceSpan, identify

IDENTITY = identity_from_uid(UID)


def _identified(records: list[SpanRecord]) -> list[TraceSpan]:
    return identify(IDENTITY, records)


def _pending_spans() -> list[TraceSpan]:
    arts = artifacts(prowjob=prowjob_doc(state="pending", completion=None))
    return _identified(job_spans(traceable("pending"), arts, PENDING_PUBLISH))


def _seconds(start: int, end: int) -> float:
    return (end - start) / 1e9


def test_pending_message_gives_the_queue_time() -> None:
    """The pending message's queue span gives one pending duration: creation to pending."""
    (point,) = run_points(_pending_spans())
    assert point.metric == RUN_DURATION
    assert point.attributes == {
        sc.CICD_PIPELINE_NAME: JOB,
        sc.CICD_PIPELINE_RUN_STATE: sc.RUN_STATE_PENDING,
    }
    assert point.value == _seconds(to_ns(instant(START)), to_ns(SNOWFLAKE_INSTANT))


def test_terminal_message_gives_the_executing_time_from_pending_to_completion() -> None:
    """A finished run gives its executing duration, pending instant to completion, once."""
    points = run_points(_identified(terminal_spans("success", description="Job succeeded.")))
    (duration,) = [point for point in points if point.metric == RUN_DURATION]
    assert duration.value == _seconds(to_ns(SNOWFLAKE_INSTANT), to_ns(instant(COMPLETION)))
    assert duration.attributes == {
        sc.CICD_PIPELINE_NAME: JOB,
        sc.CICD_PIPELINE_RUN_STATE: sc.RUN_STATE_EXECUTING,
        sc.CICD_PIPELINE_RESULT: sc.RESULT_SUCCESS,
    }


def test_terminal_message_does_not_count_the_queue_again() -> None:
    """The queue span a terminal message re-sends gives no second pending point."""
    points = run_points(_identified(terminal_spans("failure")))
    states = [point.attributes.get(sc.CICD_PIPELINE_RUN_STATE) for point in points]
    assert sc.RUN_STATE_PENDING not in states


def test_failed_run_counts_one_run_error_by_type() -> None:
    """A failed run's duration carries error.type, and one cicd.pipeline.run.errors follows."""
    points = run_points(_identified(terminal_spans("failure")))
    duration, error = points
    assert duration.attributes[sc.ERROR_TYPE] == sc.ERROR_TEST_FAILED
    assert error == MetricPoint(
        RUN_ERRORS,
        1,
        {sc.CICD_PIPELINE_NAME: JOB, sc.ERROR_TYPE: sc.ERROR_TEST_FAILED},
        IDENTITY.trace_id,
        duration.span_id,
    )


def test_aborted_run_is_no_error() -> None:
    """A cancelled run gives its duration with result cancellation and no run error."""
    points = run_points(_identified(terminal_spans("aborted", description="Job aborted.")))
    assert [point.metric for point in points] == [RUN_DURATION]
    assert points[0].attributes[sc.CICD_PIPELINE_RESULT] == sc.RESULT_CANCELLATION


def test_revived_run_measures_executing_from_creation() -> None:
    """A revived run re-sends no queue span: executing is measured from creation (stated bound)."""
    points = run_points(_identified(terminal_spans("failure", revival_count=2)))
    assert points[0].value == _seconds(to_ns(instant(START)), to_ns(instant(COMPLETION)))


def test_points_link_to_the_span_they_measure() -> None:
    """Every run point carries the trace and span ID of the span it measures, for exemplars."""
    spans = _identified(terminal_spans("failure"))
    root = next(span for span in spans if span.record.parent is None)
    assert {(point.trace_id, point.span_id) for point in run_points(spans)} == {
        (root.trace_id, root.span_id)
    }


def test_no_attribute_is_unbounded() -> None:
    """Points carry only the bounded attributes: no run ID, build ID, PR number or trace ID."""
    allowed = {
        sc.CICD_PIPELINE_NAME,
        sc.CICD_PIPELINE_RUN_STATE,
        sc.CICD_PIPELINE_RESULT,
        sc.ERROR_TYPE,
    }
    points = run_points(_pending_spans()) + run_points(_identified(terminal_spans("failure")))
    assert {key for point in points for key in point.attributes} <= allowed


def test_message_without_spans_gives_nothing() -> None:
    """No spans (a skipped state), no points."""
    assert run_points([]) == []


def test_system_error_names_prowtrace_as_the_component() -> None:
    """The service's own failures count under cicd.system.component=prowtrace, by error.type."""
    point = system_error_point(SystemErrorType.EXPORT_FAILED)
    assert (point.metric, point.value) == (SYSTEM_ERRORS, 1)
    assert point.attributes == {
        sc.CICD_SYSTEM_COMPONENT: "prowtrace",
        sc.ERROR_TYPE: "export_failed",
    }


def test_buckets_span_seconds_to_a_day_in_order() -> None:
    """Duration buckets rise strictly from a second to a day."""
    assert list(DURATION_BUCKETS) == sorted(set(DURATION_BUCKETS))
    assert (DURATION_BUCKETS[0], DURATION_BUCKETS[-1]) == (1.0, 86400.0)
