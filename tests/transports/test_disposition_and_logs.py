"""Ack/nack decisions for every outcome, and the log lines Cloud Logging reads."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime

import pytest
import structlog

from processor.core.message import Delivery
from processor.logs import configure_logging, trace_fields
from processor.pipeline import Outcome, Result
from processor.transports.disposition import MAX_LOGGED_PAYLOAD_BYTES, dispose

TRACE = "5b0d3c527e8f4f319a650c4b3f2a1d9e"


def _delivery(*, attempt: int | None = None, data: bytes = b'{"status": 7}') -> Delivery:
    return Delivery(
        data=data, publish_time=datetime(2026, 11, 1, tzinfo=UTC), delivery_attempt=attempt
    )


@pytest.mark.parametrize("outcome", [Outcome.EXPORTED, Outcome.SKIPPED])
def test_done_messages_are_acked(outcome: Outcome) -> None:
    """Exported and skipped messages are acknowledged, with or without a dead-letter policy."""
    assert dispose(Result(outcome), _delivery()).ack
    assert dispose(Result(outcome), _delivery(attempt=3)).ack


def test_retryable_messages_are_nacked() -> None:
    """A retryable failure is nacked so the subscription's backoff applies."""
    disposition = dispose(Result(Outcome.RETRY, "exporter reported failure"), _delivery())
    assert not disposition.ack
    assert disposition.level == "warning"


@pytest.mark.parametrize("outcome", [Outcome.INVALID, Outcome.FAILED])
def test_poison_with_a_dead_letter_policy_is_nacked(outcome: Outcome) -> None:
    """With a delivery attempt (a dead-letter policy), poison is nacked toward that topic."""
    disposition = dispose(Result(outcome, "status: expected a string"), _delivery(attempt=1))
    assert not disposition.ack
    assert disposition.level == "error"
    assert "dead-letter" in disposition.fields["action"]


@pytest.mark.parametrize("outcome", [Outcome.INVALID, Outcome.FAILED])
def test_poison_without_a_dead_letter_policy_is_acked_and_logged_with_payload(
    outcome: Outcome,
) -> None:
    """Without a dead-letter policy, poison is acked (no loop) and its payload logged at ERROR."""
    disposition = dispose(Result(outcome, "status: expected a string"), _delivery())
    assert disposition.ack
    assert disposition.level == "error"
    assert base64.b64decode(disposition.fields["payload_base64"]) == b'{"status": 7}'


def test_logged_poison_payload_is_capped() -> None:
    """A huge poison payload is logged truncated, with its real size."""
    big = b"x" * (MAX_LOGGED_PAYLOAD_BYTES * 3)
    fields = dispose(Result(Outcome.INVALID, "not JSON"), _delivery(data=big)).fields
    assert len(base64.b64decode(fields["payload_base64"])) == MAX_LOGGED_PAYLOAD_BYTES
    assert fields["payload_bytes"] == len(big)
    assert fields["payload_truncated"] is True


def test_log_fields_name_job_state_trace_and_outcome() -> None:
    """Every message's log line says which job, which state, which trace, and what happened."""
    result = Result(Outcome.EXPORTED, job="ci-demo", state="success", trace_id=TRACE, span_count=9)
    fields = dispose(result, _delivery(), project="my-project").fields
    assert (fields["job"], fields["state"], fields["trace_id"], fields["outcome"]) == (
        "ci-demo",
        "success",
        TRACE,
        "exported",
    )
    assert fields["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE}"


def test_trace_fields_need_both_trace_and_project() -> None:
    """Without a project (traces not in Cloud Trace) no correlation field is invented."""
    assert trace_fields(TRACE, "") == {}
    assert trace_fields("", "p") == {}


def test_json_logs_carry_cloud_loggings_fields() -> None:
    """A JSON log line has severity, message and time where Cloud Logging looks for them."""
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    try:
        structlog.get_logger("test").warning("message", job="ci-demo")
    finally:
        structlog.reset_defaults()
    line = json.loads(out.getvalue())
    assert line["severity"] == "WARNING"
    assert line["message"] == "message"
    assert line["job"] == "ci-demo"
    assert line["time"].endswith("Z")


def test_log_level_filters_lower_severities() -> None:
    """At WARNING, info lines are not written."""
    out = io.StringIO()
    configure_logging("WARNING", "json", stream=out)
    try:
        structlog.get_logger("test").info("quiet")
    finally:
        structlog.reset_defaults()
    assert out.getvalue() == ""


def test_logged_poison_payload_carries_no_credential() -> None:
    """A poison payload with a token in it is logged with the token stripped, the rest intact."""
    token = "ghp_" + "R8xLq2Vn5Tb7Wc9Yd3Fh6Jk1Mp4Sg0Za2Ue5"
    data = b'{"status": 7, "url": "https://x-access-token:' + token.encode() + b'@github.com/o/r"}'
    fields = dispose(Result(Outcome.INVALID, "status"), _delivery(data=data)).fields
    logged = base64.b64decode(fields["payload_base64"])
    assert token.encode() not in logged
    assert logged.startswith(b'{"status": 7, "url": "https://')
