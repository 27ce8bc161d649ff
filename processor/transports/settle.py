"""What both transports do around the pipeline: settle one message, and drain on shutdown.

Each transport keeps only its wire mapping (an ack or nack call for pull, a status code for
push); the order of things is here, once:

- :func:`settle`: run the pipeline on a delivery, count a crash as poison
  (:func:`~processor.transports.disposition.crash_result`), decide ack or nack
  (:func:`~processor.transports.disposition.dispose`) and log the line that records it. Its two
  halves, :func:`process` and :func:`decide`, are for a transport that may hold a message whose
  result is ``late`` between them (see :mod:`processor.transports.holding`).
- :func:`drain`: after SIGTERM, let in-flight messages finish until only
  ``ABORT_RESERVE_SECONDS`` of the budget remain (Cloud Run gives 10 s before SIGKILL), then
  abort the exports they wait on (an OTLP exporter retries a down backend for 10 s), so they
  nack at once instead of being killed mid-flight.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from processor.core.message import Delivery
from processor.pipeline import Result
from processor.transports.disposition import Disposition, crash_result, dispose

ABORT_RESERVE_SECONDS = 3.0
"""Of the drain budget, what is kept for messages to nack after their exports were aborted."""


def settle(
    handle: Callable[[Delivery], Result],
    delivery: Delivery,
    *,
    project: str,
    log: structlog.typing.FilteringBoundLogger,
) -> tuple[Result, Disposition]:
    """Process ``delivery`` and decide its fate; a pipeline that raises never escapes."""
    result = process(handle, delivery, log=log)
    return result, decide(result, delivery, project=project, log=log)


def process(
    handle: Callable[[Delivery], Result],
    delivery: Delivery,
    *,
    log: structlog.typing.FilteringBoundLogger,
) -> Result:
    """Run ``handle`` on ``delivery``; a crash is poison (retrying would raise again)."""
    try:
        return handle(delivery)
    except Exception as error:  # a crash is poison: retrying would raise again
        log.exception("message_crashed", message_id=delivery.message_id)
        return crash_result(error)


def decide(
    result: Result,
    delivery: Delivery,
    *,
    project: str,
    log: structlog.typing.FilteringBoundLogger,
) -> Disposition:
    """Decide ack or nack for a processed delivery and log the line that records it."""
    disposition = dispose(result, delivery, project=project)
    getattr(log, disposition.level)("message", **disposition.fields)
    return disposition


def drain(  # noqa: PLR0913 - the budget, two callbacks, and how to report
    wait_idle: Callable[[float], bool],
    budget: float,
    abort_exports: Callable[[], None] | None,
    *,
    in_flight: Callable[[], int],
    log: structlog.typing.FilteringBoundLogger,
    event: str,
) -> bool:
    """Wait up to ``budget`` s for in-flight messages, aborting their exports near the end.

    ``wait_idle(seconds)`` waits and says whether nothing is in flight any more. Logs
    ``<event>_aborting_exports`` and ``<event>_timeout``; returns True once idle.
    """
    first = budget if abort_exports is None else max(budget - ABORT_RESERVE_SECONDS, 0.0)
    idle = wait_idle(first)
    if not idle and abort_exports is not None:
        log.warning(f"{event}_aborting_exports", in_flight=in_flight(), after=first)  # noqa: G004 - a structlog event name, not a format string
        abort_exports()
        idle = wait_idle(budget - first)
    if not idle:
        log.warning(f"{event}_timeout", timeout=budget, in_flight=in_flight())  # noqa: G004 - as above
    return idle
