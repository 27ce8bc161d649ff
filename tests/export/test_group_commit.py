"""GroupCommitExporter: concurrent export() calls share few serial inner exports."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processor.export.group_commit import ExportRejected, GroupCommitExporter

SUCCESS = SpanExportResult.SUCCESS
FAILURE = SpanExportResult.FAILURE
PATIENCE = 5.0  # seconds a test waits for something that should happen at once


class ScriptedExporter(SpanExporter):
    """The wrapped exporter's stand-in: records calls, can hold each one until released."""

    def __init__(
        self,
        *,
        gated: bool = False,
        outcomes: Sequence[SpanExportResult | BaseException] = (),
        delay: float = 0.0,
    ) -> None:
        """Script each call's outcome by index (SUCCESS past the end); ``gated`` holds calls."""
        self.batches: list[list[str]] = []
        self.started_at: list[float] = []
        self.events: list[str] = []
        self.active = 0
        self.max_active = 0
        self.max_threads = 0
        self._outcomes = list(outcomes)
        self._delay = delay
        self._gated = gated
        self._released = 0
        self._cond = threading.Condition()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Record the call, wait for its release if gated, then play its scripted outcome."""
        with self._cond:
            index = len(self.batches)
            self.batches.append([span.name for span in spans])
            self.started_at.append(time.monotonic())
            self.events.append("export")
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.max_threads = max(self.max_threads, threading.active_count())
            self._cond.notify_all()
            while self._gated and self._released <= index:
                if not self._cond.wait(timeout=PATIENCE * 2):
                    break  # a broken test must not hang the run
        time.sleep(self._delay)
        with self._cond:
            self.active -= 1
        outcome = self._outcomes[index] if index < len(self._outcomes) else SUCCESS
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def shutdown(self) -> None:
        """Record that the wrapper shut its inner exporter down."""
        with self._cond:
            self.events.append("shutdown")

    def release(self, count: int = 1) -> None:
        """Let the next ``count`` gated exports (in order) return."""
        with self._cond:
            self._released += count
            self._cond.notify_all()

    def open_gate(self) -> None:
        """Let every export, present and future, return."""
        with self._cond:
            self._gated = False
            self._cond.notify_all()

    def wait_for_exports(self, count: int) -> None:
        """Wait until ``count`` inner exports have started."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.batches) >= count, timeout=PATIENCE):
                raise AssertionError(f"expected {count} inner exports, saw {len(self.batches)}")


class MakeInner(Protocol):
    """The ``make_inner`` fixture's signature."""

    def __call__(
        self,
        *,
        gated: bool = False,
        outcomes: Sequence[SpanExportResult | BaseException] = (),
        delay: float = 0.0,
    ) -> ScriptedExporter:
        """Build a ScriptedExporter whose gate is opened at teardown."""
        ...


def spans_of(caller: str, count: int = 1) -> list[ReadableSpan]:
    """Spans named ``caller/0``, ``caller/1``, ... so batches show whose spans they carry."""
    return [ReadableSpan(name=f"{caller}/{i}") for i in range(count)]


def callers_in(batch: list[str]) -> set[str]:
    """Name the callers whose spans an inner export carried."""
    return {name.split("/")[0] for name in batch}


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds; fail after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for the callers; joined at teardown."""
    with ThreadPoolExecutor(max_workers=100) as executor:
        yield executor


@pytest.fixture
def make_inner(pool: ThreadPoolExecutor) -> Iterator[MakeInner]:
    """Build inner exporters; open their gates before ``pool`` joins its threads."""
    del pool  # requested only so that this fixture is torn down first
    made: list[ScriptedExporter] = []

    def make(
        *,
        gated: bool = False,
        outcomes: Sequence[SpanExportResult | BaseException] = (),
        delay: float = 0.0,
    ) -> ScriptedExporter:
        inner = ScriptedExporter(gated=gated, outcomes=outcomes, delay=delay)
        made.append(inner)
        return inner

    yield make
    for inner in made:
        inner.open_gate()


def submit(
    pool: ThreadPoolExecutor, exporter: GroupCommitExporter, caller: str, count: int = 1
) -> Future[SpanExportResult]:
    """Start a caller on its own thread."""
    return pool.submit(exporter.export, spans_of(caller, count))


def queue_up(
    pool: ThreadPoolExecutor, exporter: GroupCommitExporter, caller: str, count: int = 1
) -> Future[SpanExportResult]:
    """Submit a caller and wait until its spans sit in the queue (so arrival order is fixed)."""
    before = exporter.queued_spans
    future = submit(pool, exporter, caller, count)
    wait_until(lambda: exporter.queued_spans == before + count)
    return future


def test_eighty_concurrent_callers_share_few_inner_exports(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """80 callers released at once get SUCCESS each from far fewer, never overlapping exports."""
    # Each export lasts 200 ms so the threads the barrier wakes (slowly, on a loaded 2-core CI
    # machine) still find one in flight and queue behind it: the bound tests batching, not luck.
    inner = make_inner(delay=0.2)
    exporter = GroupCommitExporter(inner, max_wait=0.005)
    start = threading.Barrier(80)

    def call(caller: str) -> SpanExportResult:
        start.wait()
        return exporter.export(spans_of(caller))

    futures = [pool.submit(call, f"c{i}") for i in range(80)]
    results = [future.result(timeout=PATIENCE) for future in futures]

    assert results == [SUCCESS] * 80
    assert exporter.inner_exports == len(inner.batches) <= 10
    assert sorted(name for batch in inner.batches for name in batch) == sorted(
        f"c{i}/0" for i in range(80)
    )
    assert inner.max_active == 1
    assert exporter.callers_served == 80
    assert exporter.spans_exported == 80


def test_callers_arriving_during_an_export_go_out_together_in_the_next(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """All 79 callers that queue behind an in-flight export share the single next export."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0)
    first = submit(pool, exporter, "first")
    inner.wait_for_exports(1)
    others = [queue_up(pool, exporter, f"c{i}") for i in range(79)]

    inner.release(2)

    assert first.result(timeout=PATIENCE) is SUCCESS
    assert [future.result(timeout=PATIENCE) for future in others] == [SUCCESS] * 79
    assert len(inner.batches) == 2
    assert callers_in(inner.batches[1]) == {f"c{i}" for i in range(79)}
    assert exporter.largest_batch == 79


def test_a_failed_inner_export_fails_exactly_the_callers_it_carried(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """FAILURE reaches every caller of the failed batch and no caller of the batches around it."""
    inner = make_inner(gated=True, outcomes=[SUCCESS, FAILURE, SUCCESS])
    exporter = GroupCommitExporter(inner, max_wait=0)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b, c = queue_up(pool, exporter, "b"), queue_up(pool, exporter, "c")
    inner.release()
    inner.wait_for_exports(2)
    d, e = queue_up(pool, exporter, "d"), queue_up(pool, exporter, "e")
    inner.release(2)

    results = {
        name: f.result(timeout=PATIENCE) for name, f in zip("abcde", [a, b, c, d, e], strict=True)
    }
    assert results == {"a": SUCCESS, "b": FAILURE, "c": FAILURE, "d": SUCCESS, "e": SUCCESS}
    assert [callers_in(batch) for batch in inner.batches] == [{"a"}, {"b", "c"}, {"d", "e"}]
    assert exporter.failed_exports == 1
    assert exporter.spans_exported == 3


def test_a_lone_caller_whose_spans_raise_is_rejected_and_logged() -> None:
    """A raising inner export for one caller gives ExportRejected (poison), and the next works."""
    inner = ScriptedExporter(outcomes=[ValueError("Value out of range: -1"), SUCCESS])
    exporter = GroupCommitExporter(inner, max_wait=0)

    with structlog.testing.capture_logs() as logs, pytest.raises(ExportRejected, match="range"):
        exporter.export(spans_of("a"))
    second = exporter.export(spans_of("b"))

    assert second is SUCCESS
    assert [(log["event"], log["log_level"]) for log in logs] == [
        ("group_commit_spans_rejected", "error")
    ]
    assert exporter.rejected_callers == 1


def test_a_raising_batch_is_retried_per_caller_so_only_the_bad_one_fails(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """One caller whose spans the encoder refuses: the batch is resent caller by caller."""
    bad = ValueError("Value out of range: 18446744073709551616")
    inner = make_inner(gated=True, outcomes=[SUCCESS, bad, SUCCESS, bad, SUCCESS])
    exporter = GroupCommitExporter(inner, max_wait=0)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b, c, d = (queue_up(pool, exporter, name) for name in "bcd")
    inner.open_gate()

    assert (a.result(timeout=PATIENCE), b.result(timeout=PATIENCE)) == (SUCCESS, SUCCESS)
    assert isinstance(c.exception(timeout=PATIENCE), ExportRejected)
    assert d.result(timeout=PATIENCE) is SUCCESS
    assert [callers_in(batch) for batch in inner.batches] == [
        {"a"},
        {"b", "c", "d"},
        {"b"},
        {"c"},
        {"d"},
    ]


def test_a_failure_is_the_backends_verdict_and_is_not_retried_per_caller(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """FAILURE (backend down) fails the batch once: no per-caller resend multiplies an outage."""
    inner = make_inner(gated=True, outcomes=[SUCCESS, FAILURE])
    exporter = GroupCommitExporter(inner, max_wait=0)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b, c = queue_up(pool, exporter, "b"), queue_up(pool, exporter, "c")
    inner.open_gate()

    assert [f.result(timeout=PATIENCE) for f in (a, b, c)] == [SUCCESS, FAILURE, FAILURE]
    assert len(inner.batches) == 2


def test_a_caller_larger_than_one_request_is_rejected_without_an_export() -> None:
    """Spans whose estimated request exceeds max_request_bytes can never be sent: poison."""
    inner = ScriptedExporter()
    exporter = GroupCommitExporter(inner, max_request_bytes=1000)
    big = [ReadableSpan(name="x" * 600), ReadableSpan(name="y" * 600)]

    with pytest.raises(ExportRejected, match="request limit"):
        exporter.export(big)
    assert inner.batches == []


def test_batches_are_split_below_the_request_byte_limit(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """Callers that fit one request each but not together go out in separate exports."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0, max_request_bytes=1000)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    queued = [
        pool.submit(exporter.export, [ReadableSpan(name=f"{name}/" + "z" * 500)]) for name in "bcd"
    ]
    wait_until(lambda: exporter.queued_spans == 3)
    inner.open_gate()

    assert [f.result(timeout=PATIENCE) for f in (a, *queued)] == [SUCCESS] * 4
    assert [len(batch) for batch in inner.batches] == [1, 1, 1, 1]


def test_a_caller_is_not_released_before_its_batch_was_exported(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """Callers stay blocked while the export carrying their spans is still running."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b = queue_up(pool, exporter, "b")
    time.sleep(0.05)  # room for a wrongly early return
    assert not a.done()
    assert not b.done()

    inner.release()
    assert a.result(timeout=PATIENCE) is SUCCESS
    inner.wait_for_exports(2)
    time.sleep(0.05)
    assert not b.done()

    inner.release()
    assert b.result(timeout=PATIENCE) is SUCCESS


def test_a_lone_caller_is_not_delayed_by_max_wait(pool: ThreadPoolExecutor) -> None:
    """With nothing in flight a caller exports at once: ten calls finish far inside one max_wait."""
    inner = ScriptedExporter()
    exporter = GroupCommitExporter(inner, max_wait=30)
    deadline = time.monotonic() + PATIENCE
    try:
        for i in range(10):
            call = submit(pool, exporter, f"c{i}")
            assert call.result(timeout=max(0, deadline - time.monotonic())) is SUCCESS
    finally:
        exporter.shutdown()  # cuts a (wrong) linger short so a failure does not hang teardown
    assert len(inner.batches) == 10


def test_a_lone_caller_exports_on_its_own_thread() -> None:
    """Nothing in flight: the caller's thread makes the inner export, no exporter thread starts."""
    threads: list[str] = []

    class Recording(ScriptedExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            threads.append(threading.current_thread().name)
            return super().export(spans)

    exporter = GroupCommitExporter(Recording())
    before = {thread.name for thread in threading.enumerate()}
    try:
        assert exporter.export(spans_of("alone")) is SUCCESS
        started = {thread.name for thread in threading.enumerate()} - before
    finally:
        exporter.shutdown()
    assert (threads, started) == ([threading.current_thread().name], set())


def test_a_batch_queued_behind_an_export_waits_max_wait_for_company(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """The next batch leaves max_wait after its first caller came, taking in later arrivals."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0.5)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b_came = time.monotonic()
    b = queue_up(pool, exporter, "b")
    inner.open_gate()
    assert a.result(timeout=PATIENCE) is SUCCESS  # a's export is over; b's batch still lingers
    c = submit(pool, exporter, "c")

    assert (b.result(timeout=PATIENCE), c.result(timeout=PATIENCE)) == (SUCCESS, SUCCESS)
    assert [callers_in(batch) for batch in inner.batches] == [{"a"}, {"b", "c"}]
    assert inner.started_at[1] - b_came >= 0.5


def test_batches_never_exceed_max_batch_spans_nor_split_a_caller(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """A batch closes when the next caller's spans would not fit; each caller stays whole."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0, max_batch_spans=10)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    others = [queue_up(pool, exporter, f"c{i}", 4) for i in range(5)]
    inner.open_gate()

    assert [f.result(timeout=PATIENCE) for f in [a, *others]] == [SUCCESS] * 6
    assert [len(batch) for batch in inner.batches] == [1, 8, 8, 4]
    assert [callers_in(batch) for batch in inner.batches[1:]] == [
        {"c0", "c1"},
        {"c2", "c3"},
        {"c4"},
    ]


def test_an_oversized_caller_goes_alone_and_unsplit(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """A caller with more than max_batch_spans spans gets one inner export of its own."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0, max_batch_spans=3)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b = queue_up(pool, exporter, "b", 2)
    big = queue_up(pool, exporter, "big", 5)
    d = queue_up(pool, exporter, "d", 1)
    inner.open_gate()

    assert [f.result(timeout=PATIENCE) for f in [a, b, big, d]] == [SUCCESS] * 4
    assert [sorted(batch) for batch in inner.batches] == [
        ["a/0"],
        ["b/0", "b/1"],
        [f"big/{i}" for i in range(5)],
        ["d/0"],
    ]
    assert exporter.largest_batch == 5


def test_backpressure_holds_callers_while_the_queue_is_full(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """A caller whose spans would overfill the queue waits outside it until a batch leaves."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0, max_queued_spans=4)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b = queue_up(pool, exporter, "b", 3)
    c = submit(pool, exporter, "c", 2)
    wait_until(lambda: exporter.blocked_callers == 1)
    assert exporter.queued_spans == 3

    inner.release()  # a's export ends, b's batch leaves the queue, c gets in
    inner.wait_for_exports(2)
    wait_until(lambda: exporter.blocked_callers == 0)
    assert exporter.queued_spans == 2
    inner.open_gate()

    assert [f.result(timeout=PATIENCE) for f in [a, b, c]] == [SUCCESS] * 3
    assert [callers_in(batch) for batch in inner.batches] == [{"a"}, {"b"}, {"c"}]


def test_shutdown_exports_what_is_queued_then_shuts_the_inner_exporter(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """Shutdown waits for queued callers' export before shutting the inner exporter down."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=30)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b = queue_up(pool, exporter, "b")
    shutdown = pool.submit(exporter.shutdown)
    time.sleep(0.05)
    assert not shutdown.done()

    inner.open_gate()
    shutdown.result(timeout=PATIENCE)

    assert (a.result(timeout=PATIENCE), b.result(timeout=PATIENCE)) == (SUCCESS, SUCCESS)
    assert inner.events == ["export", "export", "shutdown"]


def test_export_after_shutdown_fails_without_reaching_the_inner_exporter() -> None:
    """Once shut down, export returns FAILURE and the inner exporter sees nothing."""
    inner = ScriptedExporter()
    exporter = GroupCommitExporter(inner)
    exporter.shutdown()

    assert exporter.export(spans_of("late")) is FAILURE
    assert inner.batches == []
    assert inner.events == ["shutdown"]


def test_a_caller_held_by_backpressure_fails_when_shutdown_begins(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """Shutdown turns away callers still waiting for queue space; queued ones are exported."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0, max_queued_spans=1)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b = queue_up(pool, exporter, "b")
    c = submit(pool, exporter, "c")
    wait_until(lambda: exporter.blocked_callers == 1)

    shutdown = pool.submit(exporter.shutdown)
    assert c.result(timeout=PATIENCE) is FAILURE
    inner.open_gate()
    shutdown.result(timeout=PATIENCE)

    assert (a.result(timeout=PATIENCE), b.result(timeout=PATIENCE)) == (SUCCESS, SUCCESS)
    assert [callers_in(batch) for batch in inner.batches] == [{"a"}, {"b"}]


def test_no_thread_outlives_shutdown() -> None:
    """After the callers are done and shutdown returned, the exporter thread is gone too."""
    before = set(threading.enumerate())
    inner = ScriptedExporter(delay=0.002)
    exporter = GroupCommitExporter(inner, max_wait=0.001)

    with ThreadPoolExecutor(max_workers=16) as callers:
        threaded = list(callers.map(lambda i: exporter.export(spans_of(f"t{i}")), range(80)))
    exporter.shutdown()

    assert threaded == [SUCCESS] * 80
    assert set(threading.enumerate()) - before == set()


def test_force_flush_cuts_the_wait_for_company_short(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """force_flush sends a lingering batch at once and returns True once it was exported."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=30)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b = queue_up(pool, exporter, "b")
    flushed = pool.submit(exporter.force_flush, 10_000)
    inner.release()

    inner.wait_for_exports(2)  # well before b's 30 s linger would end
    assert not flushed.done()
    inner.release()

    assert flushed.result(timeout=PATIENCE) is True
    assert (a.result(timeout=PATIENCE), b.result(timeout=PATIENCE)) == (SUCCESS, SUCCESS)


def test_force_flush_returns_false_when_the_export_outlasts_its_timeout(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """force_flush gives up with False after timeout_millis if an export is still running."""
    inner = make_inner(gated=True)
    exporter = GroupCommitExporter(inner, max_wait=0)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)

    assert exporter.force_flush(timeout_millis=50) is False
    inner.open_gate()
    assert a.result(timeout=PATIENCE) is SUCCESS


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_mixed_load_keeps_every_invariant(seed: int) -> None:
    """Callers of random sizes: spans exported once, whole, each caller with its batch's result."""
    rng = random.Random(seed)  # noqa: S311 - seeded test data, not a secret
    max_batch = rng.randint(4, 12)
    # Even-numbered inner exports succeed, odd ones fail: each caller must get its batch's result.
    inner = ScriptedExporter(delay=0.001, outcomes=[SUCCESS, FAILURE] * 200)
    exporter = GroupCommitExporter(
        inner, max_wait=0.002, max_batch_spans=max_batch, max_queued_spans=rng.randint(8, 40)
    )
    sizes = {f"t{i}": rng.randint(1, 2 * max_batch) for i in range(60)}
    results: dict[str, SpanExportResult] = {}

    def thread_caller(name: str) -> None:
        results[name] = exporter.export(spans_of(name, sizes[name]))

    with ThreadPoolExecutor(max_workers=41) as callers:
        list(callers.map(thread_caller, sizes))

    batch_of = {}
    for index, batch in enumerate(inner.batches):
        members = callers_in(batch)
        assert len(batch) <= max_batch or len(members) == 1
        for name in members:
            assert name not in batch_of, f"{name} was split or sent twice"
            batch_of[name] = index
            assert sorted(n for n in batch if n.startswith(f"{name}/")) == sorted(
                f"{name}/{i}" for i in range(sizes[name])
            )
    assert set(batch_of) == set(sizes)
    assert results == {name: SUCCESS if batch_of[name] % 2 == 0 else FAILURE for name in sizes}
    assert inner.max_active == 1
    assert exporter.queued_spans == 0


def test_rejects_nonsense_limits() -> None:
    """Negative waits and non-positive span limits are refused at construction."""
    inner = ScriptedExporter()
    with pytest.raises(ValueError, match="max_wait"):
        GroupCommitExporter(inner, max_wait=-1)
    with pytest.raises(ValueError, match="max_batch_spans"):
        GroupCommitExporter(inner, max_batch_spans=0)
    with pytest.raises(ValueError, match="max_queued_spans"):
        GroupCommitExporter(inner, max_queued_spans=0)
    with pytest.raises(ValueError, match="max_request_bytes"):
        GroupCommitExporter(inner, max_request_bytes=0)


def test_an_export_that_raises_systemexit_does_not_stop_the_exporter_thread(
    pool: ThreadPoolExecutor, make_inner: MakeInner
) -> None:
    """SystemExit inside one export fails that caller; callers queued behind it still export."""
    inner = make_inner(gated=True, outcomes=[SystemExit(3), SUCCESS])
    exporter = GroupCommitExporter(inner, max_wait=0)
    a = submit(pool, exporter, "a")
    inner.wait_for_exports(1)
    b, c = queue_up(pool, exporter, "b"), queue_up(pool, exporter, "c")
    inner.open_gate()

    assert a.result(timeout=PATIENCE) is FAILURE
    assert (b.result(timeout=PATIENCE), c.result(timeout=PATIENCE)) == (SUCCESS, SUCCESS)
    assert [callers_in(batch) for batch in inner.batches] == [{"a"}, {"b", "c"}]
