"""Fault injection: every message delivered several times, in shuffled order, to two consumers.

Pub/Sub delivers at least once and in no particular order, and prowtrace claims any number of
stateless instances may share a subscription. Every message is published ``copies`` times, the
whole stream is shuffled (a job's end may come before its start), and two streaming-pull workers
consume the subscription. The receiver must end with exactly the span set the in-order stream gives
once, and no span ID may ever arrive with two different contents.
"""

from __future__ import annotations

import json
import random
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
    wait_until,
)
from processor.testing.oracle import assert_traces_complete
from processor.testing.otlp_receiver import OtlpReceiver
from processor.testing.pubsub_emulator import PubSubEmulator

pytestmark = [pytest.mark.faults, pytest.mark.emulator]

PLAN = fault_plan()
PROJECT = "prow-faults"
TRACES_TIMEOUT = 120.0
TERMINAL = {"success", "failure", "aborted", "error"}


@pytest.fixture(scope="module")
def pubsub_emulator() -> Iterator[PubSubEmulator]:
    """Google's real Pub/Sub emulator for this module."""
    with PubSubEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> FaultCorpus:
    """Generate a realistic stream of ``PLAN.jobs`` job lifecycles."""
    return fault_corpus(tmp_path_factory.mktemp("duplicates"), PLAN.jobs, seed=51)


def test_duplicated_shuffled_stream_gives_the_same_spans(
    pubsub_emulator: PubSubEmulator, corpus: FaultCorpus
) -> None:
    """Each message 3x, shuffled, two consumers: the in-order span set, no span ID conflicts."""
    topic = pubsub_emulator.create_topic(PROJECT, "duplicates")
    subscription = pubsub_emulator.create_subscription(PROJECT, "duplicates", topic)
    payloads = [message_bytes(message) for message in corpus.messages] * PLAN.copies
    random.Random(5).shuffle(payloads)  # noqa: S311 - a reproducible order, not a secret
    late_starts = _jobs_ending_before_starting(payloads)
    with quiet_structlog(), OtlpReceiver() as receiver:
        exporter = receiver_exporter(receiver)
        pipeline = mirror_pipeline(corpus.mirror, exporter)
        with (
            pull_worker(pubsub_emulator, subscription, pipeline.handle) as one,
            pull_worker(pubsub_emulator, subscription, pipeline.handle) as two,
        ):
            publish_batched(pubsub_emulator, topic, payloads)
            settled = wait_until(lambda: one.acked + two.acked >= len(payloads), TRACES_TIMEOUT)
        exporter.shutdown()
        received = receiver.unique_spans()  # raises SpanConflict on one ID with two contents
        delivered = len(receiver.spans())
    leftover = len(pubsub_emulator.pull(subscription, wait_seconds=0.5))
    report_figures(
        "duplicates_shuffled",
        {
            "distinct_messages": len(corpus.messages),
            "copies": PLAN.copies,
            "published": len(payloads),
            "consumers": 2,
            "acked_per_consumer": [one.acked, two.acked],
            "nacked": one.nacked + two.nacked,
            "jobs_whose_end_came_first": late_starts,
            "traces": len(corpus.trace_ids),
            "spans_expected": len(corpus.expected),
            "span_deliveries": delivered,
            "span_deliveries_fault_free": corpus.span_emissions,
            "extra_span_deliveries": delivered - corpus.span_emissions,
            "span_id_conflicts": 0,
            "lost_traces": len(corpus.trace_ids - {trace for trace, _ in received}),
            "left_in_subscription": leftover,
        },
        plan=PLAN,
    )
    assert settled, f"acked {one.acked} + {two.acked} of {len(payloads)}"
    assert (one.nacked + two.nacked, leftover) == (0, 0)
    assert min(one.acked, two.acked) > 0, "one consumer got nothing: not a shared subscription"
    assert late_starts > 0, "the shuffle never put a job's end before its start"
    assert delivered > corpus.span_emissions, "duplicates never reached the exporter"
    assert_traces_complete(received, corpus.expected)


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
