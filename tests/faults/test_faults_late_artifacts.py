"""Fault injection: artifacts written well after the message; the trace completes once they appear.

Crier's GCS reporter races its Pub/Sub reporter, and podinfo.json is written only after the pod
is gone. For half of the jobs that write both, prowjob.json and podinfo.json are withheld from the
mirror when the stream is published (for some, prowjob.json is there but stale: the version of
when the job went pending). ``late_artifact_seconds`` later the final files appear. Inside the
grace period (``PROWTRACE_GRACE_SECONDS``) ``prowtrace pull`` holds such a message (its lease kept
extended) and re-checks it about every second, never nacking it, so once the files are there every
late trace must complete, exactly as the oracle says, within seconds and before the grace ends.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.e2e import (
    ConsumerSet,
    consumer_env,
    count_unacked,
    create_route,
    publish_messages,
    wait_for_traces,
    wait_until,
)
from support.fault_plan import fault_plan, report_figures
from support.fault_rig import FaultCorpus, fault_corpus
from support.oracle import expected_spans
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

from processor.core.facts import PODINFO, PROWJOB
from processor.synthetic import SyntheticJob, mirror_path

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PLAN = fault_plan()
PROJECT = "prow-faults"
LATE_FILES = (PROWJOB, PODINFO)


@pytest.fixture
def corpus(tmp_path: Path) -> FaultCorpus:
    """Generate a realistic stream of ``PLAN.jobs`` job lifecycles (a fresh mirror per test)."""
    return fault_corpus(tmp_path, PLAN.jobs, seed=41)


def late_jobs(corpus: FaultCorpus) -> list[SyntheticJob]:
    """Every second job that wrote both late files: those whose files will come late.

    (A job whose pod never ran has no podinfo.json at all: it waits out the grace period
    whether or not its prowjob.json is late, which says nothing about late files.)
    """
    complete = [
        job
        for job in corpus.jobs
        if job.gcs_path and all(name in job.artifacts for name in LATE_FILES)
    ]
    return complete[::2]


def withhold(corpus: FaultCorpus, jobs: list[SyntheticJob]) -> int:
    """Remove the late files of ``jobs``; every second job keeps a stale (pending) prowjob.json.

    Returns how many jobs were given a stale prowjob.json.
    """
    stale = 0
    for index, job in enumerate(jobs):
        folder = mirror_path(corpus.mirror, job.gcs_path)
        for name in LATE_FILES:
            (folder / name).unlink(missing_ok=True)
        if index % 2 and "pending" in job.prowjob_versions:
            (folder / PROWJOB).write_bytes(job.prowjob_versions["pending"])
            stale += 1
    return stale


def restore(corpus: FaultCorpus, jobs: list[SyntheticJob]) -> None:
    """Write the late files' final versions, as crier does once the job is over."""
    for job in jobs:
        folder = mirror_path(corpus.mirror, job.gcs_path)
        for name in LATE_FILES:
            if name in job.artifacts:
                (folder / name).write_bytes(job.artifacts[name])


def test_trace_completes_once_late_artifacts_appear(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """Messages before their artifacts: held (not nacked) in grace, traced once they appear."""
    late = late_jobs(corpus)
    late_traces = {
        trace
        for trace, _ in expected_spans(
            [message for job in late for message in job.messages], corpus.mirror
        )
    }
    stale = withhold(corpus, late)
    route = create_route(pubsub_emulator, PROJECT, "late", retry_min_backoff_seconds=1)
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path / "logs") as consumers:
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            corpus.mirror,
            extra={"PROWTRACE_GRACE_SECONDS": f"{PLAN.grace_seconds:g}"},
        )
        consumer = consumers.start_pull(route.subscription, env)
        published_at = time.monotonic()
        published = publish_messages(pubsub_emulator, route.topic, corpus.messages)
        time.sleep(max(0.0, PLAN.late_artifact_seconds - (time.monotonic() - published_at)))
        incomplete_before = _incomplete_traces(receiver, corpus, late_traces)
        nacked_before = consumer.outcomes()["retry"]
        restore(corpus, late)
        restored_at = time.monotonic()
        late_complete = receiver.wait_for(
            lambda r: _incomplete_traces(r, corpus, late_traces) == 0,
            timeout=PLAN.grace_seconds,
        )
        late_completed_at = time.monotonic()
        # Jobs whose podinfo.json never comes (the pod never ran) wait out the grace period.
        wait_for_traces(
            receiver, corpus.expected, timeout=PLAN.grace_seconds + 30, consumers=consumers
        )
        completed_at = time.monotonic()
        wait_until(
            lambda: consumer.acked_message_ids() >= set(published), 60, "every message acked"
        )
        outcomes = consumer.outcomes()
        consumers.stop_all()
        unacked = count_unacked(pubsub_emulator, route.subscription)
        lost = corpus.trace_ids - {span.trace_id for span in receiver.spans()}
    report_figures(
        "late_artifacts",
        {
            "messages": len(published),
            "traces": len(corpus.trace_ids),
            "late_jobs": len(late),
            "late_jobs_with_stale_prowjob": stale,
            "artifacts_late_by_seconds": PLAN.late_artifact_seconds,
            "grace_seconds": PLAN.grace_seconds,
            "incomplete_traces_before_artifacts": incomplete_before,
            "nacked_while_waiting": nacked_before,
            "outcomes": dict(outcomes),
            "seconds_from_artifacts_to_late_traces_complete": round(
                late_completed_at - restored_at, 1
            ),
            "seconds_from_publish_to_late_traces_complete": round(
                late_completed_at - published_at, 1
            ),
            "seconds_from_publish_to_all_traces_complete": round(completed_at - published_at, 1),
            "lost_traces": len(lost),
            "left_unacked": unacked,
        },
        plan=PLAN,
    )
    assert incomplete_before == len(late_traces), "late jobs were complete before their artifacts"
    assert nacked_before == 0, "a message was nacked while waiting for its late files"
    assert late_complete, "the late traces did not complete within the grace period"
    assert late_completed_at - published_at < PLAN.grace_seconds
    assert unacked == 0


def _incomplete_traces(receiver: OtlpReceiver, corpus: FaultCorpus, traces: set[str]) -> int:
    """Count the traces among ``traces`` that miss at least one expected span."""
    have = {span.key for span in receiver.spans()}
    return len(
        {trace for trace, span in corpus.expected if trace in traces and (trace, span) not in have}
    )
