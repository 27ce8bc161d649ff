"""Deterministic trace and span IDs: the whole reason prowtrace needs no shared state.

UID mode (the default) follows the convention Prow jobs already use (reference section 5): the
trace ID is the 16 bytes of the ProwJob UID (``PROW_JOB_ID`` without dashes) and the root span ID is
its first 8 bytes, so spans a job reports through Istio's ``tracing.sh`` attach to our root. Every
other span ID is the first 8 bytes of SHA-256 over the trace ID and the span's *path*, a stable,
human-readable name of its place in the tree (``queue``, ``pod/init/clonerefs``, ...).

Build-ID mode is for deployments that cannot read prowjob.json: the trace ID is then the first
16 bytes of SHA-256 over the job name, a newline and the build ID. The mode is a deployment
setting, never chosen per message: the two rules give different IDs, and mixing them would split a
job across two traces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

SNOWFLAKE_EPOCH_MS = 1288834974657
"""bwmarrin/snowflake's default epoch, which Prow's build IDs use (reference section 4)."""

_SNOWFLAKE_MIN_DIGITS = 17
_SNOWFLAKE_EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
_SNOWFLAKE_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_UUID_HEX_DIGITS = 32
_TRACE_BYTES = 16
_SPAN_BYTES = 8


class IdMode(StrEnum):
    """How a deployment derives a job's trace ID."""

    UID = "uid"
    BUILD_ID = "build-id"


@dataclass(frozen=True, slots=True)
class JobIdentity:
    """The IDs that anchor a job's trace."""

    trace_id: int
    root_span_id: int
    mode: IdMode

    @property
    def trace_id_hex(self) -> str:
        """The trace ID as 32 lowercase hex digits, as W3C and OTLP JSON write it."""
        return f"{self.trace_id:032x}"


# Text is hashed as UTF-8 with "surrogatepass": identical bytes for valid text, and a lone
# surrogate (valid in JSON, e.g. "\\ud800" in a job name) hashes instead of raising.


def identity_from_uid(uid: str) -> JobIdentity:
    """Derive the IDs from a ProwJob UID (a UUID, as ``PROW_JOB_ID`` holds it).

    A UID that is not 32 hex digits once dashes are removed (never seen from Prow, which uses
    ``uuid.New()``) is hashed instead, so it still yields a valid, stable ID.
    """
    digits = uid.replace("-", "").lower()
    if len(digits) == _UUID_HEX_DIGITS and _is_hex(digits) and int(digits, 16) >> 64:
        trace_id = int(digits, 16)
    else:
        trace_id = _hash_int(
            b"prowtrace-uid\n" + uid.encode("utf-8", "surrogatepass"), _TRACE_BYTES
        )
    return JobIdentity(trace_id=trace_id, root_span_id=trace_id >> 64, mode=IdMode.UID)


def identity_from_build(job_name: str, build_id: str) -> JobIdentity:
    """Derive the IDs from the job name and build ID (build-ID mode)."""
    trace_id = _hash_int(f"{job_name}\n{build_id}".encode("utf-8", "surrogatepass"), _TRACE_BYTES)
    return JobIdentity(trace_id=trace_id, root_span_id=trace_id >> 64, mode=IdMode.BUILD_ID)


def span_id_for(identity: JobIdentity, path: str) -> int:
    """Return the span ID of the span at ``path`` (``""`` is the root).

    Never zero and never the root's ID: in the (2**-64) event of such a hash, a counter is mixed in.
    """
    if not path:
        return identity.root_span_id
    seed = identity.trace_id.to_bytes(_TRACE_BYTES, "big") + path.encode("utf-8", "surrogatepass")
    salt = 0
    while True:
        span_id = _hash_int(seed if salt == 0 else seed + f"#{salt}".encode(), _SPAN_BYTES)
        if span_id not in {0, identity.root_span_id}:
            return span_id
        salt += 1


def traceparent(identity: JobIdentity, span_id: int | None = None) -> str:
    """Return the W3C ``traceparent`` for a span of the job (default: the root), sampled."""
    span = identity.root_span_id if span_id is None else span_id
    return f"00-{identity.trace_id:032x}-{span:016x}-01"


def snowflake_time(build_id: str) -> datetime | None:
    """Decode the instant a snowflake build ID was vended, or ``None`` if it is not one.

    IDs vended by ``tot`` are small integers that carry no time; they are recognised by their
    length and by decoding outside 2015-2100. Callers still check the instant against prowjob.json
    before trusting it (a fixed window keeps this function pure).
    """
    if not build_id.isascii() or not build_id.isdigit() or len(build_id) < _SNOWFLAKE_MIN_DIGITS:
        return None
    value = int(build_id)
    if value >> 63:
        return None
    instant = datetime.fromtimestamp(((value >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)
    if not _SNOWFLAKE_EARLIEST <= instant < _SNOWFLAKE_LATEST:
        return None
    return instant


def _hash_int(data: bytes, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(data).digest()[:size], "big")
    return value or 1


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)
