"""The pull worker holds a message whose files are late, against Google's Pub/Sub emulator.

What is relied on, from google-cloud-pubsub's source (``subscriber/_protocol/leaser.py``,
``maintain_leases``): the streaming-pull client keeps extending the ack deadline of every message
it delivered and has not seen acked or nacked, until ``FlowControl.max_lease_duration``; so a
held message outlives the subscription's ack deadline without being redelivered. And from
``streaming_pull_manager.py`` (``_shutdown``): stopping the stream nacks only what the library
still had queued, so messages held by prowtrace must be nacked by prowtrace before it stops.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from core_fixtures import (
    GCS_PATH,
    clone_records_doc,
    crier_message,
    encode,
    finished_doc,
    podinfo_doc,
    prowjob_doc,
    started_doc,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.e2e import count_unacked, wait_until
from support.memory_store import MemoryArtifactStore
from support.pubsub_admin import EmulatorForTests

from processor.config import PullSettings
from processor.core import facts
from processor.core.message import Delivery
from processor.export.otel import SpanConverter
from processor.pipeline import Outcome, Pipeline, PipelineSettings, Result
from processor.transports.holding import next_recheck
from processor.transports.pull import PullWorker

pytestmark = pytest.mark.emulator

PROJECT = "prow-holding"
ACK_DEADLINE_SECONDS = 10
"""The emulator's (and Pub/Sub's) minimum: a held message must outlive it without redelivery."""
_names = itertools.count()


class Counting:
    """The pipeline's ``handle`` and ``recheck``, counting every call and its result."""

    def __init__(self, pipeline: Pipeline) -> None:
        """Wrap ``pipeline``."""
        self._pipeline = pipeline
        self._lock = threading.Lock()
        self.calls = 0
        self.results: list[Result] = []

    def __call__(self, delivery: Delivery) -> Result:
        """Handle a delivery and remember the result."""
        return self._count(self._pipeline.handle(delivery))

    def recheck(self, delivery: Delivery, late: Result) -> Result:
        """Re-check a held delivery and remember the result."""
        return self._count(self._pipeline.recheck(delivery, late))

    def _count(self, result: Result) -> Result:
        with self._lock:
            self.calls += 1
            self.results.append(result)
        return result


def full_store(*, podinfo: bool = True) -> MemoryArtifactStore:
    """Return a store holding the finished job's files (all, or all but podinfo.json)."""
    documents = {
        facts.PROWJOB: prowjob_doc(),
        facts.CLONE_RECORDS: clone_records_doc(),
        facts.STARTED: started_doc(),
        facts.FINISHED: finished_doc(),
    }
    if podinfo:
        documents[facts.PODINFO] = podinfo_doc()
    store = MemoryArtifactStore()
    for name, doc in documents.items():
        store.put(GCS_PATH, name, encode(doc))
    return store


def late_store() -> tuple[MemoryArtifactStore, bytes]:
    """Return the finished job's files without prowjob.json, and that file's bytes."""
    complete = full_store()
    prowjob = complete.read(GCS_PATH, facts.PROWJOB)
    assert prowjob is not None
    complete.delete(GCS_PATH, facts.PROWJOB)
    return complete, prowjob


def subscription(emulator: EmulatorForTests) -> tuple[str, str]:
    """Create a fresh topic and subscription with the minimum ack deadline."""
    name = f"hold-{next(_names)}"
    topic = emulator.create_topic(PROJECT, name)
    return topic, emulator.create_subscription(
        PROJECT, name, topic, ack_deadline_seconds=ACK_DEADLINE_SECONDS
    )


@contextlib.contextmanager
def running(
    emulator: EmulatorForTests, store: MemoryArtifactStore, grace: timedelta, path: str
) -> Iterator[tuple[PullWorker, Counting, InMemorySpanExporter]]:
    """Run a worker holding late messages for ``grace`` on ``path``; stop it after."""
    exporter = InMemorySpanExporter()
    pipeline = Pipeline(
        store,
        exporter,
        SpanConverter(Resource.create({"service.name": "prowtrace-test"})),
        PipelineSettings(grace=grace),
    )
    handle = Counting(pipeline)
    worker = PullWorker(
        emulator.streaming_subscriber(),
        PullSettings(subscription=path, threads=4),
        handle,
        hold_for=grace,
        recheck=handle.recheck,
    )
    worker.start()
    try:
        yield worker, handle, exporter
    finally:
        worker.stop()


def test_a_late_file_is_waited_for_past_the_ack_deadline_without_a_nack(
    pubsub_emulator: EmulatorForTests,
) -> None:
    """prowjob.json lands 12 s late: no nack, no redelivery, traced within ~1 s, then acked."""
    store, prowjob = late_store()
    topic, path = subscription(pubsub_emulator)
    with running(pubsub_emulator, store, timedelta(minutes=1), path) as (worker, handle, exporter):
        pubsub_emulator.publish(topic, encode(crier_message("failure")))
        time.sleep(ACK_DEADLINE_SECONDS + 2)
        assert (worker.acked, worker.nacked, exporter.get_finished_spans()) == (0, 0, ())
        store.put(GCS_PATH, facts.PROWJOB, prowjob)
        landed = time.monotonic()
        wait_until(lambda: worker.acked == 1, 10, "the held message acked")
        seen_after = time.monotonic() - landed
        assert exporter.get_finished_spans()
        assert (worker.nacked, handle.calls - worker.rechecks) == (0, 1), "redelivered"
        assert seen_after < 2 * next_recheck(1.0, 0.0)
    assert count_unacked(pubsub_emulator, path) == 0


def test_stopping_mid_wait_nacks_the_held_message_at_once(
    pubsub_emulator: EmulatorForTests,
) -> None:
    """A stop while a message waits for its file nacks it at once and acks nothing."""
    store, _ = late_store()
    topic, path = subscription(pubsub_emulator)
    with running(pubsub_emulator, store, timedelta(minutes=1), path) as (
        worker,
        _handle,
        _exporter,
    ):
        pubsub_emulator.publish(topic, encode(crier_message("failure")))
        wait_until(lambda: worker.rechecks >= 1, 10, "the message held and re-checked")
        started = time.monotonic()
        worker.stop()
        stopped_in = time.monotonic() - started
        assert (worker.acked, worker.nacked) == (0, 1)
        assert stopped_in < 2.0
    # Not asserted: when the emulator redelivers it. Measured here (5 runs), the emulator sent
    # the nacked message again after 0 s once and after 60 s (the streaming pull's own ack
    # deadline) four times, although the library's nack and a unary modify_ack_deadline(0) were
    # both sent before the stream was cancelled: the emulator keeps a cancelled stream's leases
    # (support.e2e.evict_dead_streams). Real Pub/Sub redelivers a nacked message at once. What
    # is asserted is the worker's side: nacked at once, nothing acked, the message still there.
    assert count_unacked(pubsub_emulator, path) == 1


def test_when_the_grace_period_ends_the_trace_is_sent_without_the_file(
    pubsub_emulator: EmulatorForTests,
) -> None:
    """podinfo.json never comes: held until the 3 s grace ends, then exported and acked."""
    store = full_store(podinfo=False)
    topic, path = subscription(pubsub_emulator)
    with running(pubsub_emulator, store, timedelta(seconds=3), path) as (worker, handle, exporter):
        pubsub_emulator.publish(topic, encode(crier_message("failure")))
        wait_until(lambda: worker.acked == 1, 15, "the message acked after the grace period")
        assert worker.nacked == 0
        assert handle.results[-1].outcome is Outcome.EXPORTED
        assert {result.late for result in handle.results[:-1]} == {True}
        assert exporter.get_finished_spans()
    assert count_unacked(pubsub_emulator, path) == 0


def test_the_recheck_schedule_grows_and_is_bounded() -> None:
    """0.25 s doubling to 1 s in the first minute, then doubling to 10 s."""
    waits, wait = [], None
    for held_for in (0, 0, 0, 0, 30, 61, 61, 61, 61, 61):
        wait = next_recheck(wait, held_for)
        waits.append(wait)
    assert waits == [0.25, 0.5, 1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
