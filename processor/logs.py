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


class _LockedLineHandler(logging.Handler):
    """Write standard-library records through structlog's writer: same lock, one write a line.

    Libraries (the OTLP exporter's retry warnings, gRPC) log through the standard library while
    prowtrace logs through structlog; sharing one writer keeps each record whole on its line.
    """

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._writer = structlog.WriteLogger(out)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._writer.msg(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's logging alike, for the whole process.

    Every line is one JSON object (``fmt="json"``, Cloud Logging's fields) or one console line,
    whichever library wrote it.
    """
    out = stream or sys.stderr
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        structlog.processors.format_exc_info,
    ]
    if fmt == "json":
        shared.append(_cloud_logging_fields)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = _LockedLineHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)


def trace_fields(trace_id: str, project: str) -> dict[str, str | bool]:
    """Return the fields that link a log line to a trace (empty without both values)."""
    if not trace_id or not project:
        return {}
    return {TRACE_FIELD: f"projects/{project}/traces/{trace_id}", SAMPLED_FIELD: True}
