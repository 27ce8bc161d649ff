"""The demo's Pub/Sub: Google's emulator, or a clear reason why it cannot run."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from demo_helpers import is_alive

from processor.tools.demo.pubsub import (
    EmulatorUnavailable,
    create_topic_and_subscription,
    failure_reason,
    start_emulator,
)
from processor.tools.demo.pubsub_emulator import PubSubEmulator


@pytest.mark.emulator
def test_the_emulator_serves_the_demos_calls_until_the_stack_closes() -> None:
    """The emulator takes the topic and subscription, and is stopped with the stack."""
    with ExitStack() as stack:
        emulator = start_emulator(stack, PubSubEmulator)
        host, pid = emulator.host, emulator.pid
        topic, subscription = create_topic_and_subscription(emulator)

    assert host.startswith("127.0.0.1:")
    assert topic == "projects/acme-prow/topics/prowjob-events"
    assert subscription == "projects/acme-prow/subscriptions/prowtrace-demo"
    assert not is_alive(pid)


def test_a_missing_emulator_is_refused_naming_the_debian_package(tmp_path: Path) -> None:
    """No launcher: EmulatorUnavailable, with a reason naming the package to install."""
    with ExitStack() as stack, pytest.raises(EmulatorUnavailable) as missing:
        start_emulator(stack, lambda: PubSubEmulator(launcher=tmp_path / "absent"))

    assert "not installed" in missing.value.reason
    assert "google-cloud-cli-pubsub-emulator" in missing.value.reason


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
