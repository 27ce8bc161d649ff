"""Fault injection, hostile input: one job whose spans cannot be exported never holds back others.

The pull worker runs in this process against Google's Pub/Sub emulator, with a dead-letter
policy, exporting through the services' chain (group commit over OTLP/gRPC to a real receiver).
One job's spans are refused by the encoder, as protobuf refuses an out-of-range time
(``ValueError('Value out of range: ...')``); before the fix that failed every healthy message
batched with it (1 bad + 10 healthy pushes: 11 x 503). Now the batch is resent per message: each
healthy trace arrives and only the bad job's messages reach the dead-letter topic.
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
from support.fault_rig import fault_corpus, mirror_pipeline, pull_worker, quiet_structlog
from support.otlp_receiver import OtlpReceiver

from processor.export.group_commit import GroupCommitExporter
from processor.pipeline import Outcome
from processor.tools.demo.pubsub_emulator import PubSubEmulator

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
    pubsub_emulator: PubSubEmulator, tmp_path: Path
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
