"""Fault injection: a backend that takes seconds per export; no loss, bounded memory, flow control.

``prowtrace pull`` runs as a real process with ``PROWTRACE_MAX_OUTSTANDING_MESSAGES`` far below its
32 pull threads, and the receiver waits ``slow_export_seconds`` before answering each export. The
whole stream is published at once, so the backlog waits in Pub/Sub, not in the consumer: its
resident memory is sampled throughout and must stay bounded. Flow control shows at the receiver:
group commit puts every message waiting at the same moment into one export, so no export can carry
more jobs than the consumer holds messages, and only one export is in flight at a time.
"""

from __future__ import annotations

import time
from collections import Counter
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
from support.process_memory import RssSampler, rss_bytes
from support.pubsub_admin import EmulatorForTests
from support.receiver_probe import BatchRecordingReceiver

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PLAN = fault_plan()
PROJECT = "prow-faults"
MIB = 1024 * 1024
PEAK_RSS_LIMIT_BYTES = 200 * MIB
"""A pull consumer (Python, gRPC, OpenTelemetry, Pub/Sub client) idles near 100 MiB."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> FaultCorpus:
    """Generate a realistic stream of ``PLAN.slow_jobs`` job lifecycles."""
    return fault_corpus(tmp_path_factory.mktemp("slow"), PLAN.slow_jobs, seed=71)


def test_slow_backend_loses_nothing_within_flow_control_and_bounded_memory(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """Seconds per export: traces exact, jobs per export <= max outstanding, RSS bounded."""
    limit = PLAN.slow_max_outstanding
    route = create_route(pubsub_emulator, PROJECT, "slow")
    with BatchRecordingReceiver() as receiver, ConsumerSet(tmp_path / "logs") as consumers:
        receiver.set_delay(PLAN.slow_export_seconds)
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            corpus.mirror,
            extra={"PROWTRACE_MAX_OUTSTANDING_MESSAGES": str(limit)},
        )
        consumer = consumers.start_pull(route.subscription, env)
        idle_rss = rss_bytes(consumer.pid)
        with RssSampler(consumer.pid) as memory:
            began = time.monotonic()
            published = set(publish_messages(pubsub_emulator, route.topic, corpus.messages))
            # Each export carries at least one message: the slowest the stream can drain.
            worst_case = len(corpus.messages) * (PLAN.slow_export_seconds + 0.5) + 30
            wait_for_traces(receiver, corpus.expected, timeout=worst_case, consumers=consumers)
            seconds = time.monotonic() - began
            wait_until(lambda: consumer.acked_message_ids() >= published, 60, "every message acked")
        consumers.stop_all()
        deliveries = Counter(str(r["message_id"]) for r in consumer.message_records())
        redelivered = sum(count - 1 for count in deliveries.values())
        # A copy redelivered while the first waited behind the slow backend can still be in
        # flight at the stop; it is nacked back, and its message was acked once already.
        unacked = count_unacked(pubsub_emulator, route.subscription)
        per_export = [len(traces) for traces in receiver.request_traces]
        report_figures(
            "slow_backend",
            {
                "messages": len(corpus.messages),
                "traces": len(corpus.trace_ids),
                "spans": len(corpus.expected),
                "seconds_per_export": PLAN.slow_export_seconds,
                "max_outstanding_messages": limit,
                "pull_threads": 32,
                "exports": len(per_export),
                "most_jobs_in_one_export": max(per_export, default=0),
                "mean_jobs_per_export": round(sum(per_export) / max(len(per_export), 1), 2),
                "most_concurrent_exports": receiver.max_concurrent_requests,
                "seconds_to_drain": round(seconds, 1),
                "messages_per_second": round(len(corpus.messages) / seconds, 2),
                "rss_idle_mib": round(idle_rss / MIB, 1),
                "rss_max_sampled_mib": round(memory.max_sampled_bytes() / MIB, 1),
                "rss_peak_vmhwm_mib": round(memory.peak_bytes / MIB, 1),
                "rss_samples": len(memory.samples),
                "messages_delivered_twice_or_more": sum(n > 1 for n in deliveries.values()),
                "redeliveries": redelivered,
                "left_unacked_at_stop": unacked,
                "lost_traces": len(corpus.trace_ids - {span.trace_id for span in receiver.spans()}),
            },
            plan=PLAN,
        )
    assert max(per_export) <= limit, f"an export carried {max(per_export)} jobs, limit {limit}"
    assert max(per_export) > 1, "no export carried two jobs: group commit never batched"
    assert receiver.max_concurrent_requests == 1
    assert memory.peak_bytes < PEAK_RSS_LIMIT_BYTES
    assert unacked <= redelivered, "a message was left unacked that was never processed"
