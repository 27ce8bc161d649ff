"""Fault injection, hostile input: one bad job never holds back the others.

The pull worker runs in this process against Google's Pub/Sub emulator, with a dead-letter
policy, exporting through the services' chain (group commit over OTLP/gRPC to a real receiver).
One job's spans are refused by the encoder, as protobuf refuses an out-of-range time
(``ValueError('Value out of range: ...')``); before the fix that failed every healthy message
batched with it (1 bad + 10 healthy pushes: 11 x 503). Now the batch is resent per message: each
healthy trace arrives and only the bad job's messages reach the dead-letter topic. A second case
plants what made spans unexportable in the first place (times outside OTLP's range, 200k-character
and invalid-Unicode text, a 10k-event storm) in real artifacts: the border makes every job
traceable, so nothing is even retried.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from support.e2e import create_route, publish_messages, wait_for_traces, wait_until
from support.fault_rig import (
    fault_corpus,
    mirror_pipeline,
    pull_worker,
    quiet_structlog,
    receiver_exporter,
)
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

from processor.core.border import MAX_EVENTS_PER_SPAN
from processor.core.redact import MAX_ATTRIBUTE_CHARS
from processor.export.group_commit import GroupCommitExporter
from processor.pipeline import Outcome

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PROJECT = "prow-faults"
JOBS = 12
DEAD_LETTER_ATTEMPTS = 5  # Pub/Sub's minimum


class RefusingEncoder(SpanExporter):
    """The real OTLP exporter, except that spans of ``poison`` traces raise as protobuf would."""

    def __init__(self, inner: SpanExporter, poison: frozenset[int]) -> None:
        """Export through ``inner``; raise for any batch holding a span of a ``poison`` trace."""
        self.inner = inner
        self.poison = poison
        self.refused_batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Raise like ``encode_spans`` on an out-of-range time, else export for real."""
        if any(span.context is not None and span.context.trace_id in self.poison for span in spans):
            self.refused_batches += 1
            raise ValueError("Value out of range: -86400000000000")
        return self.inner.export(spans)

    def shutdown(self) -> None:
        """Shut the real exporter down."""
        self.inner.shutdown()


def test_one_unexportable_job_among_healthy_ones_is_dead_lettered_alone(
    pubsub_emulator: EmulatorForTests, tmp_path: Path
) -> None:
    """Every healthy trace arrives; only the poison job's messages reach the dead-letter topic."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    corpus = fault_corpus(tmp_path, JOBS, seed=151)
    poison_hex = corpus.jobs[0].uid.replace("-", "").lower()
    healthy = {key: span for key, span in corpus.expected.items() if key[0] != poison_hex}
    route = create_route(
        pubsub_emulator,
        PROJECT,
        "poison",
        dead_letter_attempts=DEAD_LETTER_ATTEMPTS,
        retry_min_backoff_seconds=1,
    )
    dead_subscription = route.dead_letter_subscription
    assert dead_subscription is not None
    with OtlpReceiver() as receiver, quiet_structlog():
        encoder = RefusingEncoder(
            OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5),
            frozenset({int(poison_hex, 16)}),
        )
        exporter = GroupCommitExporter(encoder)
        pipeline = mirror_pipeline(corpus.mirror, exporter)
        started = time.monotonic()
        with pull_worker(pubsub_emulator, route.subscription, pipeline.handle) as worker:
            publish_messages(pubsub_emulator, route.topic, corpus.messages, batch_size=100)
            wait_for_traces(receiver, healthy, timeout=60)
            healthy_seconds = time.monotonic() - started
            dead: list[dict[str, object]] = []

            def poison_dead_lettered() -> bool:
                pulled = pubsub_emulator.pull_all(dead_subscription, timeout=0.5)
                dead.extend(json.loads(m.message.data) for m in pulled)
                return bool(dead)

            wait_until(poison_dead_lettered, 90, "the poison job's messages dead-lettered")
            dead_seconds = time.monotonic() - started
        exporter.shutdown()

    assert {message["gcs_path"] for message in dead} == {corpus.jobs[0].gcs_path}
    assert worker.outcomes[Outcome.FAILED] >= DEAD_LETTER_ATTEMPTS
    assert encoder.refused_batches >= DEAD_LETTER_ATTEMPTS
    print(  # noqa: T201 - the figures docs/RELIABILITY.md quotes
        f"\npoison among {JOBS - 1} healthy jobs: healthy traces in {healthy_seconds:.1f} s,"
        f" poison dead-lettered after {dead_seconds:.1f} s ({len(dead)} messages),"
        f" {worker.outcomes[Outcome.FAILED]} poison verdicts, {exporter.inner_exports} exports"
    )


def _hostile(path: Path, change: str) -> None:
    """Rewrite one job's artifact as an attacker or a broken job would leave it."""
    document = json.loads(path.read_text())
    if change == "times":  # outside OTLP's range on both ends
        document["status"]["startTime"] = "1901-01-01T00:00:00Z"
        document["status"]["completionTime"] = "2600-01-01T00:00:00Z"
    elif change == "text":  # 200k characters and lone surrogates where names come from
        document["spec"]["job"] = "x" * 200_000 + "\ud800"
        document["status"]["description"] = "broken \udfff " * 10_000
    elif change == "events":  # a pod event storm: one span with 10k events
        when = document["pod"]["metadata"]["creationTimestamp"]
        storm = {"type": "Warning", "reason": "BackOff\ud800", "message": "m", "eventTime": when}
        document["events"] = [storm] * 10_000
    path.write_text(json.dumps(document))  # json.dumps writes lone surrogates as \\ud800


def test_hostile_artifacts_among_healthy_jobs_block_nothing(
    pubsub_emulator: EmulatorForTests, tmp_path: Path
) -> None:
    """Out-of-range times, 200k-char and invalid text, an event storm: every job is traced."""
    corpus = fault_corpus(tmp_path, JOBS, seed=152)
    candidates = [
        job
        for job in corpus.jobs
        if job.gcs_path and {"prowjob.json", "podinfo.json"} <= set(job.artifacts)
    ]
    hostile = dict(zip(("times", "text", "events"), candidates, strict=False))
    assert len(hostile) == 3, "the corpus needs three jobs with a pod"
    for change, job in hostile.items():
        folder = corpus.mirror / job.gcs_path.removeprefix("gs://")
        _hostile(folder / ("podinfo.json" if change == "events" else "prowjob.json"), change)
    hostile_traces = {job.uid.replace("-", "").lower() for job in hostile.values()}
    healthy = {key: span for key, span in corpus.expected.items() if key[0] not in hostile_traces}
    route = create_route(pubsub_emulator, PROJECT, "hostile", dead_letter_attempts=5)
    with OtlpReceiver() as receiver, quiet_structlog():
        exporter = receiver_exporter(receiver)
        pipeline = mirror_pipeline(corpus.mirror, exporter)
        started = time.monotonic()
        with pull_worker(pubsub_emulator, route.subscription, pipeline.handle) as worker:
            publish_messages(pubsub_emulator, route.topic, corpus.messages, batch_size=100)
            wait_for_traces(receiver, healthy, timeout=60, complete=False)

            def hostile_roots() -> set[str]:
                return {
                    span.trace_id
                    for span in receiver.spans()
                    if span.trace_id in hostile_traces and not span.parent_span_id
                }

            wait_until(lambda: hostile_roots() == hostile_traces, 60, "the hostile jobs' roots")
            seconds = time.monotonic() - started
        exporter.shutdown()
        spans = receiver.spans()

    assert worker.outcomes[Outcome.FAILED] == worker.outcomes[Outcome.RETRY] == 0
    assert all(len(span.name) <= MAX_ATTRIBUTE_CHARS for span in spans)
    assert all(len(span.events) <= MAX_EVENTS_PER_SPAN for span in spans)
    assert all(0 <= span.start_ns <= span.end_ns for span in spans)
    print(  # noqa: T201 - the figures docs/RELIABILITY.md quotes
        f"\n3 hostile jobs among {JOBS - 3} healthy: every trace complete in {seconds:.1f} s, "
        f"{worker.outcomes[Outcome.EXPORTED]} messages exported, 0 failed, 0 retried"
    )
