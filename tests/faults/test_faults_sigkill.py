"""Fault injection: the consumer is SIGKILLed mid-stream, restarted, killed again; nothing is lost.

``prowtrace pull`` runs as a real process against Google's Pub/Sub emulator. The stream is
published in ``sigkills + 1`` parts; while each of the first parts is being exported (the receiver
answers slowly, so exports are in flight) the consumer gets SIGKILL, the abrupt end of an OOM kill
or a preempted VM, and a new one starts. Messages the dead consumer held come back when their ack
deadline expires, and the last consumer must leave exactly the oracle's spans in the receiver.
Spans a victim exported but never acked are exported again: identical, so only counted.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest
from support.e2e import (
    ConsumerSet,
    consumer_env,
    count_unacked,
    create_route,
    evict_dead_streams,
    publish_messages,
    wait_for_traces,
    wait_until,
)
from support.fault_plan import fault_plan, report_figures
from support.fault_rig import FaultCorpus, fault_corpus
from support.metrics_truth import (
    corpus_truth,
    metrics_env,
    received_tallies,
    total_count,
)
from support.oracle import assert_traces_complete
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

from processor.core import semconv as sc
from processor.core.metrics import RUN_DURATION
from processor.synthetic import Published

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PLAN = fault_plan()
PROJECT = "prow-faults"
ACK_DEADLINE_SECONDS = 10
"""The shortest the real service allows: a killed consumer's leases expire this long after."""
SLOW_EXPORT_SECONDS = 0.3
"""Each export takes this long, so a kill lands while exports are in flight."""
RECOVERY_TIMEOUT = ACK_DEADLINE_SECONDS + 60.0
METRIC_INTERVAL_MS = 2000
"""Consumers export metrics this often: a SIGKILL loses what was counted since the last export."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> FaultCorpus:
    """Generate a realistic stream of ``PLAN.jobs`` job lifecycles."""
    return fault_corpus(tmp_path_factory.mktemp("sigkill"), PLAN.jobs, seed=61)


def parts(messages: tuple[Published, ...], count: int) -> list[tuple[Published, ...]]:
    """Split the stream into ``count`` consecutive parts of (nearly) equal size."""
    size = -(-len(messages) // count)
    return [messages[start : start + size] for start in range(0, len(messages), size)]


def exported_since(receiver: OtlpReceiver, before: int) -> bool:
    """Tell whether the receiver stored an export since it had stored ``before``."""
    return receiver.export_requests > before


def test_consumer_sigkilled_mid_stream_loses_no_trace(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """SIGKILL the consumer ``sigkills`` times mid-stream; the last one completes every trace."""
    route = create_route(
        pubsub_emulator, PROJECT, "sigkill", ack_deadline_seconds=ACK_DEADLINE_SECONDS
    )
    kills: list[dict[str, object]] = []
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path / "logs") as consumers:
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            corpus.mirror,
            extra=metrics_env(receiver, interval_ms=METRIC_INTERVAL_MS),
        )
        receiver.set_delay(SLOW_EXPORT_SECONDS)
        consumer = consumers.start_pull(route.subscription, env, name="consumer-0")
        for index, part in enumerate(parts(corpus.messages, PLAN.sigkills + 1)):
            exports_before = receiver.export_requests
            publish_messages(pubsub_emulator, route.topic, part)
            if index == PLAN.sigkills:
                break
            wait_until(
                partial(exported_since, receiver, exports_before),
                60,
                "an export of the part just published",
            )
            ended = consumer.kill()
            kills.append(
                {
                    "after_exports": receiver.export_requests,
                    "exit_status": ended.returncode,
                    "messages_acked_by_victim": len(consumer.acked_message_ids()),
                }
            )
            # The emulator keeps a dead consumer's stream taking messages (the real service
            # does not): end it, as the real service would once the TCP connection is gone.
            evict_dead_streams(pubsub_emulator, route.subscription)
            consumer = consumers.start_pull(route.subscription, env, name=f"consumer-{index + 1}")
        last_restart = time.monotonic()
        receiver.set_delay(0)
        wait_for_traces(receiver, corpus.expected, timeout=RECOVERY_TIMEOUT, consumers=[consumer])
        recovered = time.monotonic() - last_restart
        # What the victims leased but never acked comes back once the ack deadline expires.
        wait_until(
            lambda: len(consumers.acked_message_ids()) >= len(corpus.messages),
            RECOVERY_TIMEOUT,
            "every message acked by some consumer",
        )
        all_acked = time.monotonic() - last_restart
        assert_traces_complete(receiver.unique_spans(), corpus.expected)
        delivered = len(receiver.spans())
        lost = corpus.trace_ids - {span.trace_id for span in receiver.spans()}
        acked = consumers.acked_message_ids()
        consumers.stop_all()  # SIGTERM: the last consumer flushes its counts
        unacked = count_unacked(pubsub_emulator, route.subscription)
        counted = received_tallies(receiver.points())
    truth = corpus_truth(corpus.jobs)
    runs = {
        state: [total_count(counted, RUN_DURATION, state), total_count(truth, RUN_DURATION, state)]
        for state in (sc.RUN_STATE_PENDING, sc.RUN_STATE_EXECUTING)
    }
    report_figures(
        "consumer_sigkill",
        {
            "messages": len(corpus.messages),
            "traces": len(corpus.trace_ids),
            "spans": len(corpus.expected),
            "sigkills": len(kills),
            "kills": kills,
            "ack_deadline_seconds": ACK_DEADLINE_SECONDS,
            "seconds_from_last_restart_to_traces_complete": round(recovered, 1),
            "seconds_from_last_restart_to_all_acked": round(all_acked, 1),
            "distinct_messages_acked": len(acked),
            "span_deliveries": delivered,
            "span_deliveries_fault_free": corpus.span_emissions,
            "extra_span_deliveries": delivered - corpus.span_emissions,
            "lost_traces": len(lost),
            "left_unacked": unacked,
            "metric_export_interval_ms": METRIC_INTERVAL_MS,
            "metric_runs_counted_vs_true": runs,
        },
        plan=PLAN,
    )
    assert len(kills) == PLAN.sigkills
    assert all(kill["exit_status"] == -9 for kill in kills), kills
    assert (len(acked), unacked) == (len(corpus.messages), 0)
