"""The demo's Pub/Sub: Google's emulator and the clients it builds.

The demo runs no Pub/Sub of its own: without the emulator it says so and offers ``replay`` of
the same jobs instead (:mod:`processor.tools.demo.run`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import ExitStack

import structlog

from processor.synthetic import Published, message_bytes
from processor.synthetic.fleet import PUBSUB_PROJECT, PUBSUB_TOPIC
from processor.tools.demo.pubsub_emulator import EmulatorFailed, EmulatorNotFound, PubSubEmulator

log = structlog.get_logger("prowtrace.demo")

SUBSCRIPTION = "prowtrace-demo"
EMULATOR = "Google's Pub/Sub emulator"


class EmulatorUnavailable(RuntimeError):
    """The emulator cannot run here; ``reason`` completes "Google's Pub/Sub emulator ..."."""

    def __init__(self, reason: str) -> None:
        """Keep the reason, phrased to follow the emulator's name."""
        super().__init__(f"{EMULATOR} {reason}")
        self.reason = reason


def start_emulator(
    stack: ExitStack, emulator_factory: Callable[[], PubSubEmulator]
) -> PubSubEmulator:
    """Start the emulator; ``stack`` stops it (and its clients), even if interrupted half-way.

    Raises :class:`EmulatorUnavailable` when it is not installed or does not start.
    """
    emulator = emulator_factory()
    stack.callback(emulator.stop)  # before start(): a Ctrl-C while java boots still kills it
    try:
        emulator.start()
    except EmulatorNotFound:
        raise EmulatorUnavailable(
            "is not installed (Debian package google-cloud-cli-pubsub-emulator)"
        ) from None
    except EmulatorFailed as error:
        log.warning("demo_emulator_failed", error=str(error))  # with its output, in the log
        raise EmulatorUnavailable(f"did not start ({failure_reason(str(error))})") from error
    return emulator


def failure_reason(message: str) -> str:
    """Pick the reason out of an ``EmulatorFailed`` message (its first line without the output)."""
    first = message.strip().splitlines()[0] if message.strip() else "no reason given"
    found = re.search(r"\) (.+?); its output:", first)
    return found.group(1) if found else first


def create_topic_and_subscription(emulator: PubSubEmulator) -> tuple[str, str]:
    """Create crier's topic and the worker's subscription; return their paths."""
    topic = emulator.create_topic(PUBSUB_PROJECT, PUBSUB_TOPIC)
    return topic, emulator.create_subscription(PUBSUB_PROJECT, SUBSCRIPTION, topic)


def publish_in_order(emulator: PubSubEmulator, topic: str, messages: Iterable[Published]) -> int:
    """Publish each message as crier does (body only, no attributes), one after the other."""
    count = 0
    for published in messages:
        emulator.publish(topic, message_bytes(published))
        count += 1
    return count
