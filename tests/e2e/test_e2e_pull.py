"""``prowtrace pull`` as a real process against Google's Pub/Sub emulator and an OTLP receiver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.e2e import (
    CONSUMER_STOP_SECONDS,
    ConsumerSet,
    E2eCorpus,
    consumer_env,
    count_unacked,
    create_route,
    publish_messages,
    refusing,
    wait_for_traces,
)
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

from processor.logs import TRACE_FIELD

pytestmark = pytest.mark.emulator

PROJECT = "prow-e2e"
TRACES_TIMEOUT = 30.0
LOGGED_FIELDS = ("job", "state", "trace_id", "outcome")


def test_pull_turns_a_stream_into_exactly_the_expected_traces(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """A realistic stream gives exactly the oracle's spans; SIGTERM then exits 0 in time."""
    route = create_route(pubsub_emulator, PROJECT, "pull")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(pubsub_emulator.host, receiver, e2e_corpus.mirror)
        worker = consumers.start_pull(route.subscription, env)
        publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        stopped = worker.terminate()
        assert (stopped.returncode, stopped.killed) == (0, False), worker.describe()
        assert stopped.seconds < CONSUMER_STOP_SECONDS
        assert count_unacked(pubsub_emulator, route.subscription) == 0


def test_pull_logs_each_message_with_its_job_state_trace_and_outcome(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """Every message's JSON log line names job, state, trace and outcome, linked to Cloud Trace."""
    route = create_route(pubsub_emulator, PROJECT, "logs")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            e2e_corpus.mirror,
            extra={"GOOGLE_CLOUD_PROJECT": PROJECT},
        )
        worker = consumers.start_pull(route.subscription, env)
        message_ids = publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        worker.terminate()
    records = worker.message_records()
    assert sorted(record["message_id"] for record in records) == sorted(message_ids)
    assert all(field in record for record in records for field in LOGGED_FIELDS), records[:3]
    exported = [record for record in records if record["outcome"] == "exported"]
    assert {record["trace_id"] for record in exported} == e2e_corpus.trace_ids
    assert all(record["job"] and record["state"] for record in exported)
    assert [record[TRACE_FIELD] for record in exported] == [
        f"projects/{PROJECT}/traces/{record['trace_id']}" for record in exported
    ]


def test_two_consumers_on_one_subscription_give_the_single_consumer_span_set(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """Two workers sharing a subscription give exactly the oracle's spans, IDs included."""
    route = create_route(pubsub_emulator, PROJECT, "shared")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        # A small lease window per worker, so that neither can take the whole stream alone.
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            e2e_corpus.mirror,
            extra={"PROWTRACE_MAX_OUTSTANDING_MESSAGES": "8", "PROWTRACE_PULL_THREADS": "4"},
        )
        first = consumers.start_pull(route.subscription, env, name="first")
        second = consumers.start_pull(route.subscription, env, name="second")
        receiver.set_delay(0.02)
        publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        assert first.message_records(), first.describe()
        assert second.message_records(), second.describe()


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def test_every_log_line_is_one_json_object_even_when_exports_fail(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """While the exporter logs its failures, every line the worker writes is one JSON object."""
    route = create_route(pubsub_emulator, PROJECT, "jsonlog")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(
            pubsub_emulator.host, receiver, e2e_corpus.mirror, export_timeout_seconds=1
        )
        worker = consumers.start_pull(route.subscription, env)
        with refusing(receiver):
            publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages[:10])
            worker.wait_for_log(lambda record: record.get("outcome") == "retry")
        worker.terminate()
    lines = [line for line in worker.log_text().splitlines() if line.strip()]
    assert [line for line in lines if not _is_json_object(line)] == []
