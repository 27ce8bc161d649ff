"""Fault injection: the OTLP backend is down (UNAVAILABLE) mid-stream, then recovers; none lost.

The streaming-pull worker runs as ``prowtrace pull`` wires it (group commit over OTLP/gRPC) on a
subscription of Google's Pub/Sub emulator. A third of the stream is traced, then the receiver
refuses every export for ``outage_seconds`` while the rest is published. The exporter retries
within its timeout, then the pipeline says RETRY and the worker nacks; Pub/Sub redelivers. Once
the receiver accepts again, every job must arrive as exactly the oracle's spans.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from processor.testing.corpus import message_bytes
from processor.testing.fault_plan import fault_plan, report_figures
from processor.testing.fault_rig import (
    FaultCorpus,
    fault_corpus,
    mirror_pipeline,
    publish_batched,
    pull_worker,
    quiet_structlog,
    receiver_exporter,
)
from processor.testing.oracle import assert_traces_complete, expected_spans
from processor.testing.otlp_receiver import OtlpReceiver
from processor.testing.pubsub_emulator import PubSubEmulator

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PLAN = fault_plan()
PROJECT = "prow-faults"
RECOVERY_TIMEOUT = 120.0
"""After the backend is back: the exporter's backoff plus Pub/Sub's redelivery tick, with room."""


@pytest.fixture(scope="module")
def pubsub_emulator() -> Iterator[PubSubEmulator]:
    """Google's real Pub/Sub emulator for this module."""
    with PubSubEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> FaultCorpus:
    """Generate a realistic stream of ``PLAN.jobs`` job lifecycles."""
    return fault_corpus(tmp_path_factory.mktemp("outage"), PLAN.jobs, seed=31)


def test_backend_outage_mid_stream_loses_no_trace(
    pubsub_emulator: PubSubEmulator, corpus: FaultCorpus
) -> None:
    """A backend refusing every export for a while mid-stream: every trace arrives, exactly."""
    topic = pubsub_emulator.create_topic(PROJECT, "outage")
    subscription = pubsub_emulator.create_subscription(
        PROJECT, "outage", topic, retry_min_backoff_seconds=1
    )
    payloads = [message_bytes(message) for message in corpus.messages]
    first = len(payloads) // 3
    head_traces = corpus_traces_of_first(corpus, first)
    with quiet_structlog(), OtlpReceiver() as receiver:
        exporter = receiver_exporter(receiver, timeout=PLAN.export_timeout_seconds)
        pipeline = mirror_pipeline(corpus.mirror, exporter)
        with pull_worker(pubsub_emulator, subscription, pipeline.handle) as worker:
            publish_batched(pubsub_emulator, topic, payloads[:first])
            assert receiver.wait_for(
                lambda r: head_traces <= {span.trace_id for span in r.spans()}, timeout=60
            ), "the stream's first third was not traced before the outage"
            receiver.refuse()
            outage_began = time.monotonic()
            publish_batched(pubsub_emulator, topic, payloads[first:])
            time.sleep(max(0.0, PLAN.outage_seconds - (time.monotonic() - outage_began)))
            nacked_during_outage = worker.nacked
            refused = receiver.refused_requests
            receiver.accept()
            recovered_at = time.monotonic()
            complete = receiver.wait_for(
                lambda r: set(corpus.expected) <= {span.key for span in r.spans()},
                timeout=RECOVERY_TIMEOUT,
            )
            recovery_seconds = time.monotonic() - recovered_at
        exporter.shutdown()
        received = receiver.unique_spans()
        all_spans = len(receiver.spans())
    leftover = len(pubsub_emulator.pull(subscription, wait_seconds=0.5))
    report_figures(
        "backend_outage",
        {
            "messages": len(payloads),
            "traces": len(corpus.trace_ids),
            "spans": len(corpus.expected),
            "outage_seconds": PLAN.outage_seconds,
            "export_timeout_seconds": PLAN.export_timeout_seconds,
            "refused_exports": refused,
            "nacked_during_outage": nacked_during_outage,
            "nacked_total": worker.nacked,
            "acked": worker.acked,
            "lost_traces": len(corpus.trace_ids - {trace for trace, _ in received}),
            "span_deliveries": all_spans,
            "span_deliveries_fault_free": corpus.span_emissions,
            "extra_span_deliveries": all_spans - corpus.span_emissions,
            "seconds_to_recover": round(recovery_seconds, 1),
            "left_in_subscription": leftover,
        },
        plan=PLAN,
    )
    assert complete, f"not every span arrived within {RECOVERY_TIMEOUT} s of recovery"
    assert refused > 0, "the outage never met an export: the case tested nothing"
    assert nacked_during_outage > 0, "no message was nacked: the outage never reached Pub/Sub"
    assert_traces_complete(received, corpus.expected)
    assert leftover == 0


def corpus_traces_of_first(corpus: FaultCorpus, count: int) -> set[str]:
    """Return the trace IDs the first ``count`` messages of the stream complete or start."""
    return {trace for trace, _ in expected_spans(corpus.messages[:count], corpus.mirror)}
