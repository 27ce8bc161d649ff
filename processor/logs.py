"""Structured logs: JSON lines that Cloud Logging understands, or readable console output.

On Cloud Run, a JSON line on stdout/stderr becomes a structured log entry; ``severity`` sets its
level and ``logging.googleapis.com/trace`` (``projects/P/traces/TRACE_ID``) links it to the job's
trace in Cloud Trace. :func:`trace_fields` builds those fields for a message's log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"


def _cloud_logging_fields(
    _logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Rename structlog's fields to the ones Cloud Logging reads."""
    event["severity"] = event.pop("level", method).upper()
    event["message"] = event.pop("event", "")
    return event


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog (and the standard library's logging) for the whole process."""
    out = stream or sys.stderr
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        structlog.processors.format_exc_info,
    ]
    if fmt == "json":
        processors.append(_cloud_logging_fields)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=out, format="%(levelname)s %(name)s: %(message)s"
    )


def trace_fields(trace_id: str, project: str) -> dict[str, str | bool]:
    """Return the fields that link a log line to a trace (empty without both values)."""
    if not trace_id or not project:
        return {}
    return {TRACE_FIELD: f"projects/{project}/traces/{trace_id}", SAMPLED_FIELD: True}
