"""What to tell Pub/Sub about a processed message, and the log line that says so. Pure.

Pub/Sub reports a delivery attempt on each message only when the subscription has a dead-letter
policy, so the message itself tells us whether nacking a poison message will land it on the
dead-letter topic (after ``max_delivery_attempts``) or loop it forever:

==================  =====================  ===========================================
outcome             dead-letter policy     disposition
==================  =====================  ===========================================
EXPORTED, SKIPPED   either                 ack
RETRY               either                 nack: the subscription's backoff applies
INVALID, FAILED     yes (attempt present)  nack, so Pub/Sub dead-letters it
INVALID, FAILED     no                     ack, and log the payload (scrubbed) and reason at ERROR
==================  =====================  ===========================================

A message whose processing raised (a bug: nothing in the pipeline is meant to raise) counts as
FAILED (:func:`crash_result`): retrying would raise again, so it is treated like any other poison
message instead of being redelivered forever (pull) or answered 500 forever (push).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from processor.core.message import Delivery
from processor.core.redact import strip_secrets
from processor.logs import trace_fields
from processor.pipeline import Outcome, Result

MAX_CRASH_REASON_CHARS = 500
MAX_LOGGED_PAYLOAD_BYTES = 8 * 1024
"""Poison payloads are logged for a human to inspect, capped to keep log entries small."""


@dataclass(frozen=True, slots=True)
class Disposition:
    """Ack or nack, with the level and fields of the log line that records it."""

    ack: bool
    level: str
    fields: dict[str, Any]


def crash_result(error: BaseException) -> Result:
    """Return the result of a message whose processing raised: poison, as a retry would raise."""
    return Result(Outcome.FAILED, f"processing crashed: {error!r}"[:MAX_CRASH_REASON_CHARS])


def dispose(result: Result, delivery: Delivery, *, project: str = "") -> Disposition:
    """Decide ack/nack for a processed delivery and describe it for the log."""
    dead_letter = delivery.delivery_attempt is not None
    fields: dict[str, Any] = {
        "outcome": str(result.outcome),
        "reason": result.reason,
        "job": result.job,
        "state": result.state,
        "build_id": result.build_id,
        "trace_id": result.trace_id,
        "spans": result.span_count,
        "reads": result.reads,
        "message_id": delivery.message_id,
        "delivery_attempt": delivery.delivery_attempt,
        **trace_fields(result.trace_id, project),
    }
    if result.outcome in {Outcome.EXPORTED, Outcome.SKIPPED}:
        return Disposition(ack=True, level="info", fields=fields | {"action": "ack"})
    if result.outcome is Outcome.RETRY:
        return Disposition(ack=False, level="warning", fields=fields | {"action": "nack"})
    if dead_letter:
        action = "nack: to the dead-letter topic after the subscription's max delivery attempts"
        return Disposition(ack=False, level="error", fields=fields | {"action": action})
    payload = delivery.data[:MAX_LOGGED_PAYLOAD_BYTES]
    return Disposition(
        ack=True,
        level="error",
        fields=fields
        | {
            "action": "ack: no dead-letter policy, dropped after logging",
            # Scrubbed of credentials; surrogateescape keeps every other byte as it came.
            "payload_base64": base64.b64encode(
                strip_secrets(payload.decode("utf-8", "surrogateescape")).encode(
                    "utf-8", "surrogateescape"
                )
            ).decode(),
            "payload_bytes": len(delivery.data),
            "payload_truncated": len(delivery.data) > MAX_LOGGED_PAYLOAD_BYTES,
        },
    )
