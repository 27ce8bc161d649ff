"""What the CI/CD metrics of a synthetic stream must add up to, computed from the jobs themselves.

The truth comes from each job's own record, not from prowtrace's spans: the final ``prowjob.json``
(times truncated to the second, as ``metav1.Time`` is), the build ID vended at the pending instant
(a snowflake holds that instant to the millisecond, whether or not prowjob.json has
``pendingTime``; a tot build ID does not, so ``pendingTime`` stands; with neither the instant is
unknown), and the states crier published. A job counts once per state it was traced in:
``pending`` (queue time, creation to pending) if a ``pending`` message named its folder and the
pending instant is known; ``executing`` (pending to completion; from creation for a revived pod,
whose queue span is not re-sent, and for a job whose pending instant is unknown) if a terminal
message did.
``cicd.pipeline.run.errors`` counts the runs that ended ``failure`` or ``error``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from processor.core import semconv as sc
from processor.core.metrics import RUN_DURATION, RUN_ERRORS
from processor.synthetic import SyntheticJob, snowflake_ms
from support.otlp_receiver import OtlpReceiver, ReceivedPoint, metric_totals

TERMINAL = ("success", "failure", "aborted", "error")
FAILED = ("failure", "error")

Key = tuple[str, str, str]
"""(metric, job name, run state) — the state is ``""`` for the error counter."""


@dataclass(frozen=True)
class Tally:
    """How many points and the sum of their values."""

    count: int
    total: float


_SNOWFLAKE_MIN = 1 << 40
"""Smaller build IDs are tot's counters, not snowflakes."""


def _pending_instant(job: SyntheticJob, recorded: str | None) -> datetime | None:
    """Return when the job's first pod was created, or ``None`` if nothing records it.

    Its first build ID's vending instant if that is a snowflake, else ``pendingTime``.
    """
    build_id = str(job.prowjob_at("pending")["status"].get("build_id", ""))
    if build_id.isdigit() and int(build_id) >= _SNOWFLAKE_MIN:
        return datetime.fromtimestamp(snowflake_ms(int(build_id)) / 1000, tz=UTC)
    return datetime.fromisoformat(recorded) if recorded else None


def _seconds(start: datetime | str, end: datetime | str) -> float:
    begin = datetime.fromisoformat(start) if isinstance(start, str) else start
    finish = datetime.fromisoformat(end) if isinstance(end, str) else end
    return (finish - begin).total_seconds()


def corpus_truth(jobs: Iterable[SyntheticJob]) -> dict[Key, Tally]:
    """Return the run metrics the jobs' messages must give, by metric, job and state."""
    truth: dict[Key, Tally] = {}

    def add(key: Key, value: float) -> None:
        old = truth.get(key, Tally(0, 0.0))
        truth[key] = Tally(old.count + 1, old.total + value)

    for job in jobs:
        states = {
            message.data["status"] for message in job.messages if message.data.get("gcs_path")
        }
        final = next((state for state in TERMINAL if state in states), None)
        status = job.prowjob_at(final or "pending")["status"] if states else {}
        start, recorded = status.get("startTime"), status.get("pendingTime")
        pending = _pending_instant(job, recorded) if recorded or "pending" in states else None
        if "pending" in states and start and pending:
            add((RUN_DURATION, job.job_name, sc.RUN_STATE_PENDING), _seconds(start, pending))
        if final is None:
            continue
        revived = bool(status.get("pod_revival_count"))
        began = pending if pending is not None and not revived else start
        if began is None:
            raise ValueError(f"job {job.uid} ended without a startTime")
        add(
            (RUN_DURATION, job.job_name, sc.RUN_STATE_EXECUTING),
            _seconds(began, status["completionTime"]),
        )
        if final in FAILED:
            add((RUN_ERRORS, job.job_name, ""), 1)
    return truth


def received_tallies(points: Iterable[ReceivedPoint]) -> dict[Key, Tally]:
    """Return what a receiver got by the same key, summed over instances, results, error types."""
    tallies: dict[Key, Tally] = {}
    for (metric, attributes), (count, value) in metric_totals(points).items():
        if metric not in {RUN_DURATION, RUN_ERRORS}:
            continue
        named: Mapping[str, object] = dict(attributes)
        key = (
            metric,
            str(named.get(sc.CICD_PIPELINE_NAME, "")),
            str(named.get(sc.CICD_PIPELINE_RUN_STATE, "")),
        )
        old = tallies.get(key, Tally(0, 0.0))
        tallies[key] = Tally(old.count + count, old.total + value)
    return tallies


def count_differences(
    received: Mapping[Key, Tally], truth: Mapping[Key, Tally], *, tolerance: float = 1e-6
) -> list[str]:
    """List every key whose count differs, or whose sum differs by more than ``tolerance`` s."""
    problems = []
    for key in sorted(set(received) | set(truth)):
        got, want = received.get(key, Tally(0, 0.0)), truth.get(key, Tally(0, 0.0))
        if got.count != want.count or abs(got.total - want.total) > tolerance:
            problems.append(f"{key}: received {got}, truth {want}")
    return problems


def total_count(tallies: Mapping[Key, Tally], metric: str, state: str) -> int:
    """Return how many points of ``metric`` in ``state`` there are over every job."""
    return sum(t.count for (m, _, s), t in tallies.items() if (m, s) == (metric, state))


def metrics_env(receiver: OtlpReceiver, *, interval_ms: int = 600_000) -> dict[str, str]:
    """Return the variables that send a consumer's metrics to ``receiver`` over OTLP/gRPC.

    The default interval (10 min) leaves only the flush at exit to export, so what arrives is
    exactly what the process counted before its SIGTERM (or nothing, after a SIGKILL).
    """
    return {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://{receiver.grpc_endpoint}",
        "OTEL_METRIC_EXPORT_INTERVAL": str(interval_ms),
    }
