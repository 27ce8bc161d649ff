"""The CI/CD metric points one message gives: a pure function of the spans it exported.

OpenTelemetry's CI/CD conventions (``cicd-metrics.yaml``) define five metrics; a stateless
consumer of crier's stream can emit three of them correctly:

- ``cicd.pipeline.run.duration`` (histogram, s): ``cicd.pipeline.run.state=pending`` with the
  queue time when the ``pending`` message is exported, and ``executing`` with the time from the
  pending instant to completion, with ``cicd.pipeline.result`` (and ``error.type`` if it failed),
  when the terminal message is exported. Each state is counted by exactly one message kind, so a
  job counts once per state even though the terminal message re-sends the queue span. The pending
  instant is the queue span's end (artifact facts only); a job with no known pending instant has
  no queue span, hence no ``pending`` point, and its ``executing`` time runs from creation.
- ``cicd.pipeline.run.errors`` (counter): one per terminal run that failed, by ``error.type``.
- ``cicd.system.errors`` (counter): prowtrace's own failures, by ``error.type`` (below).

Not emitted: ``cicd.pipeline.run.active`` is an up-down counter of runs in progress; it needs each
``+1`` at ``pending`` to meet its ``-1`` at the end on the same series, but instances come and go
(a ``-1`` lands on another instance's series, a restart loses the ``+1``s) and a job whose
terminal message is lost stays "active" forever. ``cicd.worker.count`` describes Prow's build
nodes, which the messages never mention.

Attributes are bounded: the job name, run state, result and error type, never build IDs, PR
numbers or trace IDs (those go into exemplars, which link a point to its trace).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from processor.core import semconv as sc
from processor.core.spans import TraceSpan

RUN_DURATION: Final = "cicd.pipeline.run.duration"
RUN_ERRORS: Final = "cicd.pipeline.run.errors"
SYSTEM_ERRORS: Final = "cicd.system.errors"

DURATION_BUCKETS: Final = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    2700.0,
    3600.0,
    5400.0,
    7200.0,
    10800.0,
    14400.0,
    21600.0,
    43200.0,
    86400.0,
)
"""Upper bounds in seconds: queue times of seconds to minutes, runs of minutes to hours (Prow's
default job timeout is 2 h; some jobs run up to a day). Roughly doubling, 19 buckets."""

SYSTEM_COMPONENT: Final = "prowtrace"
"""``cicd.system.component`` of prowtrace's own errors."""


class SystemErrorType(StrEnum):
    """``error.type`` values of ``cicd.system.errors``: what went wrong inside prowtrace."""

    INVALID_MESSAGE = "invalid_message"
    """A message that can never be parsed (poison: dead-lettered or acked and logged)."""
    UNTRACEABLE_MESSAGE = "untraceable_message"
    """A well-formed message whose job can never be traced (poison, likewise)."""
    EXPORT_FAILED = "export_failed"
    """The span exporter failed; the message is nacked and will be retried."""


class Instrument(StrEnum):
    """The instrument kinds the metrics use."""

    HISTOGRAM = "histogram"
    COUNTER = "counter"


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """One metric as the conventions define it."""

    name: str
    instrument: Instrument
    unit: str
    description: str


DEFINITIONS: Final = (
    MetricDefinition(
        RUN_DURATION,
        Instrument.HISTOGRAM,
        "s",
        "Duration of a pipeline run grouped by pipeline, state and result.",
    ),
    MetricDefinition(
        RUN_ERRORS,
        Instrument.COUNTER,
        "{error}",
        "The number of errors encountered in pipeline runs (eg. compile, test failures).",
    ),
    MetricDefinition(
        SYSTEM_ERRORS,
        Instrument.COUNTER,
        "{error}",
        "The number of errors in a component of the CI/CD system (eg. controller, scheduler, "
        "agent).",
    ),
)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One measurement: a value for a metric, its attributes, and the span it came from."""

    metric: str
    value: float
    attributes: Mapping[str, str] = field(default_factory=dict)
    trace_id: int = 0
    """The trace the measurement belongs to (0: none), for an exemplar."""
    span_id: int = 0


_NS_PER_SECOND = 1e9


def run_points(spans: Sequence[TraceSpan]) -> list[MetricPoint]:
    """Return the run metrics of one exported message's spans (see the module docstring).

    A message with a root span is terminal: it gives the ``executing`` duration and, if the run
    failed, one run error. A message with only a queue span is the ``pending`` one: it gives the
    queue time. Anything else (no spans) gives nothing.
    """
    by_path = {span.record.path: span for span in spans}
    root = by_path.get("")
    queue = by_path.get("queue")
    if root is None:
        if queue is None:
            return []
        record = queue.record
        attributes = {
            sc.CICD_PIPELINE_NAME: _name(record.attributes),
            sc.CICD_PIPELINE_RUN_STATE: sc.RUN_STATE_PENDING,
        }
        seconds = (record.end_ns - record.start_ns) / _NS_PER_SECOND
        return [MetricPoint(RUN_DURATION, seconds, attributes, queue.trace_id, queue.span_id)]
    record = root.record
    # Executing starts where the queue ends; a revived job re-sends no queue span, and a job with
    # no known pending instant has none: then the run's whole life is the best bound there is.
    started = queue.record.end_ns if queue is not None else record.start_ns
    name = _name(record.attributes)
    attributes = {
        sc.CICD_PIPELINE_NAME: name,
        sc.CICD_PIPELINE_RUN_STATE: sc.RUN_STATE_EXECUTING,
        sc.CICD_PIPELINE_RESULT: str(record.attributes.get(sc.CICD_PIPELINE_RESULT, "")),
    }
    error_type = record.attributes.get(sc.ERROR_TYPE)
    if error_type:
        attributes[sc.ERROR_TYPE] = str(error_type)
    seconds = max(0, record.end_ns - started) / _NS_PER_SECOND
    points = [MetricPoint(RUN_DURATION, seconds, attributes, root.trace_id, root.span_id)]
    if error_type:
        points.append(
            MetricPoint(
                RUN_ERRORS,
                1,
                {sc.CICD_PIPELINE_NAME: name, sc.ERROR_TYPE: str(error_type)},
                root.trace_id,
                root.span_id,
            )
        )
    return points


def system_error_point(error: SystemErrorType) -> MetricPoint:
    """Return the ``cicd.system.errors`` increment for one of prowtrace's own failures."""
    return MetricPoint(
        SYSTEM_ERRORS, 1, {sc.CICD_SYSTEM_COMPONENT: SYSTEM_COMPONENT, sc.ERROR_TYPE: str(error)}
    )


def _name(attributes: Mapping[str, object]) -> str:
    return str(attributes.get(sc.CICD_PIPELINE_NAME, ""))
