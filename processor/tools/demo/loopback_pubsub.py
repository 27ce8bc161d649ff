"""A Pub/Sub server inside the process, on 127.0.0.1: the demo's stand-in for Google's emulator.

It speaks the real Pub/Sub gRPC API, so the demo's publisher and the pull worker keep using
google-cloud-pubsub's real clients (streaming pull, lease management, flow control, acks and
nacks over RPC) exactly as they do against the emulator or the service. Only the calls the demo
makes are served: ``CreateTopic``, ``Publish``, ``CreateSubscription``, ``StreamingPull``,
``Acknowledge`` and ``ModifyAckDeadline``; anything else answers UNIMPLEMENTED.

Delivery follows the emulator without a retry policy: at least once, in publish order; a nack
(deadline 0) or an expired lease puts the message back at the head of the queue for immediate
redelivery; every delivery gets a fresh ack ID, and acks of unknown IDs are ignored. No ordering
keys, filters, dead-letter or retry policies: the demo uses none.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import grpc
from google.pubsub_v1 import types

from processor.local_service import LocalService

_PUBLISHER = "google.pubsub.v1.Publisher"
_SUBSCRIBER = "google.pubsub.v1.Subscriber"
_SERVER_THREADS = 16  # each open StreamingPull holds one; unary calls need the others
_POLL_SECONDS = 0.05  # how often an idle stream checks whether it was closed
_STOP_GRACE_SECONDS = 0.5
_MAX_BATCH = 100


@dataclass
class _Subscription:
    name: str
    topic: str
    ack_deadline_seconds: int
    waiting: deque[types.PubsubMessage] = field(default_factory=deque)
    leases: dict[str, tuple[types.PubsubMessage, float]] = field(default_factory=dict)
    """ack ID -> (message, monotonic deadline)."""


class LoopbackPubSub(LocalService):
    """An in-process Pub/Sub server on a free port of 127.0.0.1; thread-safe.

    Use it as a context manager, or ``start()`` / ``stop()``. ``host`` is what
    ``PUBSUB_EMULATOR_HOST`` would be set to.
    """

    def __init__(self) -> None:
        """Prepare an empty server (no topics, no subscriptions)."""
        self._lock = threading.Condition()
        self._topics: set[str] = set()
        self._subscriptions: dict[str, _Subscription] = {}
        self._message_ids = itertools.count(1)
        self._ack_ids = itertools.count(1)
        self._stopping = False
        self._executor: ThreadPoolExecutor | None = None
        self._server: grpc.Server | None = None
        self._port = 0

    # Lifecycle

    def start(self) -> Self:
        """Listen on 127.0.0.1 (a free port) and serve until ``stop()``."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._executor = ThreadPoolExecutor(_SERVER_THREADS, thread_name_prefix="loopback-pubsub")
        server = grpc.server(self._executor)
        server.add_generic_rpc_handlers((self._publisher_handler(), self._subscriber_handler()))
        self._port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Close every stream, stop serving and release the threads. Idempotent."""
        server, self._server = self._server, None
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if server is not None:
            server.stop(_STOP_GRACE_SECONDS).wait()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        return f"127.0.0.1:{self._port}"

    # What it holds, for tests

    def outstanding(self, subscription: str) -> int:
        """Return how many messages of ``subscription`` are not acked yet (waiting or leased)."""
        with self._lock:
            sub = self._subscriptions[subscription]
            return len(sub.waiting) + len(sub.leases)

    # Handlers

    def _publisher_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            _PUBLISHER,
            {
                "CreateTopic": _unary(self._create_topic, types.Topic, types.Topic),
                "Publish": _unary(self._publish, types.PublishRequest, types.PublishResponse),
            },
        )

    def _subscriber_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            _SUBSCRIBER,
            {
                "CreateSubscription": _unary(
                    self._create_subscription, types.Subscription, types.Subscription
                ),
                "Acknowledge": _unary(self._acknowledge, types.AcknowledgeRequest, None),
                "ModifyAckDeadline": _unary(
                    self._modify_ack_deadline, types.ModifyAckDeadlineRequest, None
                ),
                "StreamingPull": grpc.stream_stream_rpc_method_handler(
                    self._streaming_pull,
                    request_deserializer=types.StreamingPullRequest.deserialize,
                    response_serializer=types.StreamingPullResponse.serialize,
                ),
            },
        )

    def _create_topic(self, topic: types.Topic, context: grpc.ServicerContext) -> types.Topic:
        with self._lock:
            if topic.name in self._topics:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Topic already exists: {topic.name}")
            self._topics.add(topic.name)
        return topic

    def _create_subscription(
        self, subscription: types.Subscription, context: grpc.ServicerContext
    ) -> types.Subscription:
        with self._lock:
            if subscription.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found: {subscription.topic}")
            if subscription.name in self._subscriptions:
                context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"Subscription already exists: {subscription.name}",
                )
            deadline = subscription.ack_deadline_seconds or 10
            subscription.ack_deadline_seconds = deadline
            self._subscriptions[subscription.name] = _Subscription(
                subscription.name, subscription.topic, deadline
            )
        return subscription

    def _publish(
        self, request: types.PublishRequest, context: grpc.ServicerContext
    ) -> types.PublishResponse:
        ids: list[str] = []
        with self._lock:
            if request.topic not in self._topics:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found: {request.topic}")
            now = datetime.now(UTC)
            targets = [s for s in self._subscriptions.values() if s.topic == request.topic]
            for message in request.messages:
                message_id = str(next(self._message_ids))
                ids.append(message_id)
                stored = types.PubsubMessage(
                    data=message.data,
                    attributes=dict(message.attributes),
                    message_id=message_id,
                    publish_time=now,
                )
                for target in targets:
                    target.waiting.append(stored)
            self._lock.notify_all()
        return types.PublishResponse(message_ids=ids)

    def _acknowledge(
        self, request: types.AcknowledgeRequest, context: grpc.ServicerContext
    ) -> None:
        with self._lock:
            sub = self._subscription(request.subscription, context)
            for ack_id in request.ack_ids:
                sub.leases.pop(ack_id, None)

    def _modify_ack_deadline(
        self, request: types.ModifyAckDeadlineRequest, context: grpc.ServicerContext
    ) -> None:
        with self._lock:
            sub = self._subscription(request.subscription, context)
            self._modify(sub, request.ack_ids, request.ack_deadline_seconds)

    def _streaming_pull(
        self, requests: Iterator[types.StreamingPullRequest], context: grpc.ServicerContext
    ) -> Iterator[types.StreamingPullResponse]:
        first = next(requests, None)
        if first is None:
            return
        with self._lock:
            sub = self._subscription(first.subscription, context)
            self._apply_stream_request(sub, first)
        deadline = first.stream_ack_deadline_seconds or sub.ack_deadline_seconds
        closed = threading.Event()
        context.add_callback(closed.set)
        reader = threading.Thread(
            target=self._read_stream, args=(requests, sub, closed), daemon=True
        )
        reader.start()
        while not closed.is_set():
            batch = self._lease(sub, deadline)
            if batch is None:
                return
            if batch:
                yield types.StreamingPullResponse(received_messages=batch)

    def _read_stream(
        self,
        requests: Iterable[types.StreamingPullRequest],
        sub: _Subscription,
        closed: threading.Event,
    ) -> None:
        # The client sends acks, modacks and heartbeats on the stream while we send messages.
        try:
            for request in requests:
                with self._lock:
                    self._apply_stream_request(sub, request)
        except grpc.RpcError:
            pass  # the stream was cancelled: nothing more will come
        finally:
            closed.set()
            with self._lock:
                self._lock.notify_all()

    # State changes (called with the lock held)

    def _subscription(self, name: str, context: grpc.ServicerContext) -> _Subscription:
        sub = self._subscriptions.get(name)
        if sub is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Subscription does not exist: {name}")
        return sub

    def _apply_stream_request(
        self, sub: _Subscription, request: types.StreamingPullRequest
    ) -> None:
        for ack_id in request.ack_ids:
            sub.leases.pop(ack_id, None)
        for ack_id, seconds in zip(
            request.modify_deadline_ack_ids, request.modify_deadline_seconds, strict=False
        ):
            self._modify(sub, [ack_id], seconds)

    def _modify(self, sub: _Subscription, ack_ids: Iterable[str], seconds: int) -> None:
        now = time.monotonic()
        for ack_id in ack_ids:
            lease = sub.leases.pop(ack_id, None)
            if lease is None:
                continue
            if seconds <= 0:  # a nack: redeliver at once
                sub.waiting.appendleft(lease[0])
            else:
                sub.leases[ack_id] = (lease[0], now + seconds)
        self._lock.notify_all()

    def _lease(
        self, sub: _Subscription, deadline_seconds: int
    ) -> list[types.ReceivedMessage] | None:
        """Wait briefly for messages and lease them; ``None`` once the server is stopping."""
        with self._lock:
            self._expire(sub)
            if not sub.waiting and not self._stopping:
                self._lock.wait(_POLL_SECONDS)
                self._expire(sub)
            if self._stopping:
                return None
            batch: list[types.ReceivedMessage] = []
            expires = time.monotonic() + deadline_seconds
            while sub.waiting and len(batch) < _MAX_BATCH:
                message = sub.waiting.popleft()
                ack_id = f"{sub.name}#{next(self._ack_ids)}"
                sub.leases[ack_id] = (message, expires)
                batch.append(types.ReceivedMessage(ack_id=ack_id, message=message))
            return batch

    def _expire(self, sub: _Subscription) -> None:
        now = time.monotonic()
        expired = [ack_id for ack_id, (_, deadline) in sub.leases.items() if deadline <= now]
        for ack_id in reversed(expired):
            sub.waiting.appendleft(sub.leases.pop(ack_id)[0])


def _unary(
    method: Callable[[Any, grpc.ServicerContext], Any],
    request_type: Any,  # noqa: ANN401 - a proto-plus message class
    response_type: Any,  # noqa: ANN401 - a proto-plus message class, or None for Empty
) -> grpc.RpcMethodHandler[Any, Any]:
    serialize: Callable[[Any], bytes] = (
        response_type.serialize if response_type is not None else _empty
    )
    return grpc.unary_unary_rpc_method_handler(
        method, request_deserializer=request_type.deserialize, response_serializer=serialize
    )


def _empty(_response: object) -> bytes:
    return b""  # google.protobuf.Empty has no fields
