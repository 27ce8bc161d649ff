"""Group commit for span exports: many concurrent callers, few inner export calls.

prowtrace acks a Pub/Sub message only once the spans built from it were exported, so every
message handler calls ``export`` and waits. Under load (Cloud Run push at 80 concurrent requests,
a streaming-pull worker's thread pool) one RPC per message wastes round trips.
``GroupCommitExporter`` wraps any ``SpanExporter`` and puts the spans of every caller waiting at
the same moment into one inner ``export`` call, then hands that call's result to each of them: a
caller returns SUCCESS only if the inner call that carried its spans succeeded.

Design: a leader/follower group commit with a bounded linger (as in a database's WAL commit).

* At most one inner export runs at a time; whoever runs it is the *leader*, a role taken by a
  calling thread, so the wrapper starts no thread of its own. A caller that finds no export in
  flight and nothing queued leads at once with its own spans: at concurrency 1 no caller ever
  waits for ``max_wait`` (its batch's deadline is "now").
* Callers arriving while an export is in flight queue up into the next batch (FIFO batches of at
  most ``max_batch_spans`` spans; one caller's spans are never split, an oversized caller gets a
  batch of its own). When the in-flight export ends, its leader wakes one waiter of the next batch,
  which becomes the next leader, so the old leader's caller returns without further delay.
* ``max_wait`` is how long the first caller of a queued batch may wait for company: the next leader
  sends the batch at ``first arrival + max_wait`` or as soon as it is full, whichever comes first,
  and at once if that moment has already passed (the usual case when an export takes longer than
  ``max_wait``). ``max_wait=0`` gives pure pipelining: the batch size then tracks the arrival rate
  times the export latency, which already keeps exports few at high concurrency; a small positive
  ``max_wait`` trades at most that much latency for fewer, larger exports when the inner exporter
  is fast (on loopback OTLP/gRPC, 80 callers each working 20 ms between exports made 239
  exports at ``max_wait=0`` and 96 at 5 ms, for 2.9 vs 6.6 ms median latency). A linger ends
  early on ``force_flush``/``shutdown`` and when callers are blocked by backpressure (the batch
  cannot grow then).
* Backpressure: when admitting a caller would put more than ``max_queued_spans`` spans in the queue
  (spans waiting for an export, not those in flight), the caller blocks until a batch leaves the
  queue. A caller is always admitted to an empty queue, so an oversized caller cannot deadlock.

Why one inner export at a time: the OpenTelemetry trace SDK specification says ``Export()`` will
never be called concurrently for the same exporter instance, and exporters are written to that
contract. In opentelemetry-exporter-otlp-proto-grpc 1.45 ``_export`` takes no lock and, on an
UNAVAILABLE error, closes and replaces ``self._channel``/``self._client``, which would pull the
channel from under a concurrent call; the HTTP exporter sends through one shared transport. Serial
exports are therefore the safe choice, and group commit recovers the throughput that concurrency
would have given: one export of N callers' spans costs about one round trip.

``export_async`` is the asyncio entry: a coroutine joins a batch and awaits a future that the
leader completes through ``loop.call_soon_threadsafe``, so waiting holds no thread. Only a
coroutine that must lead runs the (blocking) inner export in the loop's default executor: one
thread per in-flight export, not per request (a coroutine held by backpressure waits in an
executor thread, as that wait blocks). A thread leader whose next batch holds only
coroutines keeps leading for them (its own result is already published, but its caller returns
after that export), so mixing sync and async callers stays correct.

The wrapper never raises from ``export``: an exception from the inner exporter is logged and turns
into FAILURE for every caller of that batch; the next batch is unaffected. An inner export that
never returns blocks its callers; the OTLP exporters bound each call by their ``timeout``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_log = structlog.get_logger(__name__)


@dataclass(eq=False)
class _Batch:
    """Spans of the callers that will share one inner export, and that export's outcome."""

    seq: int
    deadline: float
    done: threading.Condition
    spans: list[ReadableSpan] = field(default_factory=list)
    callers: int = 0
    closed: bool = False
    result: SpanExportResult | None = None
    sync_waiters: int = 0
    async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[SpanExportResult]]] = field(
        default_factory=list
    )


def _resolve(future: asyncio.Future[SpanExportResult], result: SpanExportResult) -> None:
    # A cancelled coroutine has stopped waiting; its spans were exported all the same.
    if not future.done():
        future.set_result(result)


class GroupCommitExporter(SpanExporter):
    """A ``SpanExporter`` that merges concurrent ``export`` calls into few inner exports.

    Metrics, plain attributes for benchmarks and logs (written under the lock, read freely):
    ``inner_exports`` (inner export calls made), ``failed_exports`` (of those, how many returned
    FAILURE or raised), ``callers_served`` (``export`` calls carried by an inner export),
    ``spans_exported`` (spans carried by successful inner exports), ``largest_batch`` (most spans
    in one inner export), ``queued_spans`` (spans waiting for an export now) and
    ``blocked_callers`` (callers held back by backpressure now).
    """

    def __init__(
        self,
        inner: SpanExporter,
        *,
        max_wait: float = 0.005,
        max_batch_spans: int = 2048,
        max_queued_spans: int = 65536,
    ) -> None:
        """Wrap ``inner``; ``max_wait`` is in seconds, the two limits count spans."""
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0 seconds, got {max_wait}")
        if max_batch_spans < 1:
            raise ValueError(f"max_batch_spans must be >= 1, got {max_batch_spans}")
        if max_queued_spans < 1:
            raise ValueError(f"max_queued_spans must be >= 1, got {max_queued_spans}")
        self._inner = inner
        self._max_wait = max_wait
        self._max_batch_spans = max_batch_spans
        self._max_queued_spans = max_queued_spans

        self._lock = threading.Lock()
        self._linger = threading.Condition(self._lock)  # only the leader waits on it
        self._space = threading.Condition(self._lock)  # callers held by backpressure
        self._drained = threading.Condition(self._lock)  # force_flush / shutdown
        self._pending: deque[_Batch] = deque()
        self._leading = False
        self._shutdown = False
        self._flush_requests = 0
        self._last_seq = 0
        self._completed_seq = 0
        self._async_leaders: set[asyncio.Future[None]] = set()

        self.inner_exports = 0
        self.failed_exports = 0
        self.callers_served = 0
        self.spans_exported = 0
        self.largest_batch = 0
        self.queued_spans = 0
        self.blocked_callers = 0

    # --- entry points -------------------------------------------------------------------------

    @property
    def inner(self) -> SpanExporter:
        """The wrapped exporter (shutting it down aborts an export stuck in its retries)."""
        return self._inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Block until the inner export carrying ``spans`` finished; return its result."""
        if not spans:
            return SpanExportResult.FAILURE if self._shutdown else SpanExportResult.SUCCESS
        with self._lock:
            if not self._admit(len(spans), block=True):
                return SpanExportResult.FAILURE
            batch = self._join(spans)
            lead = self._take_lead_if_due(batch) or self._await_turn(batch)
        if lead:
            self._lead()  # exports the head batch first, and that is this caller's batch
        return self._outcome(batch)

    async def export_async(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Await the inner export carrying ``spans`` without holding a thread while waiting."""
        if not spans:
            return SpanExportResult.FAILURE if self._shutdown else SpanExportResult.SUCCESS
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SpanExportResult] = loop.create_future()
        with self._lock:
            if self._shutdown:
                return SpanExportResult.FAILURE
            admitted = self._admit(len(spans), block=False)
            lead = False
            if admitted:
                batch = self._join(spans)
                batch.async_waiters.append((loop, future))
                lead = self._take_lead_if_due(batch)
        if not admitted:
            # Backpressure: waiting for queue space needs a blocking wait; do it off the loop.
            return await loop.run_in_executor(None, self.export, spans)
        if lead:
            self._start_async_leader(loop)
        return await future

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Send every queued batch now, wait for them, then flush the inner exporter."""
        deadline = time.monotonic() + timeout_millis / 1000
        if not self._wait_drained(deadline):
            return False
        remaining_millis = max(0, int((deadline - time.monotonic()) * 1000))
        # SpanExporter's default force_flush returns None (nothing buffered): not a failure.
        return self._inner.force_flush(remaining_millis) is not False

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Export what is queued, refuse new spans, then shut the inner exporter down."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            self._space.notify_all()  # callers held by backpressure now fail
        if not self._wait_drained(time.monotonic() + timeout_millis / 1000):
            _log.warning("group_commit_shutdown_timed_out", queued_spans=self.queued_spans)
        self._inner.shutdown()

    # --- queue (every method below runs with self._lock held unless it says otherwise) --------

    def _admit(self, count: int, *, block: bool) -> bool:
        """Make room for ``count`` spans; False if shut down (or, not blocking, if full)."""
        while not self._shutdown and self._is_full_for(count):
            if not block:
                return False
            self.blocked_callers += 1
            self._linger.notify()  # the open batch cannot grow now: stop waiting for company
            self._space.wait()
            self.blocked_callers -= 1
        return not self._shutdown

    def _is_full_for(self, count: int) -> bool:
        return self.queued_spans > 0 and self.queued_spans + count > self._max_queued_spans

    def _join(self, spans: Sequence[ReadableSpan]) -> _Batch:
        """Add ``spans`` to the open batch, or to a new one if they do not fit."""
        now = time.monotonic()
        tail = self._pending[-1] if self._pending else None
        if tail is None or tail.closed or len(tail.spans) + len(spans) > self._max_batch_spans:
            if tail is not None:
                self._close(tail)
            # Nothing in flight and nothing queued: this caller leads now, nobody to wait for.
            idle = not self._leading and not self._pending
            self._last_seq += 1
            tail = _Batch(
                seq=self._last_seq,
                deadline=now if idle else now + self._max_wait,
                done=threading.Condition(self._lock),
            )
            self._pending.append(tail)
        tail.spans.extend(spans)
        tail.callers += 1
        self.queued_spans += len(spans)
        if len(tail.spans) >= self._max_batch_spans:
            self._close(tail)
        return tail

    def _close(self, batch: _Batch) -> None:
        if not batch.closed:
            batch.closed = True
            self._linger.notify()

    def _take_lead_if_due(self, batch: _Batch) -> bool:
        """Become the leader if nobody leads and ``batch`` is next; True if so."""
        if self._leading or not self._pending or self._pending[0] is not batch:
            return False
        self._leading = True
        return True

    def _await_turn(self, batch: _Batch) -> bool:
        """Wait until ``batch`` was exported (False) or this thread must lead it (True)."""
        batch.sync_waiters += 1
        try:
            while batch.result is None:
                if self._take_lead_if_due(batch):
                    return True
                batch.done.wait()
            return False
        finally:
            batch.sync_waiters -= 1

    def _outcome(self, batch: _Batch) -> SpanExportResult:
        with self._lock:
            if batch.result is None:  # a bug, not a runtime condition: fail loudly
                raise AssertionError("caller released before its batch was exported")
            return batch.result

    def _take_head(self) -> _Batch:
        """Wait for company until the head batch's deadline, then take it off the queue."""
        batch = self._pending[0]
        while not (batch.closed or self._flush_requests or self._shutdown or self.blocked_callers):
            remaining = batch.deadline - time.monotonic()
            if remaining <= 0:
                break
            self._linger.wait(remaining)
        self._pending.popleft()
        batch.closed = True
        self.queued_spans -= len(batch.spans)
        self._space.notify_all()
        return batch

    def _publish(self, batch: _Batch, result: SpanExportResult) -> None:
        batch.result = result
        self._completed_seq = batch.seq
        self.inner_exports += 1
        self.callers_served += batch.callers
        self.largest_batch = max(self.largest_batch, len(batch.spans))
        if result is SpanExportResult.SUCCESS:
            self.spans_exported += len(batch.spans)
        else:
            self.failed_exports += 1
        batch.done.notify_all()
        self._drained.notify_all()
        for loop, future in batch.async_waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future, result)
            except RuntimeError:  # that loop is closed: nobody is left to tell
                continue

    def _hand_over(self, *, may_continue: bool) -> bool:
        """Give up the leader role; True if this thread must go on leading."""
        self._leading = False
        if not self._pending:
            return False
        head = self._pending[0]
        if head.sync_waiters:
            head.done.notify()  # that waiter wakes in _await_turn and takes over
            return False
        if not may_continue:
            # This thread is unwinding (KeyboardInterrupt/SystemExit in an export) and only
            # coroutines wait: have one of their loops start a leader in its executor.
            for loop, _ in head.async_waiters:
                try:
                    loop.call_soon_threadsafe(self._start_async_leader, loop)
                except RuntimeError:  # that loop is closed; try the next waiter's
                    continue
                self._leading = True
                break
            return False
        # Only coroutines wait for the head batch and none of them holds a thread: keep going.
        self._leading = True
        return True

    # --- leading (called without the lock, by a thread that set self._leading) ----------------

    def _lead(self) -> None:
        """Export the head batch, then every following batch that has no thread to lead it."""
        while True:
            with self._lock:
                batch = self._take_head()
            result = SpanExportResult.FAILURE
            try:
                result = self._inner.export(batch.spans)
            except Exception:  # noqa: BLE001 - any inner error is a FAILURE for this batch
                _log.exception(
                    "group_commit_inner_export_raised",
                    spans=len(batch.spans),
                    callers=batch.callers,
                )
            except BaseException:
                # KeyboardInterrupt/SystemExit: still release this batch's callers and the role.
                with self._lock:
                    self._publish(batch, SpanExportResult.FAILURE)
                    self._hand_over(may_continue=False)
                raise
            with self._lock:
                self._publish(batch, result)
                go_on = self._hand_over(may_continue=True)
            if not go_on:
                return

    def _start_async_leader(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the leader in the loop's executor so the event loop never blocks on an export."""
        try:
            job = loop.run_in_executor(None, self._lead)
        except RuntimeError:  # the loop's executor is shut down: lead here rather than strand
            self._lead()
            return
        self._async_leaders.add(job)  # keep a reference until it finishes
        job.add_done_callback(self._async_leaders.discard)

    def _wait_drained(self, deadline: float) -> bool:
        """Hurry every batch queued so far and wait (until ``deadline``) for it to be exported."""
        with self._lock:
            target = self._last_seq
            self._flush_requests += 1
            self._linger.notify()
            try:
                while self._completed_seq < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._drained.wait(remaining)
            finally:
                self._flush_requests -= 1
        return True
