"""Google's Pub/Sub emulator for tests: the demo's launcher plus the admin calls tests need.

``EmulatorForTests`` is :class:`processor.tools.demo.pubsub_emulator.PubSubEmulator` with
dead-letter, push and retry subscriptions and unary pull, ack and nack::

    with EmulatorForTests() as emulator:
        topic = emulator.create_topic("proj", "crier")
        sub = emulator.create_subscription("proj", "crier-sub", topic)
        emulator.publish(topic, b"{}")
        messages = emulator.pull_all(sub)

Emulator quirks, measured on version 0.8.20 (they differ from the real service):

- Resource names (topic, subscription) need at least 3 characters, as in the real service.
- ``max_delivery_attempts`` must be 5..100, as in the real service; ``ack_deadline_seconds``
  below 10 is accepted (the real service requires 10..600).
- Without a retry policy a nacked message is redelivered at once, so a dead-letter test with
  5 attempts takes well under a second. With a retry policy, redeliveries after the second are
  spaced on a ~2 s tick whatever the backoff (0 s and 0.1 s are accepted and behave like 2 s;
  3 s behaves like 4 s).
- Push: a 2xx acks. A failed push is retried about once a second (slower with a retry policy),
  and dead-lettering works for push subscriptions too. The push body carries ``messageId`` and
  ``publishTime`` plus snake_case duplicates (``message_id``, ``publish_time``) and NO
  ``deliveryAttempt``, even with a dead-letter policy (the real service sends it). No
  ``Authorization`` header is sent.
- Pulled messages carry ``delivery_attempt`` (1, 2, ...) when the subscription has a
  dead-letter policy, 0 otherwise; but also whenever it has a retry policy, even without a
  dead-letter policy (the real service reports attempts only with one). A dead-lettered
  message arrives with ``delivery_attempt`` 0 and attributes ``CloudPubSubDeadLetterSource*``
  (subscription, delivery count, ...).
- Dead-lettering is lazy: after the last allowed nack the message moves to the dead-letter
  topic only when the source subscription is next pulled (that pull returns nothing).
  ``pull_all`` on the source, or any further ``pull``, triggers it.
- A streaming pull that ends (cancelled: the emulator's gRPC server crashes on the cancel; or
  the client SIGKILLed) stays registered and keeps taking nacked, expired and new messages,
  re-leasing them for 60 s, forever. Setting a push config on the subscription for a moment
  ends it (``support.e2e.evict_dead_streams``); the real service has no such defect.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from google.api_core.exceptions import DeadlineExceeded
from google.protobuf import duration_pb2
from google.pubsub_v1 import (
    DeadLetterPolicy,
    PushConfig,
    ReceivedMessage,
    RetryPolicy,
    Subscription,
)

from processor.tools.demo.pubsub_emulator import PubSubEmulator

_PULL_POLL_SECONDS = 0.05
_PULL_WAIT_SECONDS = 1.0
_PULL_BATCH = 100


def _duration(seconds: float) -> duration_pb2.Duration:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


class EmulatorForTests(PubSubEmulator):
    """The emulator with the subscriptions and unary calls the end-to-end tests use."""

    def create_subscription(  # noqa: PLR0913 - each keyword is one subscription setting
        self,
        project: str,
        name: str,
        topic_path: str,
        *,
        ack_deadline_seconds: int = 10,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        push_endpoint: str | None = None,
        retry_min_backoff_seconds: float | None = None,
        retry_max_backoff_seconds: float | None = None,
    ) -> str:
        """Create ``projects/{project}/subscriptions/{name}`` on ``topic_path``; return its path.

        ``dead_letter_topic`` (a topic path) adds a dead-letter policy with
        ``max_delivery_attempts`` (5..100, enforced by the emulator); give the dead-letter topic
        a subscription of its own, or what it receives is lost. ``push_endpoint`` (e.g.
        ``http://127.0.0.1:PORT/push``) makes it a push subscription. A retry policy is set only
        if ``retry_min_backoff_seconds`` is given; its maximum defaults to the minimum. Mind the
        emulator's retry-policy quirk in this module's docstring: without a retry policy a nack
        is redelivered at once, with one the emulator waits ~2 s or more per redelivery.
        """
        subscription = Subscription(
            name=f"projects/{project}/subscriptions/{name}",
            topic=topic_path,
            ack_deadline_seconds=ack_deadline_seconds,
        )
        if dead_letter_topic is not None:
            subscription.dead_letter_policy = DeadLetterPolicy(
                dead_letter_topic=dead_letter_topic, max_delivery_attempts=max_delivery_attempts
            )
        if push_endpoint is not None:
            subscription.push_config = PushConfig(push_endpoint=push_endpoint)
        if retry_min_backoff_seconds is not None:
            maximum = (
                retry_min_backoff_seconds
                if retry_max_backoff_seconds is None
                else retry_max_backoff_seconds
            )
            subscription.retry_policy = RetryPolicy(
                minimum_backoff=_duration(retry_min_backoff_seconds),
                maximum_backoff=_duration(maximum),
            )
        return self._create_subscription(subscription)

    def pull(
        self,
        subscription_path: str,
        max_messages: int = _PULL_BATCH,
        *,
        wait_seconds: float = _PULL_WAIT_SECONDS,
    ) -> list[ReceivedMessage]:
        """Pull one batch without acking; empty if nothing comes within ``wait_seconds``.

        On a subscription with nothing outstanding the emulator usually answers at once.
        """
        try:
            response = self._subscriber().pull(
                subscription=subscription_path,
                max_messages=max_messages,
                timeout=wait_seconds,
                retry=None,  # a deadline here means "nothing yet", not an error to retry
            )
        except DeadlineExceeded:
            return []
        return list(response.received_messages)

    def ack(self, subscription_path: str, messages: Sequence[ReceivedMessage]) -> None:
        """Acknowledge pulled messages."""
        if messages:
            self._subscriber().acknowledge(
                subscription=subscription_path, ack_ids=[m.ack_id for m in messages]
            )

    def nack(self, subscription_path: str, messages: Sequence[ReceivedMessage]) -> None:
        """Nack pulled messages (ack deadline 0), so they are redelivered or dead-lettered."""
        if messages:
            self._subscriber().modify_ack_deadline(
                subscription=subscription_path,
                ack_ids=[m.ack_id for m in messages],
                ack_deadline_seconds=0,
            )

    def pull_all(self, subscription_path: str, timeout: float = 2.0) -> list[ReceivedMessage]:
        """Pull and ack until the subscription is drained; return every message pulled.

        Polls until a pull comes back empty after at least one message arrived, or until
        ``timeout`` seconds pass (then returns what it has, possibly nothing): a short timeout
        also checks that nothing arrives.
        """
        deadline = time.monotonic() + timeout
        pulled: list[ReceivedMessage] = []
        while True:
            wait = min(_PULL_WAIT_SECONDS, max(deadline - time.monotonic(), _PULL_POLL_SECONDS))
            batch = self.pull(subscription_path, wait_seconds=wait)
            self.ack(subscription_path, batch)
            pulled.extend(batch)
            if (not batch and pulled) or time.monotonic() >= deadline:
                return pulled
            if not batch:
                time.sleep(_PULL_POLL_SECONDS)
