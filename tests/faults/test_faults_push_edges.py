"""Fault injection, push server edges: half-sent headers, connection floods, compressed bodies.

aiohttp has no header read timeout of its own: before the guard, 1,100 clients that never
finished their headers held 1,100 descriptors, starved the server and made asyncio's accept loop
log ~13,000 ERROR lines a second. Now such connections are closed after ``header_timeout``,
connections past ``max_connections`` get a 503 at once, and the refusals log one line.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest
import structlog
from support.abusive_clients import SlowLoris
from support.push_server import PushServerThread

from processor.config import PushSettings
from processor.core.message import Delivery
from processor.pipeline import Outcome, Result

pytestmark = [pytest.mark.faults]

HEADER_TIMEOUT = 1.0
CAP = 20


def _skip(_delivery: Delivery) -> Result:
    return Result(Outcome.SKIPPED, "not traced in this test")


@pytest.fixture
def server() -> Iterator[PushServerThread]:
    """Serve with a short header timeout and a small connection cap."""
    settings = PushSettings(auth="off", header_timeout=HEADER_TIMEOUT, max_connections=CAP)
    with PushServerThread(_skip, settings) as running:
        yield running


def _health(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def test_half_sent_headers_are_closed_after_the_header_timeout(server: PushServerThread) -> None:
    """Clients that never finish their headers lose their connection, unanswered, in seconds."""
    with SlowLoris("127.0.0.1", server.port, 5, phase="headers") as slow:
        began = time.monotonic()
        replies = slow.replies(timeout=HEADER_TIMEOUT + 5)
        waited = time.monotonic() - began
    assert replies == [None] * 5
    assert HEADER_TIMEOUT * 0.5 <= waited < HEADER_TIMEOUT + 4


def test_connections_past_the_cap_get_503_with_one_log_line(server: PushServerThread) -> None:
    """A flood of 3x the cap: the excess is answered 503 and logged once; health comes back."""
    with (
        structlog.testing.capture_logs() as logs,
        SlowLoris("127.0.0.1", server.port, 3 * CAP, phase="headers") as slow,
    ):
        replies = slow.replies(timeout=0.5)
    refusals = [entry for entry in logs if entry["event"] == "push_connections_refused"]
    assert replies.count(503) >= 2 * CAP - 2  # a few may be counted before the sweep closes any
    assert len(refusals) == 1
    deadline = time.monotonic() + HEADER_TIMEOUT + 5
    while _health(server.port) != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _health(server.port) == 200
