"""The in-process Pub/Sub server, driven by google-cloud-pubsub's real clients over gRPC."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core.exceptions import AlreadyExists, NotFound
from google.pubsub_v1 import PubsubMessage, StreamingPullRequest

from processor.tools.demo.loopback_pubsub import LoopbackPubSub
from processor.tools.demo.pubsub import PubSubClients

TOPIC = "projects/demo/topics/crier"
SUBSCRIPTION = "projects/demo/subscriptions/worker"


@pytest.fixture
def server() -> Iterator[LoopbackPubSub]:
    """Run one server for a test."""
    with LoopbackPubSub() as running:
        yield running


@pytest.fixture
def clients(server: LoopbackPubSub) -> Iterator[PubSubClients]:
    """Clients on the server, with the topic and subscription created."""
    opened = PubSubClients(server.host)
    opened.publisher.create_topic(name=TOPIC)
    opened.admin.create_subscription(name=SUBSCRIPTION, topic=TOPIC)
    yield opened
    opened.close()


def _publish(clients: PubSubClients, *bodies: bytes) -> list[str]:
    return [
        clients.publisher.publish(topic=TOPIC, messages=[PubsubMessage(data=body)]).message_ids[0]
        for body in bodies
    ]


class _Receiver:
    """A streaming-pull callback that records messages and acks, or nacks the first delivery."""

    def __init__(self, *, nack_first: bytes = b"") -> None:
        self.received: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._nack_first = nack_first
        self._nacked = False
        self._lock = threading.Lock()

    def __call__(self, message: Any) -> None:  # noqa: ANN401 - the library's untyped Message
        with self._lock:
            if message.data == self._nack_first and not self._nacked:
                self._nacked = True
                message.nack()
                return
        self.received.put(message)
        message.ack()

    def take(self, count: int) -> list[Any]:
        return [self.received.get(timeout=10) for _ in range(count)]


def _wait_until(condition: Any, timeout: float = 5.0) -> bool:  # noqa: ANN401 - any callable
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_streaming_pull_delivers_in_publish_order_and_acks(
    server: LoopbackPubSub, clients: PubSubClients
) -> None:
    """Messages arrive in publish order with their IDs and publish times; acks clear them."""
    ids = _publish(clients, b"one", b"two", b"three")
    receiver = _Receiver()
    future = clients.streaming.subscribe(SUBSCRIPTION, callback=receiver)
    try:
        messages = receiver.take(3)
        assert _wait_until(lambda: server.outstanding(SUBSCRIPTION) == 0)
    finally:
        future.cancel()
        future.result(timeout=10)

    assert [m.data for m in messages] == [b"one", b"two", b"three"]
    assert [m.message_id for m in messages] == ids
    assert all(m.publish_time.year >= 2025 for m in messages)


def test_a_nacked_message_is_delivered_again(
    server: LoopbackPubSub, clients: PubSubClients
) -> None:
    """A nack puts the message back; it comes again and can then be acked."""
    _publish(clients, b"flaky", b"fine")
    receiver = _Receiver(nack_first=b"flaky")
    future = clients.streaming.subscribe(SUBSCRIPTION, callback=receiver)
    try:
        messages = receiver.take(2)
        assert _wait_until(lambda: server.outstanding(SUBSCRIPTION) == 0)
    finally:
        future.cancel()
        future.result(timeout=10)

    assert sorted(m.data for m in messages) == [b"fine", b"flaky"]


def test_an_expired_lease_is_delivered_again(clients: PubSubClients) -> None:
    """A message neither acked nor extended within the stream's deadline is redelivered."""
    _publish(clients, b"slow")
    stop = threading.Event()

    def requests() -> Iterator[StreamingPullRequest]:
        yield StreamingPullRequest(subscription=SUBSCRIPTION, stream_ack_deadline_seconds=1)
        stop.wait(10)

    stream = clients.admin.streaming_pull(requests=requests())
    try:
        first = next(iter(stream)).received_messages[0]
        again = next(iter(stream)).received_messages[0]
    finally:
        stop.set()  # ends the request stream: the server then ends its side

    assert again.message.data == first.message.data == b"slow"
    assert again.ack_id != first.ack_id


def test_pulling_an_unknown_subscription_is_not_found(clients: PubSubClients) -> None:
    """The stream fails with NOT_FOUND, as the service's does."""
    future = clients.streaming.subscribe("projects/demo/subscriptions/nope", callback=print)

    with pytest.raises(NotFound):
        future.result(timeout=10)


def test_publishing_to_an_unknown_topic_is_not_found(clients: PubSubClients) -> None:
    """Publish checks the topic exists."""
    with pytest.raises(NotFound):
        clients.publisher.publish(
            topic="projects/demo/topics/nope", messages=[PubsubMessage(data=b"x")]
        )


def test_creating_a_topic_twice_is_already_exists(clients: PubSubClients) -> None:
    """Names are unique, as in the service."""
    with pytest.raises(AlreadyExists):
        clients.publisher.create_topic(name=TOPIC)


def test_messages_published_before_the_subscription_are_not_delivered(
    server: LoopbackPubSub, clients: PubSubClients
) -> None:
    """A subscription gets only what is published after it exists."""
    clients.publisher.create_topic(name="projects/demo/topics/early")
    clients.publisher.publish(
        topic="projects/demo/topics/early", messages=[PubsubMessage(data=b"x")]
    )
    clients.admin.create_subscription(
        name="projects/demo/subscriptions/late", topic="projects/demo/topics/early"
    )

    assert server.outstanding("projects/demo/subscriptions/late") == 0


def test_stop_ends_open_streams_and_its_threads() -> None:
    """Stopping the server closes a streaming pull in progress and leaves no thread of its own."""
    before = set(threading.enumerate())
    server = LoopbackPubSub().start()
    clients = PubSubClients(server.host)
    clients.publisher.create_topic(name=TOPIC)
    clients.admin.create_subscription(name=SUBSCRIPTION, topic=TOPIC)
    stop = threading.Event()

    def requests() -> Iterator[StreamingPullRequest]:
        yield StreamingPullRequest(subscription=SUBSCRIPTION, stream_ack_deadline_seconds=10)
        stop.wait(10)

    clients.publisher.publish(topic=TOPIC, messages=[PubsubMessage(data=b"x")])
    stream = clients.admin.streaming_pull(requests=requests())
    assert next(iter(stream)).received_messages  # the stream is open on the server
    started = time.monotonic()
    server.stop()
    remaining = list(stream)
    stop.set()
    clients.close()

    assert remaining == []
    assert time.monotonic() - started < 5
    assert _wait_until(
        lambda: not [t for t in set(threading.enumerate()) - before if "loopback" in t.name]
    )
