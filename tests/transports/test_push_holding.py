"""The push endpoint holds a request whose files are late instead of answering 503 at once.

Pub/Sub (and its emulator) treats a push request answered 2xx as acked and anything else, or no
answer within the ack deadline, as nacked (cloud.google.com/pubsub/docs/push: "Receive messages").
So a held request must answer inside the ack deadline: ``hold_seconds`` bounds it.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

import pytest
from core_fixtures import GCS_PATH, crier_message, encode
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.e2e import count_unacked, wait_until
from support.memory_store import MemoryArtifactStore
from support.pubsub_admin import EmulatorForTests
from support.push_server import PushServerThread
from test_pull_holding import Counting, late_store

from processor.config import PushSettings
from processor.core import facts
from processor.export.otel import SpanConverter
from processor.pipeline import Pipeline, PipelineSettings

PROJECT = "prow-push-holding"
GRACE = timedelta(minutes=1)


@pytest.fixture
def late() -> tuple[MemoryArtifactStore, bytes]:
    """Return a finished job's files without prowjob.json, and that file's bytes."""
    return late_store()


def serving(
    store: MemoryArtifactStore, settings: PushSettings | None = None
) -> tuple[PushServerThread, Counting, InMemorySpanExporter]:
    """Return an unstarted push server over ``store`` holding late messages for ``GRACE``."""
    exporter = InMemorySpanExporter()
    pipeline = Pipeline(
        store,
        exporter,
        SpanConverter(Resource.create({"service.name": "prowtrace-test"})),
        PipelineSettings(grace=GRACE),
    )
    handle = Counting(pipeline)
    server = PushServerThread(
        handle, settings or PushSettings(auth="off"), hold_for=GRACE, recheck=handle.recheck
    )
    return server, handle, exporter


def envelope() -> bytes:
    """Return a push envelope of the finished job's message, published now."""
    published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = base64.b64encode(encode(crier_message("failure"))).decode()
    message = {"data": data, "messageId": "7", "publishTime": published}
    return json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()


def post_in_background(server: PushServerThread) -> Future[tuple[int, float]]:
    """POST the envelope from a thread; the future gives the status and the seconds it took."""
    answer: Future[tuple[int, float]] = Future()

    def post() -> None:
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("POST", "/", envelope(), {"Content-Type": "application/json"})
        status = connection.getresponse().status
        connection.close()
        answer.set_result((status, time.monotonic() - started))

    threading.Thread(target=post, daemon=True).start()
    return answer


@pytest.mark.emulator
def test_a_pushed_message_with_a_late_file_is_held_and_acked_without_a_nack(
    pubsub_emulator: EmulatorForTests, late: tuple[MemoryArtifactStore, bytes]
) -> None:
    """prowjob.json lands 3 s after the push: one delivery, traced, acked; no 503 on the way."""
    store, prowjob = late
    server, handle, exporter = serving(store)
    with server:
        topic = pubsub_emulator.create_topic(PROJECT, "held")
        path = pubsub_emulator.create_subscription(
            PROJECT, "held", topic, push_endpoint=f"{server.url}/", ack_deadline_seconds=30
        )
        pubsub_emulator.publish(topic, encode(crier_message("failure")))
        wait_until(lambda: server.endpoint.held == 1, 10, "the pushed message held")
        time.sleep(3)
        store.put(GCS_PATH, facts.PROWJOB, prowjob)
        wait_until(lambda: exporter.get_finished_spans() != (), 5, "the trace exported")
        wait_until(lambda: server.endpoint.held == 0, 5, "the request answered")
        assert handle.calls - server.endpoint.rechecks == 1, "the message was redelivered"
        assert {result.late for result in handle.results[:-1]} == {True}
    assert count_unacked(pubsub_emulator, path) == 0


def test_draining_answers_held_requests_503_at_once(
    late: tuple[MemoryArtifactStore, bytes],
) -> None:
    """A SIGTERM-style drain while a request is held answers it 503 (nack) within a second."""
    server, _, _ = serving(late[0])
    server.start()
    answer = post_in_background(server)
    wait_until(lambda: server.endpoint.rechecks >= 1, 10, "the request held")
    drained_at = time.monotonic()
    server.stop()
    status, _ = answer.result(timeout=10)
    assert status == 503
    assert time.monotonic() - drained_at < 2.0


def test_a_request_is_held_no_longer_than_hold_seconds(
    late: tuple[MemoryArtifactStore, bytes],
) -> None:
    """With hold_seconds=1 a file that never comes is answered 503 after about a second."""
    server, _, _ = serving(late[0], PushSettings(auth="off", hold_seconds=1.0))
    with server:
        status, seconds = post_in_background(server).result(timeout=10)
    assert status == 503
    assert 1.0 <= seconds < 3.0


def test_past_max_held_a_late_message_is_nacked_at_once(
    late: tuple[MemoryArtifactStore, bytes],
) -> None:
    """With max_held=0 nothing is held: the late message is answered 503 without waiting."""
    server, handle, _ = serving(late[0], PushSettings(auth="off", max_held=0))
    with server:
        status, _ = post_in_background(server).result(timeout=10)
        assert (status, handle.calls, server.endpoint.rechecks) == (503, 1, 0)
