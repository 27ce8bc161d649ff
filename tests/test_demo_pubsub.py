"""Choosing the demo's Pub/Sub server: the emulator, or the in-process one and why."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from processor.tools.demo.pubsub import (
    IN_PROCESS,
    PubSubClients,
    create_topic_and_subscription,
    failure_reason,
    start_pubsub,
)
from processor.tools.demo.pubsub_emulator import PubSubEmulator


def test_without_the_emulator_the_in_process_server_runs_until_the_stack_closes() -> None:
    """--no-emulator: the in-process server serves the demo's calls, and stops with the stack."""
    with ExitStack() as stack:
        server = start_pubsub(stack, use_emulator=False, emulator_factory=PubSubEmulator)
        clients = PubSubClients(server.host)
        stack.callback(clients.close)
        topic, subscription = create_topic_and_subscription(clients)

    assert (server.label, server.pid, server.fallback_reason) == (IN_PROCESS, None, "")
    assert topic == "projects/acme-prow/topics/prowjob-events"
    assert subscription == "projects/acme-prow/subscriptions/prowtrace-demo"


def test_a_missing_emulator_falls_back_and_says_it_is_not_installed(tmp_path: Path) -> None:
    """No launcher: the in-process server, with the reason naming the Debian package."""
    with ExitStack() as stack:
        server = start_pubsub(
            stack,
            use_emulator=True,
            emulator_factory=lambda: PubSubEmulator(launcher=tmp_path / "absent"),
        )

    assert not server.is_emulator
    assert "not installed" in server.fallback_reason
    assert "google-cloud-cli-pubsub-emulator" in server.fallback_reason


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            "the Pub/Sub emulator (/x/launcher) exited with status 3; its output:\nboom",
            "exited with status 3",
        ),
        ("something else entirely\nmore", "something else entirely"),
        ("", "no reason given"),
    ],
)
def test_the_emulators_failure_reason_is_one_short_phrase(message: str, reason: str) -> None:
    """The fallback line quotes why the emulator failed, without its whole output."""
    assert failure_reason(message) == reason
