"""Fault injection: every message delivered several times, in shuffled order, to two consumers.

Pub/Sub delivers at least once and in no particular order, and prowtrace claims any number of
stateless instances may share a subscription. Every message is published ``copies`` times, the
whole stream is shuffled (a job's end may come before its start), and two ``prowtrace pull``
processes share the subscription. The receiver must end with exactly the span set the in-order
stream gives once, and no span ID may ever arrive with two different contents.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from support.e2e import (
    ConsumerSet,
    consumer_env,
    count_unacked,
    create_route,
    wait_for_traces,
    wait_until,
)
from support.fault_plan import fault_plan, report_figures
from support.fault_rig import FaultCorpus, fault_corpus, publish_batched
from support.metrics_truth import (
    corpus_truth,
    metrics_env,
    received_tallies,
    total_count,
)
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

from processor.core import semconv as sc
from processor.core.metrics import RUN_DURATION
from processor.synthetic import message_bytes

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PLAN = fault_plan()
PROJECT = "prow-faults"
TRACES_TIMEOUT = 120.0
TERMINAL = {"success", "failure", "aborted", "error"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> FaultCorpus:
    """Generate a realistic stream of ``PLAN.jobs`` job lifecycles."""
    return fault_corpus(tmp_path_factory.mktemp("duplicates"), PLAN.jobs, seed=51)


def test_duplicated_shuffled_stream_gives_the_same_spans(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """Each message 3x, shuffled, two consumers: the in-order span set, no span ID conflicts."""
    route = create_route(pubsub_emulator, PROJECT, "duplicates")
    payloads = [message_bytes(message) for message in corpus.messages] * PLAN.copies
    random.Random(5).shuffle(payloads)  # noqa: S311 - a reproducible order, not a secret
    late_starts = _jobs_ending_before_starting(payloads)
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path / "logs") as consumers:
        env = consumer_env(
            pubsub_emulator.host, receiver, corpus.mirror, extra=metrics_env(receiver)
        )
        one = consumers.start_pull(route.subscription, env, name="one")
        two = consumers.start_pull(route.subscription, env, name="two")
        published = set(publish_batched(pubsub_emulator, route.topic, payloads))
        wait_for_traces(receiver, corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        wait_until(
            lambda: consumers.acked_message_ids() >= published,
            TRACES_TIMEOUT,
            "every copy acked",
        )
        delivered = len(receiver.spans())
        received = receiver.unique_spans()  # raises SpanConflict on one ID with two contents
        acked = (len(one.acked_message_ids()), len(two.acked_message_ids()))
        outcomes = consumers.processes[0].outcomes() + consumers.processes[1].outcomes()
        consumers.stop_all()  # SIGTERM: each consumer flushes its counts
        unacked = count_unacked(pubsub_emulator, route.subscription)
        counted = received_tallies(receiver.points())
    truth = corpus_truth(corpus.jobs)
    runs = {
        state: (total_count(counted, RUN_DURATION, state), total_count(truth, RUN_DURATION, state))
        for state in (sc.RUN_STATE_PENDING, sc.RUN_STATE_EXECUTING)
    }
    report_figures(
        "duplicates_shuffled",
        {
            "distinct_messages": len(corpus.messages),
            "copies": PLAN.copies,
            "published": len(payloads),
            "consumers": 2,
            "acked_per_consumer": list(acked),
            "outcomes": dict(outcomes),
            "jobs_whose_end_came_first": late_starts,
            "traces": len(corpus.trace_ids),
            "spans_expected": len(corpus.expected),
            "span_deliveries": delivered,
            "span_deliveries_fault_free": corpus.span_emissions,
            "extra_span_deliveries": delivered - corpus.span_emissions,
            "span_id_conflicts": 0,
            "lost_traces": len(corpus.trace_ids - {trace for trace, _ in received}),
            "left_unacked": unacked,
            "metric_runs_counted_vs_true": {state: list(pair) for state, pair in runs.items()},
        },
        plan=PLAN,
    )
    # At-least-once: every copy that was exported is counted; nothing is counted less than once.
    assert all(counted_runs >= true_runs > 0 for counted_runs, true_runs in runs.values()), runs
    assert min(acked) > 0, "one consumer got nothing: not a shared subscription"
    assert (outcomes["retry"], unacked) == (0, 0)
    assert late_starts > 0, "the shuffle never put a job's end before its start"
    assert delivered > corpus.span_emissions, "duplicates never reached the exporter"


def _jobs_ending_before_starting(payloads: list[bytes]) -> int:
    """Count jobs whose first terminal message comes before their first pending message."""
    first_seen: dict[tuple[str, str], int] = {}
    for index, payload in enumerate(payloads):
        message = json.loads(payload)
        status = message["status"]
        kind = "start" if status == "pending" else "end" if status in TERMINAL else ""
        if kind and message.get("gcs_path"):
            first_seen.setdefault((message["gcs_path"], kind), index)
    folders = {folder for folder, _ in first_seen}
    return sum(
        1
        for folder in folders
        if (folder, "start") in first_seen
        and (folder, "end") in first_seen
        and first_seen[(folder, "end")] < first_seen[(folder, "start")]
    )
