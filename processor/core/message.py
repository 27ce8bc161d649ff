"""Crier's Pub/Sub message: decoding, and deciding whether there is anything to trace.

The transports reduce each Pub/Sub message (pushed in an envelope, see
:mod:`processor.transports.envelope`, or pulled) to a :class:`Delivery`, whose ``data`` is
crier's ``ReportMessage`` JSON (reference section 1). :func:`classify` then sorts it into exactly
one of :class:`Traceable`, :class:`Skip` (nothing to trace, acknowledged quietly) or
:class:`Invalid` (a malformed message that will never succeed), each with a reason a human can
act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from processor.core.jsonshape import (
    ShapeError,
    get_list,
    get_str,
    require_object,
)
from processor.core.refs import Refs, parse_refs

MAX_MESSAGE_BYTES = 1024 * 1024
"""Crier's messages are ~1 KiB; anything past 1 MiB is not one of them."""


class JobState(StrEnum):
    """ProwJob states as crier reports them."""

    SCHEDULING = "scheduling"
    TRIGGERED = "triggered"
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    ABORTED = "aborted"
    ERROR = "error"

    @property
    def is_terminal(self) -> bool:
        """True for the states a job ends in."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCESS, JobState.FAILURE, JobState.ABORTED, JobState.ERROR})


@dataclass(frozen=True, slots=True)
class CrierMessage:
    """The fields of crier's ``ReportMessage``; absent keys hold Go's zero value."""

    status: str
    job_name: str = ""
    job_type: str = ""
    gcs_path: str = ""
    url: str = ""
    refs: tuple[Refs, ...] = ()
    description: str = ""
    runid: str = ""
    project: str = ""
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the transport handed it over."""

    data: bytes
    publish_time: datetime
    message_id: str = ""
    delivery_attempt: int | None = None
    """Set by Pub/Sub only when the subscription has a dead-letter policy."""


@dataclass(frozen=True, slots=True)
class Traceable:
    """A message with an artifact folder: spans can be derived for its state."""

    message: CrierMessage
    state: JobState
    build_id: str


@dataclass(frozen=True, slots=True)
class Skip:
    """A well-formed message with nothing to trace."""

    reason: str
    message: CrierMessage


@dataclass(frozen=True, slots=True)
class Invalid:
    """A message that can never be processed; ``reason`` names the offending field."""

    reason: str


Classification = Traceable | Skip | Invalid


def parse_crier_message(data: bytes) -> CrierMessage:
    """Decode crier's ``ReportMessage``; raise ``ShapeError``/``ValueError`` when malformed."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"message is {len(data)} bytes; crier's are ~1 KiB (limit {MAX_MESSAGE_BYTES})"
        )
    if not data.strip():
        raise ValueError("message is empty")
    obj = require_object(_loads(data), "message")
    return CrierMessage(
        status=get_str(obj, "status", ""),
        job_name=get_str(obj, "job_name", ""),
        job_type=get_str(obj, "job_type", ""),
        gcs_path=get_str(obj, "gcs_path", ""),
        url=get_str(obj, "url", ""),
        refs=tuple(
            parse_refs(item, f"refs[{index}]")
            for index, item in enumerate(get_list(obj, "refs", ""))
        ),
        description=get_str(obj, "message", ""),
        runid=get_str(obj, "runid", ""),
        project=get_str(obj, "project", ""),
        topic=get_str(obj, "topic", ""),
    )


def classify(data: bytes) -> Classification:
    """Sort crier's message bytes into traceable, skip or invalid. Never raises."""
    try:
        message = parse_crier_message(data)
    except (ShapeError, ValueError, RecursionError) as error:
        return Invalid(_reason(error))
    if not message.status:
        return Invalid("status: missing")
    try:
        state = JobState(message.status)
    except ValueError:
        return Skip(f"unknown job state {message.status!r}: newer Prow? nothing to trace", message)
    if state in {JobState.SCHEDULING, JobState.TRIGGERED}:
        return Skip(f"state {state}: the job's first span starts when it is pending", message)
    if not message.gcs_path:
        who = message.job_name or "a job with no name (e.g. gangway failed to create it)"
        return Skip(f"state {state} of {who} without an artifact path: the job never ran", message)
    folder_error = artifact_folder_error(message.gcs_path)
    if folder_error:
        return Invalid(f"gcs_path: {folder_error}")
    build_id = build_id_of(message.gcs_path)
    return Traceable(message=message, state=state, build_id=build_id)


def artifact_folder_error(gcs_path: str) -> str:
    """Return why ``gcs_path`` is not a usable artifact folder URL, or ``""`` if it is."""
    try:
        gcs_path.encode("utf-8")
    except UnicodeEncodeError:
        return "not encodable as UTF-8 (a lone surrogate escape?)"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in gcs_path):  # noqa: PLR2004 - ASCII controls
        return "contains control characters"
    scheme, sep, rest = gcs_path.partition("://")
    if not sep or scheme not in {"gs", "s3"}:
        return f"expected gs://BUCKET/PATH or s3://BUCKET/PATH, got {gcs_path[:80]!r}"
    bucket, _, path = rest.partition("/")
    if not bucket or not path.strip("/"):
        return f"no bucket or no path in {gcs_path[:80]!r}"
    return ""


def build_id_of(gcs_path: str) -> str:
    """Return the build ID: the artifact folder's last path segment (reference section 1)."""
    return gcs_path.rstrip("/").rsplit("/", 1)[-1]


def _loads(data: bytes) -> Any:  # noqa: ANN401 - JSON is untyped until require_object checks it
    return json.loads(data)


def _reason(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "message: JSON nested too deeply"
    if isinstance(error, UnicodeDecodeError):
        return "message: not UTF-8 text"
    if isinstance(error, json.JSONDecodeError):
        return f"message: not JSON ({error.msg} at byte {error.pos})"
    return str(error)
