"""``prowtrace pull`` and ``serve`` with metrics on, as real processes: the SIGTERM flush, outages.

Cloud Run sends SIGTERM and kills the instance 10 s later (scale-in, a new revision); metrics the
instance counted since its last periodic export must go out in that window, and a metrics
backend that is down must neither hold the exit past it nor keep a message from being acked.
The export interval here is 10 minutes, so the flush at exit is the only export.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from support.e2e import (
    CONSUMER_STOP_SECONDS,
    ConsumerSet,
    consumer_env,
    count_unacked,
    create_route,
    publish_messages,
    wait_for_traces,
    wait_until,
)
from support.fault_rig import FaultCorpus, fault_corpus
from support.metrics_truth import (
    corpus_truth,
    count_differences,
    metrics_env,
    received_tallies,
)
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

pytestmark = pytest.mark.emulator

PROJECT = "prow-metrics"
TRACES_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> FaultCorpus:
    """Generate a 30-job stream with its mirror and oracle."""
    return fault_corpus(tmp_path_factory.mktemp("metrics-pull"), 30, seed=141)


def test_sigterm_flushes_the_counts_within_cloud_runs_budget(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """After SIGTERM the worker exports its counts (the corpus's truth) and exits inside 10 s."""
    route = create_route(pubsub_emulator, PROJECT, "flush")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(
            pubsub_emulator.host, receiver, corpus.mirror, extra=metrics_env(receiver)
        )
        worker = consumers.start_pull(route.subscription, env)
        published = set(publish_messages(pubsub_emulator, route.topic, corpus.messages))
        wait_for_traces(receiver, corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        wait_until(lambda: worker.acked_message_ids() >= published, TRACES_TIMEOUT, "all acked")
        assert receiver.metric_requests == 0, "exported before the flush: the test proves nothing"
        stopped = worker.terminate()
        points = receiver.points()
    assert (stopped.returncode, stopped.killed) == (0, False), worker.describe()
    assert stopped.seconds < CONSUMER_STOP_SECONDS
    assert count_differences(received_tallies(points), corpus_truth(corpus.jobs)) == []


def test_metrics_backend_down_neither_nacks_nor_holds_the_exit(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """Metrics refused after 5 s, exported every 100 ms: every message acked, exit in time."""
    route = create_route(pubsub_emulator, PROJECT, "outage")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        receiver.refuse_metrics(grpc.StatusCode.UNAVAILABLE)
        receiver.set_metrics_delay(5.0)  # longer than the exit's flush budget
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            corpus.mirror,
            extra=metrics_env(receiver, interval_ms=100),
        )
        worker = consumers.start_pull(route.subscription, env)
        published = set(publish_messages(pubsub_emulator, route.topic, corpus.messages))
        wait_for_traces(receiver, corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        wait_until(lambda: worker.acked_message_ids() >= published, TRACES_TIMEOUT, "all acked")
        wait_until(lambda: receiver.refused_requests > 0, 30, "a refused metrics export")
        stopped = worker.terminate()
        unacked = count_unacked(pubsub_emulator, route.subscription)
    assert (stopped.returncode, stopped.killed) == (0, False), worker.describe()
    assert stopped.seconds < CONSUMER_STOP_SECONDS
    assert worker.outcomes()["retry"] == 0
    assert unacked == 0


def test_push_endpoint_counts_the_truth_and_flushes_at_sigterm(
    pubsub_emulator: EmulatorForTests, corpus: FaultCorpus, tmp_path: Path
) -> None:
    """``serve`` behind a push subscription records the same counts and flushes them at SIGTERM."""
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            corpus.mirror,
            extra={"PROWTRACE_PUSH_AUTH": "off", **metrics_env(receiver)},
        )
        server, url = consumers.start_serve(env)
        route = create_route(pubsub_emulator, PROJECT, "push", push_endpoint=f"{url}/")
        published = set(publish_messages(pubsub_emulator, route.topic, corpus.messages))
        wait_for_traces(receiver, corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        wait_until(
            lambda: {r["message_id"] for r in server.message_records()} >= published,
            TRACES_TIMEOUT,
            "every message handled",
        )
        stopped = server.terminate()
        points = receiver.points()
    assert (stopped.returncode, stopped.killed) == (0, False), server.describe()
    assert stopped.seconds < CONSUMER_STOP_SECONDS
    assert count_differences(received_tallies(points), corpus_truth(corpus.jobs)) == []
