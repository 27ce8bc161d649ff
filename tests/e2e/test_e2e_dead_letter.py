"""Poison messages against the emulator: dead-lettered with a policy, acked and logged without."""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path

import pytest
from support.e2e import (
    ConsumerSet,
    E2eCorpus,
    consumer_env,
    count_unacked,
    create_route,
    publish_payloads,
    wait_for_traces,
    wait_until,
)
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

pytestmark = pytest.mark.emulator

PROJECT = "prow-e2e"
TRACES_TIMEOUT = 30.0
MAX_DELIVERY_ATTEMPTS = 5
POISON = (
    b"\x00\xff\xfe not text at all",
    b"this is not JSON",
    b"[1, 2, 3]",
    b'{"status": 7, "job_name": "ci-typed-wrong"}',
    b'{"job_name": "ci-no-status", "gcs_path": "gs://prow-artifacts/logs/ci-no-status/1"}',
    b'{"status": "success", "job_name": "ci-ftp", "gcs_path": "ftp://example.com/logs/1"}',
    # Well-formed, but its artifacts never existed: FAILED, poison all the same.
    b'{"status": "success", "job_name": "ci-ghost", "gcs_path": "gs://prow-artifacts/logs/ci-ghost/7"}',
)
"""Messages that can never be traced: invalid (bytes, JSON, types, fields) or failed."""


def _mixed(corpus: E2eCorpus) -> list[bytes]:
    """Return the corpus's messages with the poison spread evenly among them."""
    payloads = corpus.payloads()
    step = len(payloads) // (len(POISON) + 1)
    for index, poison in reversed(list(enumerate(POISON, start=1))):
        payloads.insert(index * step, poison)
    return payloads


def test_poison_goes_to_the_dead_letter_topic_and_valid_jobs_are_complete(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """With a dead-letter policy, exactly the poison lands on the dead-letter topic."""
    route = create_route(
        pubsub_emulator, PROJECT, "dlq", dead_letter_attempts=MAX_DELIVERY_ATTEMPTS
    )
    assert route.dead_letter_subscription is not None
    dead: list[bytes] = []

    def drain_dead_letters() -> bool:
        assert route.dead_letter_subscription is not None
        batch = pubsub_emulator.pull(route.dead_letter_subscription, wait_seconds=0.2)
        pubsub_emulator.ack(route.dead_letter_subscription, batch)
        dead.extend(message.message.data for message in batch)
        return len(dead) >= len(POISON)

    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(pubsub_emulator.host, receiver, e2e_corpus.mirror)
        consumers.start_pull(route.subscription, env)
        publish_payloads(pubsub_emulator, route.topic, _mixed(e2e_corpus))
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        wait_until(drain_dead_letters, TRACES_TIMEOUT, "every poison message dead-lettered")
        poison_lines = [
            record
            for record in consumers.message_records()
            if record["outcome"] in {"invalid", "failed"}
        ]
    assert Counter(dead) == Counter(POISON)
    attempts = Counter(record["message_id"] for record in poison_lines)
    assert sorted(attempts.values()) == [MAX_DELIVERY_ATTEMPTS] * len(POISON)
    assert all(record["action"].startswith("nack") for record in poison_lines)


def test_poison_without_dead_letter_policy_is_acked_once_and_logged_with_payload(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """Without a policy, each poison message is logged at ERROR with its payload and acked."""
    route = create_route(pubsub_emulator, PROJECT, "poison")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(pubsub_emulator.host, receiver, e2e_corpus.mirror)
        worker = consumers.start_pull(route.subscription, env)
        message_ids = publish_payloads(pubsub_emulator, route.topic, _mixed(e2e_corpus))
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        wait_until(
            lambda: worker.acked_message_ids() >= set(message_ids), TRACES_TIMEOUT, "all acks"
        )
        worker.terminate()
        assert count_unacked(pubsub_emulator, route.subscription) == 0
    errors = [record for record in worker.message_records() if record["severity"] == "ERROR"]
    logged = Counter(base64.b64decode(record["payload_base64"]) for record in errors)
    assert logged == Counter(POISON)
    assert all(record["reason"] and record["outcome"] in {"invalid", "failed"} for record in errors)
    assert len(worker.message_records()) == len(message_ids)
