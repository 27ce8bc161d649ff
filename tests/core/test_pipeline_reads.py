"""How the pipeline reads artifacts: a message's files at once, on a bounded pool, counted."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from core_fixtures import GCS_PATH, PUBLISH, prowjob_doc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.memory_store import MemoryArtifactStore
from test_pipeline import delivery, full_store

from bench.latency import LatencyModel, ModelledStore
from processor.artifacts import ArtifactStore, ListedFile
from processor.core import facts
from processor.export.otel import SpanConverter
from processor.junit_gather import JunitLimits
from processor.pipeline import Outcome, Pipeline, PipelineSettings

T = TypeVar("T")

GRACE = timedelta(minutes=5)
ROUND_TRIP = 0.05
FIXED = LatencyModel(p50=ROUND_TRIP, p99=ROUND_TRIP)


class InFlight:
    """Wraps a store and records the most reads ever in flight at once, all and on the pool."""

    def __init__(self, inner: ArtifactStore) -> None:
        """Count reads going through to ``inner``."""
        self._inner = inner
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.pooled_now = 0
        self.most_pooled = 0
        self.junit_now = 0
        self.most_junit = 0
        """JUnit file reads (below ``artifacts/``) in flight at once."""

    def read(self, folder: str, name: str) -> bytes | None:
        """Read through, counting the reads that overlap this one."""
        return self.read_or_list(
            lambda: self._inner.read(folder, name), junit=name.startswith("artifacts/")
        )

    def read_or_list(self, request: Callable[[], T], *, junit: bool = False) -> T:
        """Make one storage request, counting the requests that overlap it."""
        pooled = threading.current_thread().name.startswith("prowtrace-read")
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.pooled_now += pooled
            self.most_pooled = max(self.most_pooled, self.pooled_now)
            self.junit_now += junit
            self.most_junit = max(self.most_junit, self.junit_now)
        try:
            return request()
        finally:
            with self._lock:
                self.now -= 1
                self.pooled_now -= pooled
                self.junit_now -= junit

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """List through (JUnit files), counted as in flight like a read."""
        return self.read_or_list(lambda: self._inner.list_files(folder, under, name_glob, limit))

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Not used by the pipeline."""
        return self._inner.find(prefix, name)


def wired(
    store: ArtifactStore, *, concurrency: int = 64, junit: JunitLimits | None = None
) -> Pipeline:
    """Wire a pipeline over ``store`` inside the grace period of the fixture's message."""
    return Pipeline(
        store,
        InMemorySpanExporter(),
        SpanConverter(Resource.create({"service.name": "prowtrace-test"})),
        PipelineSettings(grace=GRACE, read_concurrency=concurrency, junit=junit or JunitLimits()),
        clock=lambda: PUBLISH + timedelta(seconds=1),
    )


def test_a_terminal_message_reads_its_five_files_at_once() -> None:
    """The five files and the JUnit listing are in flight together; the result counts all six."""
    store = InFlight(ModelledStore(full_store(), latency=FIXED))
    result = wired(store).handle(delivery("failure"))
    assert result.outcome is Outcome.EXPORTED
    assert (store.most, result.reads) == (6, 6)


JUNIT = (
    Path(__file__).parents[1]
    / "data"
    / "real-junit"
    / "files"
    / "ginkgo-v1_k8s-e2e-conformance_2017-run.xml"
).read_bytes()


def with_junit(count: int) -> MemoryArtifactStore:
    """Return the failed run's store with ``count`` copies of a real Ginkgo JUnit file."""
    store = full_store()
    for number in range(count):
        store.put(GCS_PATH, f"artifacts/junit_{number:02}.xml", JUNIT)
    return store


def test_junit_files_are_read_at_once_on_the_pool() -> None:
    """Four JUnit files: all four in flight together, each file read once, all ten counted."""
    inner = with_junit(4)
    store = InFlight(ModelledStore(inner, latency=FIXED))
    result = wired(store).handle(delivery("failure"))
    assert (result.outcome, store.most_junit, result.reads) == (Outcome.EXPORTED, 4, 10)
    assert inner.reads == 9


class HoldsProwjob:
    """Answers ``prowjob.json`` only once a JUnit file read has started (or after a timeout)."""

    def __init__(self, inner: ArtifactStore) -> None:
        """Read through to ``inner``."""
        self._inner = inner
        self.junit_started = threading.Event()
        self.prowjob_waited_for_junit = False

    def read(self, folder: str, name: str) -> bytes | None:
        """Hold ``prowjob.json`` back; note when a JUnit read starts."""
        if name.startswith("artifacts/"):
            self.junit_started.set()
        elif name == facts.PROWJOB:
            self.prowjob_waited_for_junit = self.junit_started.wait(timeout=5)
        return self._inner.read(folder, name)

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """List through."""
        return self._inner.list_files(folder, under, name_glob, limit)

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Not used by the pipeline."""
        return self._inner.find(prefix, name)


def test_junit_reads_start_when_the_listing_answers_not_after_the_other_files() -> None:
    """The JUnit files are requested while prowjob.json is still in flight: no extra round trip."""
    store = HoldsProwjob(with_junit(2))
    result = wired(store).handle(delivery("failure"))
    assert result.outcome is Outcome.EXPORTED
    assert store.prowjob_waited_for_junit


def test_junit_files_started_early_are_read_once() -> None:
    """Started from the listing and asked for by the parser, each JUnit file is read once."""
    inner = with_junit(3)
    result = wired(ModelledStore(inner, latency=FIXED)).handle(delivery("failure"))
    assert (result.outcome, result.reads, inner.reads) == (Outcome.EXPORTED, 9, 8)


def test_concurrent_junit_reads_never_pass_the_pools_bound() -> None:
    """Four JUnit files and a pool of two: never more than two pooled reads in flight."""
    store = InFlight(ModelledStore(with_junit(4), latency=FIXED))
    result = wired(store, concurrency=2).handle(delivery("failure"))
    assert (result.outcome, store.most_pooled, result.reads) == (Outcome.EXPORTED, 2, 10)


def test_junit_files_past_the_jobs_byte_bound_are_never_read() -> None:
    """A job bound of two files' bytes: two of four JUnit files read, the rest named too large."""
    inner = with_junit(4)
    limits = JunitLimits(max_job_bytes=2 * len(JUNIT) + 1)
    result = wired(InFlight(inner), junit=limits).handle(delivery("failure"))
    assert (result.outcome, result.reads, inner.reads) == (Outcome.EXPORTED, 8, 7)


def test_a_running_message_reads_only_prowjob_json() -> None:
    """A pending message needs the ProwJob UID only: one read."""
    store = MemoryArtifactStore()
    store.put(GCS_PATH, facts.PROWJOB, full_store().read(GCS_PATH, facts.PROWJOB) or b"")
    result = wired(store).handle(delivery("pending", publish=PUBLISH))
    assert (result.outcome, result.reads, store.reads) == (Outcome.EXPORTED, 1, 1)


def test_reads_in_flight_never_exceed_the_pool_whatever_the_messages_in_flight() -> None:
    """Twenty messages at once with a pool of three: at most three pooled reads in flight."""
    store = InFlight(ModelledStore(full_store(), latency=LatencyModel(0.01, 0.01)))
    pipeline = wired(store, concurrency=3)
    with ThreadPoolExecutor(20) as callbacks:
        results = list(callbacks.map(pipeline.handle, [delivery("failure")] * 20))
    assert {result.outcome for result in results} == {Outcome.EXPORTED}
    assert store.most_pooled == 3
    assert store.most <= 3 + 20


def test_a_missing_prowjob_json_in_grace_is_a_late_retry() -> None:
    """prowjob.json not written yet: RETRY marked late, so a transport may hold the message."""
    result = wired(full_store(prowjob=None)).handle(delivery("failure"))
    assert (result.outcome, result.late) == (Outcome.RETRY, True)


def test_a_missing_podinfo_json_in_grace_is_a_late_retry() -> None:
    """podinfo.json not written yet for a job that had a pod: RETRY marked late."""
    result = wired(full_store(podinfo=None)).handle(delivery("failure"))
    assert (result.outcome, result.late) == (Outcome.RETRY, True)


def test_storage_unavailable_is_a_retry_that_is_not_late() -> None:
    """An outage is no late file: RETRY not marked late (the backoff is right for it)."""
    store = full_store()
    store.unavailable.add(GCS_PATH)
    result = wired(store).handle(delivery("failure"))
    assert (result.outcome, result.late) == (Outcome.RETRY, False)


def test_a_file_that_appears_late_reads_as_missing_until_then() -> None:
    """The latency model's store answers None for a withheld file until its time has come."""
    now = [0.0]
    store = ModelledStore(full_store(), latency=None, clock=lambda: now[0])
    store.withhold(GCS_PATH, facts.PROWJOB, until=3.0)
    assert store.read(GCS_PATH, facts.PROWJOB) is None
    now[0] = 3.0
    assert store.read(GCS_PATH, facts.PROWJOB) is not None
    assert store.reads[GCS_PATH] == 2


def test_the_latency_model_has_the_stated_median_and_tail() -> None:
    """10,000 draws of the GCS model have p50 ~30 ms and p99 ~150 ms."""
    rng = random.Random(1)  # noqa: S311 - a model, not a secret
    draws = sorted(LatencyModel().draw(rng) for _ in range(10_000))
    assert 0.027 < draws[5_000] < 0.033
    assert 0.125 < draws[9_900] < 0.175


def test_a_recheck_reads_only_the_awaited_file_while_it_is_missing() -> None:
    """Re-checking a message waiting for prowjob.json costs one read and stays late."""
    store = full_store(prowjob=None)
    pipeline = wired(store)
    late = pipeline.handle(delivery("failure"))
    before = store.reads
    again = pipeline.recheck(delivery("failure"), late)
    assert (again.outcome, again.late, again.awaiting, again.reads) == (
        Outcome.RETRY,
        True,
        facts.PROWJOB,
        1,
    )
    assert store.reads - before == 1


def test_a_recheck_handles_the_message_in_full_once_the_file_is_there() -> None:
    """Once podinfo.json is written the re-check exports the trace (probe, five reads, listing)."""
    store = full_store(podinfo=None)
    pipeline = wired(store)
    late = pipeline.handle(delivery("failure"))
    assert late.awaiting == facts.PODINFO
    store.put(GCS_PATH, facts.PODINFO, full_store().read(GCS_PATH, facts.PODINFO) or b"")
    result = pipeline.recheck(delivery("failure"), late)
    assert (result.outcome, result.reads) == (Outcome.EXPORTED, 7)


def test_a_recheck_keeps_waiting_while_prowjob_json_is_stale() -> None:
    """prowjob.json still says pending for a finished message: the re-check stays late."""
    store = full_store(prowjob=prowjob_doc(state="pending"))
    pipeline = wired(store)
    late = pipeline.handle(delivery("failure"))
    again = pipeline.recheck(delivery("failure"), late)
    assert (again.late, again.reads) == (True, 1)


def test_a_pipeline_without_read_concurrency_reads_on_the_handling_thread() -> None:
    """read_concurrency 0 (a mirror): every read on the caller's thread, all six counted."""
    store = InFlight(full_store())
    pipeline = wired(store, concurrency=0)
    result = pipeline.handle(delivery("failure"))
    assert (result.outcome, result.reads, store.most_pooled) == (Outcome.EXPORTED, 6, 0)
