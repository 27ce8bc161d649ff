"""The end-to-end harness itself: its environment, its oracle guard, its emulator workaround."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.e2e import (
    E2eCorpus,
    consumer_env,
    count_unacked,
    create_route,
    publish_payloads,
    publish_time_dependent_spans,
    wait_until,
)
from support.otlp_receiver import OtlpReceiver
from support.pubsub_admin import EmulatorForTests

from processor.synthetic import generate, mirror_path, stream, write_mirror


def test_consumer_env_drops_the_callers_settings_and_sets_the_run_s() -> None:
    """Inherited OTEL_/PROWTRACE_/GOOGLE_ variables are dropped; PATH stays; `extra` wins."""
    caller = {
        "PATH": "/bin",
        "OTEL_SERVICE_NAME": "mine",
        "PROWTRACE_GRACE_SECONDS": "300",
        "GOOGLE_CLOUD_PROJECT": "real-project",
        "K_SERVICE": "prowtrace",
    }
    with OtlpReceiver() as receiver:
        env = consumer_env(
            "127.0.0.1:8085",
            receiver,
            Path("/mirror"),
            export_timeout_seconds=1,
            extra={"PROWTRACE_LOG_LEVEL": "DEBUG"},
            base=caller,
        )
        endpoint = f"http://{receiver.grpc_endpoint}"
    assert env["PATH"] == "/bin"
    assert not {"OTEL_SERVICE_NAME", "GOOGLE_CLOUD_PROJECT", "K_SERVICE"} & set(env)
    assert env["PROWTRACE_GRACE_SECONDS"] == "0"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
    assert env["OTEL_EXPORTER_OTLP_TIMEOUT"] == "1"
    assert env["PROWTRACE_LOG_LEVEL"] == "DEBUG"


def test_the_session_corpus_does_not_depend_on_publish_times(e2e_corpus: E2eCorpus) -> None:
    """The emulator stamps its own publish times; the corpus's spans do not depend on them."""
    assert publish_time_dependent_spans(e2e_corpus.messages, e2e_corpus.mirror) == []


def test_publish_time_dependence_is_detected(tmp_path: Path) -> None:
    """A job whose artifacts give no end is timed by publish times, and that is reported."""
    jobs = list(generate(1, seed=0))
    write_mirror(jobs, tmp_path)
    folder = mirror_path(tmp_path, jobs[0].gcs_path)
    prowjob = json.loads((folder / "prowjob.json").read_bytes())
    del prowjob["status"]["completionTime"]
    (folder / "prowjob.json").write_text(json.dumps(prowjob))
    # finished.json and podinfo.json would date the end too
    for name in ("finished.json", "podinfo.json"):
        (folder / name).unlink(missing_ok=True)
    assert publish_time_dependent_spans(stream(jobs), tmp_path)


@pytest.mark.emulator
def test_count_unacked_sees_what_a_stopped_stream_held(pubsub_emulator: EmulatorForTests) -> None:
    """Messages a cancelled streaming pull held unacked are counted (the dead stream is evicted)."""
    route = create_route(pubsub_emulator, "prow-e2e", "harness")
    publish_payloads(pubsub_emulator, route.topic, [b"one", b"two", b"three"])
    held: list[bytes] = []
    stream_future = pubsub_emulator.streaming_subscriber().subscribe(
        route.subscription, callback=lambda message: held.append(message.data)
    )
    try:
        wait_until(lambda: len(held) == 3, 10, "three messages delivered")
    finally:
        stream_future.cancel()
        stream_future.result(timeout=10)
    time.sleep(0.5)  # long enough for the emulator to hand them to the dead stream again
    assert count_unacked(pubsub_emulator, route.subscription) == 3


@pytest.mark.emulator
def test_batched_publishing_keeps_the_order(pubsub_emulator: EmulatorForTests) -> None:
    """Publishing several messages per call delivers them all, in publish order."""
    route = create_route(pubsub_emulator, "prow-e2e", "batched")
    payloads = [f"message {index}".encode() for index in range(7)]
    message_ids = publish_payloads(pubsub_emulator, route.topic, payloads, batch_size=3)
    pulled = pubsub_emulator.pull_all(route.subscription)
    assert [message.message.data for message in pulled] == payloads
    assert [message.message.message_id for message in pulled] == message_ids
