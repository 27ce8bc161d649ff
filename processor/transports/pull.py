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
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime

import structlog
from google.cloud.pubsub_v1 import SubscriberClient
from google.cloud.pubsub_v1.subscriber.futures import StreamingPullFuture
from google.cloud.pubsub_v1.subscriber.message import Message
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler
from google.cloud.pubsub_v1.types import FlowControl

from processor.config import PullSettings
from processor.core.message import Delivery
from processor.pipeline import Outcome, Result
from processor.transports.settle import drain, settle

log = structlog.get_logger("prowtrace.pull")


class PullWorker:
    """Consumes one subscription until stopped."""

    def __init__(
        self,
        subscriber: SubscriberClient,
        settings: PullSettings,
        handle: Callable[[Delivery], Result],
        *,
        project: str = "",
    ) -> None:
        """Pull ``settings.subscription`` with ``subscriber``, processing with ``handle``."""
        self._subscriber = subscriber
        self._settings = settings
        self._handle = handle
        self._project = project
        self._future: StreamingPullFuture | None = None
        self._lock = threading.Lock()
        self.outcomes: Counter[Outcome] = Counter()
        self.acked = 0
        self.nacked = 0
        self.in_flight = 0

    def start(self) -> None:
        """Open the streaming pull; messages start flowing to the callback pool."""
        executor = ThreadPoolExecutor(
            max_workers=self._settings.threads, thread_name_prefix="prowtrace-pull"
        )
        self._future = self._subscriber.subscribe(
            self._settings.subscription,
            callback=self._on_message,
            flow_control=FlowControl(
                max_messages=self._settings.max_outstanding_messages,
                max_bytes=self._settings.max_outstanding_bytes,
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
        future.cancel()
        drain(
            lambda seconds: _stream_closed(future, seconds),
            self._settings.shutdown_timeout,
            abort_exports,
            in_flight=lambda: self.in_flight,
            log=log,
            event="pull_stop",
        )
        log.info("pull_stopped", acked=self.acked, nacked=self.nacked)

    def _on_message(self, message: Message) -> None:
        publish_time = message.publish_time
        delivery = Delivery(
            data=message.data,
            publish_time=publish_time.astimezone(UTC) if publish_time else datetime.now(UTC),
            message_id=message.message_id,
            delivery_attempt=message.delivery_attempt,
        )
        with self._lock:
            self.in_flight += 1
        try:
            result, disposition = settle(self._handle, delivery, project=self._project, log=log)
        finally:
            with self._lock:
                self.in_flight -= 1
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


def _stream_closed(future: StreamingPullFuture, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the stream's shutdown; True once it is complete."""
    try:
        future.result(timeout=timeout)
    except FutureTimeout:
        return False
    except Exception as error:  # noqa: BLE001 - the stream's own failure, already reported
        log.debug("pull_stream_closed", error=repr(error))
    return True
