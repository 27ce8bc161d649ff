"""``prowtrace serve`` as a real process behind an emulator push subscription."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.e2e import (
    CONSUMER_STOP_SECONDS,
    ConsumerSet,
    E2eCorpus,
    consumer_env,
    create_route,
    publish_messages,
    wait_for_traces,
)
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

pytestmark = pytest.mark.emulator

PROJECT = "prow-e2e"
TRACES_TIMEOUT = 30.0


def test_push_turns_a_stream_into_exactly_the_expected_traces(
    pubsub_emulator: EmulatorForTests, e2e_corpus: E2eCorpus, tmp_path: Path
) -> None:
    """Pushed to `serve` (OTLP over HTTP this time), the stream gives exactly the oracle's spans."""
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path) as consumers:
        env = consumer_env(
            pubsub_emulator.host,
            receiver,
            e2e_corpus.mirror,
            protocol="http/protobuf",
            extra={"PROWTRACE_PUSH_AUTH": "off"},
        )
        server, url = consumers.start_serve(env)
        route = create_route(pubsub_emulator, PROJECT, "push", push_endpoint=f"{url}/")
        message_ids = publish_messages(pubsub_emulator, route.topic, e2e_corpus.messages)
        wait_for_traces(receiver, e2e_corpus.expected, timeout=TRACES_TIMEOUT, consumers=consumers)
        stopped = server.terminate()
        assert (stopped.returncode, stopped.killed) == (0, False), server.describe()
        assert stopped.seconds < CONSUMER_STOP_SECONDS
    handled = {record["message_id"] for record in server.message_records()}
    assert handled == set(message_ids)
