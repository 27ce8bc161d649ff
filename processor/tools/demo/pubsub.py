"""The demo's Pub/Sub: Google's emulator, and plain-gRPC clients to it.

The demo runs no Pub/Sub of its own: without the emulator it says so and offers ``replay`` of
the same jobs instead (:mod:`processor.tools.demo.run`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass

import grpc
import structlog
from google.cloud.pubsub_v1 import (  # untyped: see pyproject mypy overrides
    SubscriberClient as StreamingSubscriberClient,
)
from google.pubsub_v1 import PublisherClient, PubsubMessage, SubscriberClient
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from processor.synthetic import Published, message_bytes
from processor.synthetic.fleet import PUBSUB_PROJECT, PUBSUB_TOPIC
from processor.tools.demo.pubsub_emulator import EmulatorFailed, EmulatorNotFound, PubSubEmulator

log = structlog.get_logger("prowtrace.demo")

SUBSCRIPTION = "prowtrace-demo"
EMULATOR = "Google's Pub/Sub emulator"


@dataclass(frozen=True)
class PubSubServer:
    """The running emulator: where it listens and its process."""

    host: str
    pid: int


class EmulatorUnavailable(RuntimeError):
    """The emulator cannot run here; ``reason`` completes "Google's Pub/Sub emulator ..."."""

    def __init__(self, reason: str) -> None:
        """Keep the reason, phrased to follow the emulator's name."""
        super().__init__(f"{EMULATOR} {reason}")
        self.reason = reason


def start_emulator(
    stack: ExitStack, emulator_factory: Callable[[], PubSubEmulator]
) -> PubSubServer:
    """Start the emulator; ``stack`` stops it, even if starting is interrupted half-way.

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
    return PubSubServer(emulator.host, emulator.pid)


def failure_reason(message: str) -> str:
    """Pick the reason out of an ``EmulatorFailed`` message (its first line without the output)."""
    first = message.strip().splitlines()[0] if message.strip() else "no reason given"
    found = re.search(r"\) (.+?); its output:", first)
    return found.group(1) if found else first


class PubSubClients:
    """Publisher, admin subscriber and streaming subscriber on plain gRPC to a local server."""

    def __init__(self, host: str) -> None:
        """Open one insecure channel to ``host`` per client."""
        self._channels: list[grpc.Channel] = []
        self.publisher = PublisherClient(transport=PublisherGrpcTransport(channel=self._open(host)))
        self.admin = SubscriberClient(transport=SubscriberGrpcTransport(channel=self._open(host)))
        self.streaming = StreamingSubscriberClient(
            transport=SubscriberGrpcTransport(channel=self._open(host))
        )

    def _open(self, host: str) -> grpc.Channel:
        channel = grpc.insecure_channel(host)
        self._channels.append(channel)
        return channel

    def close(self) -> None:
        """Close every channel. Idempotent."""
        channels, self._channels = self._channels, []
        for channel in channels:
            with contextlib.suppress(Exception):  # closing must go on whatever one channel does
                channel.close()


def create_topic_and_subscription(clients: PubSubClients) -> tuple[str, str]:
    """Create crier's topic and the worker's subscription; return their paths."""
    topic = clients.publisher.create_topic(
        name=f"projects/{PUBSUB_PROJECT}/topics/{PUBSUB_TOPIC}"
    ).name
    subscription = clients.admin.create_subscription(
        name=f"projects/{PUBSUB_PROJECT}/subscriptions/{SUBSCRIPTION}", topic=topic
    ).name
    return str(topic), str(subscription)


def publish_in_order(publisher: PublisherClient, topic: str, messages: Iterable[Published]) -> int:
    """Publish each message as crier does (body only, no attributes), one after the other."""
    count = 0
    for published in messages:
        publisher.publish(topic=topic, messages=[PubsubMessage(data=message_bytes(published))])
        count += 1
    return count
