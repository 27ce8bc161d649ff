"""The Pub/Sub emulator fixture, against Google's real emulator (one shared per module)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.pubsub_admin import EmulatorForTests

from processor.tools.demo.pubsub_emulator import (
    DEBIAN_PACKAGE,
    EmulatorFailed,
    EmulatorNotFound,
    launcher_candidates,
)

PROJECT = "prow-test"


def is_alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie waiting for init to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorForTests]:
    """Run one real emulator for the whole module."""
    with EmulatorForTests() as running:
        yield running


class PushRecorder:
    """A tiny HTTP push endpoint that records every JSON body and answers 204."""

    def __init__(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self.bodies: list[dict[str, Any]] = []
        self.received = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                recorder.bodies.append(json.loads(self.rfile.read(length)))
                recorder.received.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 - the base class's signature
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )

    @property
    def url(self) -> str:
        """The push endpoint's URL."""
        return f"http://127.0.0.1:{self.server.server_port}/push"


@pytest.fixture
def push_recorder() -> Iterator[PushRecorder]:
    """Run a push endpoint for one test."""
    recorder = PushRecorder()
    recorder.thread.start()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()
    recorder.thread.join()


@pytest.mark.emulator
def test_publish_and_pull_round_trip(emulator: EmulatorForTests) -> None:
    """A published message is pulled back with its data, attributes and message ID."""
    topic = emulator.create_topic(PROJECT, "round-trip")
    subscription = emulator.create_subscription(PROJECT, "round-trip-sub", topic)
    message_id = emulator.publish(topic, b'{"status": "success"}', {"kind": "prowjob"})
    [received] = emulator.pull_all(subscription)
    assert received.message.data == b'{"status": "success"}'
    assert dict(received.message.attributes) == {"kind": "prowjob"}
    assert received.message.message_id == message_id


@pytest.mark.emulator
def test_pull_all_acks_what_it_pulls(emulator: EmulatorForTests) -> None:
    """Messages pull_all returned are acked: a second drain finds nothing."""
    topic = emulator.create_topic(PROJECT, "acked")
    subscription = emulator.create_subscription(PROJECT, "acked-sub", topic)
    emulator.publish(topic, b"1")
    emulator.publish(topic, b"2")
    assert sorted(m.message.data for m in emulator.pull_all(subscription)) == [b"1", b"2"]
    assert emulator.pull_all(subscription, timeout=0.2) == []


@pytest.mark.emulator
def test_message_is_dead_lettered_after_max_delivery_attempts(emulator: EmulatorForTests) -> None:
    """Nacked five times (attempts 1..5), a message moves to the dead-letter topic."""
    topic = emulator.create_topic(PROJECT, "dl-source")
    dead_letters = emulator.create_topic(PROJECT, "dl-target")
    dead_letter_sub = emulator.create_subscription(PROJECT, "dl-target-sub", dead_letters)
    subscription = emulator.create_subscription(
        PROJECT, "dl-source-sub", topic, dead_letter_topic=dead_letters, max_delivery_attempts=5
    )
    emulator.publish(topic, b"poison")
    attempts: list[int] = []
    while len(attempts) < 5:
        batch = emulator.pull(subscription)
        attempts.extend(m.delivery_attempt for m in batch)
        emulator.nack(subscription, batch)
    assert attempts == [1, 2, 3, 4, 5]
    # The emulator dead-letters on the source's next pull, which finds the message gone.
    assert emulator.pull_all(subscription, timeout=0.2) == []
    [dead] = emulator.pull_all(dead_letter_sub)
    assert dead.message.data == b"poison"
    assert dead.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"


@pytest.mark.emulator
def test_push_subscription_delivers_to_local_http_endpoint(
    emulator: EmulatorForTests, push_recorder: PushRecorder
) -> None:
    """A push subscription POSTs the message, base64-encoded, to a local HTTP endpoint."""
    topic = emulator.create_topic(PROJECT, "pushed")
    subscription = emulator.create_subscription(
        PROJECT, "pushed-sub", topic, push_endpoint=push_recorder.url
    )
    message_id = emulator.publish(topic, b"hello", {"a": "b"})
    assert push_recorder.received.wait(5)
    [body] = push_recorder.bodies
    assert body["subscription"] == subscription
    assert base64.b64decode(body["message"]["data"]) == b"hello"
    assert body["message"]["attributes"] == {"a": "b"}
    assert body["message"]["messageId"] == message_id


@pytest.mark.emulator
def test_streaming_subscriber_receives_published_message(emulator: EmulatorForTests) -> None:
    """google.cloud.pubsub_v1's streaming subscribe() works through streaming_subscriber()."""
    topic = emulator.create_topic(PROJECT, "streamed")
    subscription = emulator.create_subscription(PROJECT, "streamed-sub", topic)
    received: list[bytes] = []
    got_one = threading.Event()

    def on_message(message: Any) -> None:  # noqa: ANN401 - the wrapper's Message is untyped
        received.append(message.data)
        message.ack()
        got_one.set()

    future = emulator.streaming_subscriber().subscribe(subscription, callback=on_message)
    try:
        emulator.publish(topic, b"streamed")
        assert got_one.wait(5)
    finally:
        future.cancel()
        future.result(timeout=5)  # returns once the stream and its threads have shut down
    assert received == [b"streamed"]


@pytest.mark.emulator
def test_stop_leaves_no_emulator_process() -> None:
    """After stop(), the java process the launcher exec'd is gone."""
    with EmulatorForTests() as emulator:
        pid = emulator.pid
        assert emulator.host == f"127.0.0.1:{emulator.host.rsplit(':', 1)[1]}"
    assert not is_alive(pid)


def test_missing_launcher_raises_emulator_not_found(tmp_path: Path) -> None:
    """A missing launcher fails with where we looked and which Debian package provides it."""
    missing = tmp_path / "cloud-pubsub-emulator"
    with pytest.raises(EmulatorNotFound) as raised:
        EmulatorForTests(launcher=missing).start()
    assert str(missing) in str(raised.value)
    assert DEBIAN_PACKAGE in str(raised.value)


def test_launcher_that_exits_raises_emulator_failed_with_its_output(tmp_path: Path) -> None:
    """A launcher that dies before 'Server started' fails with its output, not a hang."""
    launcher = tmp_path / "cloud-pubsub-emulator"
    launcher.write_text("#!/bin/sh\necho 'no java here' >&2\nexit 3\n")
    launcher.chmod(0o755)
    with pytest.raises(EmulatorFailed, match=r"exited with status 3(.|\n)*no java here"):
        EmulatorForTests(launcher=launcher).start()


def test_launcher_that_never_gets_ready_is_killed_after_the_timeout(tmp_path: Path) -> None:
    """A launcher silent past startup_timeout fails, and its whole process group is killed."""
    pid_file = tmp_path / "child.pid"
    launcher = tmp_path / "cloud-pubsub-emulator"
    # The background child stands for a process java might leave: the group kill must get it.
    launcher.write_text(f"#!/bin/sh\nsleep 30 &\necho $! > {pid_file}\nexec sleep 30\n")
    launcher.chmod(0o755)
    with pytest.raises(EmulatorFailed, match="did not log 'Server started'"):
        EmulatorForTests(launcher=launcher, startup_timeout=0.5).start()
    assert not is_alive(int(pid_file.read_text()))


def test_launcher_candidates_put_cloudsdk_root_first_without_duplicates() -> None:
    """$CLOUDSDK_ROOT is searched first, then the Debian root, then gcloud's, each once."""
    candidates = launcher_candidates(
        {"CLOUDSDK_ROOT": "/opt/sdk"}, Path("/usr/lib/google-cloud-sdk")
    )
    assert candidates == [
        Path("/opt/sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
        Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
    ]


@pytest.mark.emulator
def test_taken_port_fails_fast_instead_of_hanging() -> None:
    """A fixed port already in use fails at once (java would otherwise linger half-started)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(EmulatorFailed, match=f"could not bind port {port}"):
            EmulatorForTests(port=port, startup_timeout=20).start()
    assert time.monotonic() - started < 10
