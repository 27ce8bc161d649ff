"""``prowtrace pull``: a streaming-pull worker that acks a message only once its spans are out.

google-cloud-pubsub delivers messages to a callback on a thread pool, bounded by flow control.
Each callback runs the pipeline synchronously, so concurrency is the pool size; concurrent
callbacks share exporter calls through the group-commit exporter the caller wires in. On stop
(SIGTERM/SIGINT), the stream is cancelled: no new messages are dispatched, the ones waiting in the
client's buffer are nacked by the library, and the callbacks in flight finish (and ack or nack)
before :meth:`PullWorker.stop` returns. A callback can be stuck for the exporter's whole timeout
(an OTLP exporter retries a down backend for 10 s by default), longer than Cloud Run's 10 s between
SIGTERM and SIGKILL, so ``stop`` keeps a reserve of its budget: when only that reserve is left it
aborts the exports in flight (the caller's ``abort_exports``), and the callbacks nack at once
(:func:`processor.transports.settle.drain`, shared with the push endpoint).

A message whose only problem is a late file (``Result.late``: crier's GCS reporter has not
written ``prowjob.json``/``podinfo.json`` yet) is neither acked nor nacked: it is held
(:mod:`processor.transports.holding`) and run again on a short, growing schedule until the file is
there or ``hold_for`` after its publish time (the grace period), when the pipeline proceeds with
what exists. The client library's leaser keeps extending the lease of every message it delivered
and has not seen acked or nacked, up to ``FlowControl.max_lease_duration`` (google-cloud-pubsub,
``subscriber/_protocol/leaser.py``: ``maintain_leases``), so a held message is not redelivered
elsewhere; it still counts against flow control (``max_messages``), which is what bounds how many
are held. On stop, held messages are nacked first, at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import structlog
from google.cloud.pubsub_v1 import SubscriberClient
from google.cloud.pubsub_v1.subscriber.futures import StreamingPullFuture
from google.cloud.pubsub_v1.subscriber.message import Message
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler
from google.cloud.pubsub_v1.types import FlowControl

from processor.config import PullSettings
from processor.core.message import Delivery
from processor.pipeline import Outcome, Result
from processor.transports.holding import Holding, next_recheck
from processor.transports.settle import decide, drain, process

log = structlog.get_logger("prowtrace.pull")

LEASE_MARGIN_SECONDS = 600.0
"""The library drops a lease older than max_lease_duration: keep it this far past the grace."""


@dataclass(frozen=True, slots=True)
class _Held:
    """A message waiting for a late file, and when it is due to be run again."""

    delivery: Delivery
    previous_wait: float
    last: Result | None = None
    """The result that made it wait (None on first delivery)."""


class PullWorker:
    """Consumes one subscription until stopped."""

    def __init__(  # noqa: PLR0913 - each keyword is one thing the worker is wired to
        self,
        subscriber: SubscriberClient,
        settings: PullSettings,
        handle: Callable[[Delivery], Result],
        *,
        project: str = "",
        hold_for: timedelta = timedelta(0),
        recheck: Callable[[Delivery, Result], Result] | None = None,
    ) -> None:
        """Pull ``settings.subscription`` with ``subscriber``, processing with ``handle``.

        ``hold_for`` (the pipeline's grace period) bounds how long after its publish time a
        message with a late file is held and re-checked; 0 nacks it at once. ``recheck`` (the
        pipeline's) runs a held message again cheaply; without it ``handle`` does.
        """
        self._subscriber = subscriber
        self._settings = settings
        self._handle = handle
        self._project = project
        self._hold_for = hold_for
        self._recheck = recheck
        self._future: StreamingPullFuture | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._holding: Holding[tuple[Message, _Held]] = Holding(self._recheck_due)
        self._lock = threading.Lock()
        self.outcomes: Counter[Outcome] = Counter()
        self.acked = 0
        self.nacked = 0
        self.in_flight = 0
        self.rechecks = 0

    def start(self) -> None:
        """Open the streaming pull; messages start flowing to the callback pool."""
        executor = ThreadPoolExecutor(
            max_workers=self._settings.threads, thread_name_prefix="prowtrace-pull"
        )
        self._executor = executor
        default_lease = FlowControl().max_lease_duration
        self._future = self._subscriber.subscribe(
            self._settings.subscription,
            callback=self._on_message,
            flow_control=FlowControl(
                max_messages=self._settings.max_outstanding_messages,
                max_bytes=self._settings.max_outstanding_bytes,
                max_lease_duration=max(
                    default_lease, self._hold_for.total_seconds() + LEASE_MARGIN_SECONDS
                ),
            ),
            scheduler=ThreadScheduler(executor),
            await_callbacks_on_shutdown=True,
        )
        log.info(
            "pull_started",
            subscription=self._settings.subscription,
            max_outstanding_messages=self._settings.max_outstanding_messages,
            threads=self._settings.threads,
        )

    def wait(self, stop: threading.Event) -> str:
        """Block until ``stop`` is set or the stream fails; return why it ended."""
        future = self._future
        if future is None:
            raise RuntimeError("start() the worker first")
        while not stop.wait(0.5):
            if future.done():
                error = future.exception()
                return f"stream ended: {error!r}" if error else "stream ended"
        return "stop requested"

    def stop(self, abort_exports: Callable[[], None] | None = None) -> None:
        """Stop pulling and settle in-flight messages within ``settings.shutdown_timeout``.

        The stream is cancelled at once (undispatched messages get nacked by the library) and
        in-flight callbacks may finish normally until only ``ABORT_RESERVE_SECONDS`` of the budget
        remain; then ``abort_exports`` (e.g. the exporter's ``shutdown``) makes the exports they
        wait on fail at once, so they nack rather than outlive the process's grace period.
        """
        future = self._future
        if future is None:
            return
        held = self._holding.close()
        for message, _ in held:
            message.nack()
        with self._lock:
            self.nacked += len(held)
        if held:
            log.info("pull_stop_nacked_held", held=len(held))
        future.cancel()
        drain(
            lambda seconds: _stream_closed(future, seconds),
            self._settings.shutdown_timeout,
            abort_exports,
            in_flight=lambda: self.in_flight,
            log=log,
            event="pull_stop",
        )
        self._renack([message.ack_id for message, _ in held])
        log.info("pull_stopped", acked=self.acked, nacked=self.nacked)

    def _renack(self, ack_ids: list[str]) -> None:
        """Nack held messages once more, now that the stream and its lease keeping are stopped.

        The library sends a message's receipt lease extension over the stream and a nack as a
        separate request, so a nack sent right after receipt can reach Pub/Sub first and be
        overtaken: the message then stays leased to nobody until that lease runs out (seen on
        the emulator). A second nack (deadline 0) after the stream is closed cannot be
        overtaken. Best effort: a failure leaves the lease to expire as before.
        """
        if not ack_ids:
            return
        try:
            self._subscriber.modify_ack_deadline(
                subscription=self._settings.subscription, ack_ids=ack_ids, ack_deadline_seconds=0
            )
        except Exception as error:  # noqa: BLE001 - best effort; the lease expires anyway
            log.warning("pull_stop_renack_failed", held=len(ack_ids), error=repr(error))

    def _on_message(self, message: Message) -> None:
        publish_time = message.publish_time
        delivery = Delivery(
            data=message.data,
            publish_time=publish_time.astimezone(UTC) if publish_time else datetime.now(UTC),
            message_id=message.message_id,
            delivery_attempt=message.delivery_attempt,
        )
        self._process(message, _Held(delivery, previous_wait=0.0), first=True)

    def _recheck_due(self, item: tuple[Message, _Held]) -> None:
        """Run a held message again on the callback pool (called on the holding timer)."""
        message, held = item
        executor = self._executor
        try:
            if executor is None:
                raise RuntimeError("no executor")  # noqa: TRY301 - one path for both cases
            # The message is the first argument, as the library's scheduler expects of queued
            # work: a stop that drains the queue nacks it (subscriber/scheduler.py, shutdown).
            executor.submit(self._process_held, message, held)
        except RuntimeError:  # the pool is shutting down: hand the message back at once
            message.nack()
            with self._lock:
                self.nacked += 1

    def _process_held(self, message: Message, held: _Held) -> None:
        with self._lock:
            self.rechecks += 1
        self._process(message, held, first=False)

    def _process(self, message: Message, held: _Held, *, first: bool) -> None:
        delivery = held.delivery
        with self._lock:
            self.in_flight += 1
        last, recheck = held.last, self._recheck
        run = self._handle
        if last is not None and recheck is not None:
            run = lambda again: recheck(again, last)  # noqa: E731 - the same shape as handle
        try:
            result = process(run, delivery, log=log)
        finally:
            with self._lock:
                self.in_flight -= 1
        if result.late and self._hold(message, replace(held, last=result), first=first):
            return
        disposition = decide(result, delivery, project=self._project, log=log)
        with self._lock:
            self.outcomes[result.outcome] += 1
            if disposition.ack:
                self.acked += 1
            else:
                self.nacked += 1
        if disposition.ack:
            message.ack()
        else:
            message.nack()

    def _hold(self, message: Message, held: _Held, *, first: bool) -> bool:
        """Hold a message with a late file for a re-check; False if it must be settled now."""
        now = datetime.now(UTC)
        until = held.delivery.publish_time + self._hold_for
        if now >= until:
            return False
        held_for = (now - held.delivery.publish_time).total_seconds()
        wait = next_recheck(None if first else held.previous_wait, held_for)
        wait = min(wait, (until - now).total_seconds())
        if not self._holding.hold((message, replace(held, previous_wait=wait)), wait):
            return False
        log.debug("message_held", message_id=message.message_id, wait=wait)
        return True


def _stream_closed(future: StreamingPullFuture, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the stream's shutdown; True once it is complete."""
    try:
        future.result(timeout=timeout)
    except FutureTimeout:
        return False
    except Exception as error:  # noqa: BLE001 - the stream's own failure, already reported
        log.debug("pull_stream_closed", error=repr(error))
    return True
