"""Consumers under faults: backend outage, SIGKILL and SIGTERM mid-stream. Nothing may be lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.e2e import (
    CONSUMER_STOP_SECONDS,
    ConsumerSet,
    E2eCorpus,
    consumer_env,
    count_unacked,
    create_route,
    evict_dead_streams,
    publish_messages,
    received_keys,
    redeliver_after_stop,
    refusing,
    wait_for_traces,
    wait_until,
)
from support.oracle import expected_spans
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

pytestmark = pytest.mark.emulator

PROJECT = "prow-e2e"
TRACES_TIMEOUT = 30.0
OUTAGE_SECONDS = 5.0
EXPORT_TIMEOUT_SECONDS = 1.0
"""Short OTLP export timeout: during an outage each attempt fails fast and the message is nacked."""
ACK_DEADLINE_SECONDS = 10
"""The shortest the real service allows: a killed consumer's leases expire this long after."""
REDELIVERY_TIMEOUT = ACK_DEADLINE_SECONDS + TRACES_TIMEOUT
SLOW_EXPORT_SECONDS = 0.5
"""Each export takes this long while a consumer is to be stopped, so messages are in flight."""


def test_outage_of_the_trace_backend_loses_nothing(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """Exports refused (UNAVAILABLE) mid-stream: messages are nacked, redelivered, all complete."""
    route = create_route(pubsub_emulator, PROJECT, "outage")
    before = e2e_corpus.messages[: len(e2e_corpus.messages) // 3]
    during = e2e_corpus.messages[len(before) :]
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            e2e_corpus.mirror,
            export_timeout_seconds=EXPORT_TIMEOUT_SECONDS,
        )
        worker = consumers.start_pull(route.subscription, env)
        message_ids = publish_messages(pubsub_emulator, route.topic, before)
        wait_for_traces(
            receiver,
            expected_spans(before, e2e_corpus.mirror),
            timeout=TRACES_TIMEOUT,
            consumers=consumers,
            complete=False,
        )
        with refusing(receiver):
            message_ids += publish_messages(pubsub_emulator, route.topic, during)
            time.sleep(OUTAGE_SECONDS)
            assert receiver.refused_requests > 0
            assert not set(e2e_corpus.expected) <= received_keys(receiver)
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        # Spans shared by two messages (a job's queue span) may arrive before both are acked.
        wait_until(
            lambda: worker.acked_message_ids() >= set(message_ids), TRACES_TIMEOUT, "all acks"
        )
    retried = {
        record["message_id"] for record in worker.message_records() if record["outcome"] == "retry"
    }
    assert retried, "no message was nacked during the outage"


def test_consumer_killed_mid_stream_and_restarted_completes_every_trace(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """SIGKILL with messages in flight; after the leases expire a new consumer completes all."""
    route = create_route(
        pubsub_emulator, PROJECT, "killed", ack_deadline_seconds=ACK_DEADLINE_SECONDS
    )
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(pubsub_emulator.host, receiver, e2e_corpus.mirror)
        victim = consumers.start_pull(route.subscription, env, name="victim")
        receiver.set_delay(SLOW_EXPORT_SECONDS)
        publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
        wait_until(lambda: receiver.export_requests > 0, TRACES_TIMEOUT, "a first export")
        # What the victim was exporting dies with it: the receiver refuses it after its delay.
        with refusing(receiver):
            victim.kill()
            time.sleep(2 * SLOW_EXPORT_SECONDS)
        assert not set(e2e_corpus.expected) <= received_keys(receiver), "killed too late"
        # The emulator keeps the victim's stream (see support.e2e); the leases it held
        # still expire on their own, after the ack deadline, as in the real service.
        evict_dead_streams(pubsub_emulator, route.subscription)
        receiver.set_delay(0)
        successor = consumers.start_pull(route.subscription, env, name="successor")
        wait_for_traces(
            receiver, e2e_corpus.expected, timeout=REDELIVERY_TIMEOUT, consumers=[successor]
        )
        assert successor.message_records(), "nothing was redelivered to the new consumer"


def test_sigterm_with_messages_in_flight_exits_in_time_and_loses_nothing(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """SIGTERM while exports are slow: exit 0 within 10 s; a restart completes every trace."""
    route = create_route(pubsub_emulator, PROJECT, "stopped")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(pubsub_emulator.host, receiver, e2e_corpus.mirror)
        first = consumers.start_pull(route.subscription, env, name="first")
        receiver.set_delay(SLOW_EXPORT_SECONDS)
        publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
        wait_until(lambda: receiver.export_requests > 0, TRACES_TIMEOUT, "a first export")
        stopped = first.terminate()
        assert (stopped.returncode, stopped.killed) == (0, False), first.describe()
        assert stopped.seconds < CONSUMER_STOP_SECONDS
        assert not set(e2e_corpus.expected) <= received_keys(receiver), "stopped too late"
        # The emulator gives what `first` nacked to its dead stream: see support.e2e.
        redeliver_after_stop(pubsub_emulator, route.subscription)
        receiver.set_delay(0)
        second = consumers.start_pull(route.subscription, env, name="second")
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=[second])
        second.terminate()
        assert count_unacked(pubsub_emulator, route.subscription) == 0


def test_sigterm_during_an_outage_exits_in_time_and_loses_nothing(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """SIGTERM while exports retry a down backend (10 s OTLP timeout): exit within 10 s anyway."""
    route = create_route(pubsub_emulator, PROJECT, "stuck")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(pubsub_emulator.host, receiver, e2e_corpus.mirror)
        first = consumers.start_pull(route.subscription, env, name="first")
        with refusing(receiver):
            publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
            wait_until(lambda: receiver.refused_requests > 0, TRACES_TIMEOUT, "a refused export")
            stopped = first.terminate()
        assert (stopped.returncode, stopped.killed) == (0, False), first.describe()
        assert stopped.seconds < CONSUMER_STOP_SECONDS
        # The emulator gives what `first` nacked to its dead stream: see support.e2e.
        redeliver_after_stop(pubsub_emulator, route.subscription)
        second = consumers.start_pull(route.subscription, env, name="second")
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=[second])


def test_serve_sigterm_during_an_outage_exits_in_time_and_loses_nothing(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """`serve` stopped while exports retry a down backend exits within 10 s; a restart completes."""
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(
            pubsub_emulator.host, receiver, e2e_corpus.mirror, extra={"PROWTRACE_PUSH_AUTH": "off"}
        )
        first, url = consumers.start_serve(env, name="first")
        route = create_route(pubsub_emulator, PROJECT, "push-stuck", push_endpoint=f"{url}/")
        with refusing(receiver):
            publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
            wait_until(lambda: receiver.refused_requests > 0, TRACES_TIMEOUT, "a refused export")
            stopped = first.terminate()
        assert (stopped.returncode, stopped.killed) == (0, False), first.describe()
        assert stopped.seconds < CONSUMER_STOP_SECONDS
        port = int(url.rsplit(":", 1)[1])
        second, _ = consumers.start_serve(env, port=port, name="second")
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=[second])
