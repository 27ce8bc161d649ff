"""What both transports share: settling one message, and draining within a budget."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from structlog.testing import capture_logs

from processor.core.message import Delivery
from processor.pipeline import Outcome, Result
from processor.transports.settle import ABORT_RESERVE_SECONDS, drain, settle

LOG = structlog.get_logger("test")
DELIVERY = Delivery(b"{}", datetime(2026, 11, 20, tzinfo=UTC), message_id="m1")


def _crash(_delivery: Delivery) -> Result:
    raise RuntimeError("bug")


def test_a_pipeline_that_raises_is_poison_and_acked_without_a_dead_letter_policy() -> None:
    """A crash never escapes: FAILED, logged with the traceback, then disposed as poison."""
    with capture_logs() as logs:
        result, disposition = settle(_crash, DELIVERY, project="", log=LOG)

    assert result.outcome is Outcome.FAILED
    assert "RuntimeError('bug')" in result.reason
    assert disposition.ack
    assert [entry["event"] for entry in logs] == ["message_crashed", "message"]


def test_an_exported_message_is_acked_and_logged_once() -> None:
    """The pipeline's result decides; one log line records it."""
    with capture_logs() as logs:
        _, disposition = settle(lambda _d: Result(Outcome.EXPORTED), DELIVERY, project="", log=LOG)

    assert disposition.ack
    assert [(entry["event"], entry["action"]) for entry in logs] == [("message", "ack")]


def test_an_idle_drain_waits_once_and_aborts_nothing() -> None:
    """Nothing in flight: one wait, no abort, no warning."""
    waits: list[float] = []
    aborted: list[bool] = []

    def wait_idle(seconds: float) -> bool:
        waits.append(seconds)
        return True

    with capture_logs() as logs:
        idle = drain(
            wait_idle, 8.0, lambda: aborted.append(True), in_flight=lambda: 0, log=LOG, event="x"
        )

    assert idle
    assert waits == [8.0 - ABORT_RESERVE_SECONDS]
    assert aborted == []
    assert logs == []


def test_a_busy_drain_aborts_the_exports_and_keeps_the_reserve_for_nacks() -> None:
    """Still busy when only the reserve is left: abort, then wait out the reserve."""
    waits: list[float] = []
    aborted: list[bool] = []

    def wait_idle(seconds: float) -> bool:
        waits.append(seconds)
        return bool(aborted)  # idle once the exports were aborted

    with capture_logs() as logs:
        idle = drain(
            wait_idle, 8.0, lambda: aborted.append(True), in_flight=lambda: 3, log=LOG, event="x"
        )

    assert idle
    assert waits == [8.0 - ABORT_RESERVE_SECONDS, ABORT_RESERVE_SECONDS]
    assert [entry["event"] for entry in logs] == ["x_aborting_exports"]


def test_without_an_abort_the_whole_budget_is_waited_then_reported() -> None:
    """No way to abort: one wait of the full budget, then a timeout warning."""
    waits: list[float] = []

    def wait_idle(seconds: float) -> bool:
        waits.append(seconds)
        return False

    with capture_logs() as logs:
        idle = drain(wait_idle, 8.0, None, in_flight=lambda: 2, log=LOG, event="x")

    assert not idle
    assert waits == [8.0]
    assert [(entry["event"], entry["in_flight"]) for entry in logs] == [("x_timeout", 2)]
