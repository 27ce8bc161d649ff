"""Fault injection: the OTLP backend is down (UNAVAILABLE) mid-stream, then recovers; none lost.

``prowtrace pull`` runs as a real process against Google's Pub/Sub emulator, its exporter bounded
by ``OTEL_EXPORTER_OTLP_TIMEOUT``. A third of the stream is traced, then the receiver refuses every
export for ``outage_seconds`` while the rest is published. The exporter retries within its timeout,
then the pipeline says RETRY and the consumer nacks; Pub/Sub redelivers (on the emulator's ~2 s
retry-policy tick). Once the receiver accepts again, every job must arrive as exactly the oracle's
spans and every message must have been acked.
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
    received_keys,
    wait_for_traces,
    wait_until,
)
from support.fault_plan import fault_plan, report_figures
from support.fault_rig import FaultCorpus, fault_corpus
from support.oracle import expected_spans
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PLAN = fault_plan()
PROJECT = "prow-faults"
RECOVERY_TIMEOUT = 120.0
"""After the backend is back: the exporter's backoff plus Pub/Sub's redelivery tick, with room."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> FaultCorpus:
    """Generate a realistic stream of ``PLAN.jobs`` job lifecycles."""
    return fault_corpus(tmp_path_factory.mktemp("outage"), PLAN.jobs, seed=31)


def test_backend_outage_mid_stream_loses_no_trace(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """A backend refusing every export for a while mid-stream: every trace arrives, exactly."""
    route = create_route(pubsub_emulator, PROJECT, "outage", retry_min_backoff_seconds=1)
    first = len(corpus.messages) // 3
    head = expected_spans(corpus.messages[:first], corpus.mirror)
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path / "logs") as consumers:
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            corpus.mirror,
            export_timeout_seconds=PLAN.export_timeout_seconds,
        )
        consumer = consumers.start_pull(route.subscription, env)
        published = publish_messages(pubsub_emulator, route.topic, corpus.messages[:first])
        wait_for_traces(receiver, head, timeout=60, consumers=consumers, complete=False)
        receiver.refuse()
        outage_began = time.monotonic()
        published += publish_messages(pubsub_emulator, route.topic, corpus.messages[first:])
        time.sleep(max(0.0, PLAN.outage_seconds - (time.monotonic() - outage_began)))
        refused = receiver.refused_requests
        nacked_during_outage = consumer.outcomes()["retry"]
        traced_during_outage = len(received_keys(receiver))
        receiver.accept()
        recovered_at = time.monotonic()
        wait_for_traces(receiver, corpus.expected, timeout=RECOVERY_TIMEOUT, consumers=consumers)
        recovery_seconds = time.monotonic() - recovered_at
        wait_until(
            lambda: consumer.acked_message_ids() >= set(published),
            RECOVERY_TIMEOUT,
            "every message acked",
        )
        stopped = consumer.terminate()
        unacked = count_unacked(pubsub_emulator, route.subscription)
        delivered = len(receiver.spans())
        lost = corpus.trace_ids - {span.trace_id for span in receiver.spans()}
        outcomes = consumer.outcomes()
    report_figures(
        "backend_outage",
        {
            "messages": len(published),
            "traces": len(corpus.trace_ids),
            "spans": len(corpus.expected),
            "outage_seconds": PLAN.outage_seconds,
            "export_timeout_seconds": PLAN.export_timeout_seconds,
            "refused_exports": refused,
            "spans_received_before_recovery": traced_during_outage,
            "nacked_during_outage": nacked_during_outage,
            "outcomes": dict(outcomes),
            "seconds_from_recovery_to_all_traces": round(recovery_seconds, 1),
            "span_deliveries": delivered,
            "span_deliveries_fault_free": corpus.span_emissions,
            "extra_span_deliveries": delivered - corpus.span_emissions,
            "lost_traces": len(lost),
            "consumer_exit": stopped.returncode,
            "left_unacked": unacked,
        },
        plan=PLAN,
    )
    assert refused > 0, "the outage never met an export: the case tested nothing"
    assert nacked_during_outage > 0, "no message was nacked: the outage never reached Pub/Sub"
    assert (stopped.returncode, stopped.killed) == (0, False)
    assert unacked == 0
