"""Deterministic IDs: the tracing.sh convention, span paths, build-ID mode, snowflake decoding."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from core_fixtures import BUILD_ID, JOB, SNOWFLAKE_INSTANT, UID
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from processor.core.ids import (
    SNOWFLAKE_EPOCH_MS,
    IdMode,
    identity_from_build,
    identity_from_uid,
    snowflake_time,
    span_id_for,
    traceparent,
)

PATHS = (
    "queue",
    "pod",
    "pod/schedule",
    "pod/init/clonerefs",
    "pod/init/clonerefs/clone/kubernetes/kubernetes",
    "pod/init/clonerefs/clone/kubernetes/kubernetes/3",
    "pod/container/test",
)


def tracing_sh(prow_job_id: str) -> tuple[str, str]:
    """Istio's tracing.sh: trace = PROW_JOB_ID without dashes; parent = trace[0:16]."""
    trace = prow_job_id.replace("-", "")
    return trace, trace[0:16]


def snowflake_for(instant: datetime, sequence: int = 0) -> str:
    """Vend the snowflake build ID bwmarrin/snowflake would give at ``instant`` (node 0)."""
    unix_ms = int(instant.timestamp() * 1000)
    return str(((unix_ms - SNOWFLAKE_EPOCH_MS) << 22) | sequence)


# --- UID mode --------------------------------------------------------------------------------


def test_uid_trace_id_is_the_uuid_hex_digits() -> None:
    """The trace ID is PROW_JOB_ID without dashes, exactly as tracing.sh computes it."""
    trace, _ = tracing_sh(UID)
    assert identity_from_uid(UID).trace_id_hex == trace


def test_uid_root_span_is_the_first_16_hex_digits() -> None:
    """The root span ID is trace[0:16], the parent tracing.sh hands to the job's own spans."""
    _, parent = tracing_sh(UID)
    assert f"{identity_from_uid(UID).root_span_id:016x}" == parent


def test_uid_identity_is_case_insensitive() -> None:
    """An upper-case rendering of the UUID gives the same IDs."""
    assert identity_from_uid(UID.upper()) == identity_from_uid(UID)


def test_uid_mode_is_recorded() -> None:
    """An identity derived from the UID says so."""
    assert identity_from_uid(UID).mode is IdMode.UID


@settings(max_examples=100, deadline=None)
@given(st.uuids())
def test_every_uuid_follows_the_tracing_sh_convention(value: uuid.UUID) -> None:
    """For any UUID with a non-zero first half, trace and root follow tracing.sh."""
    assume(value.int >> 64 != 0)  # a zero root span ID is invalid in W3C: such UIDs are hashed
    trace, parent = tracing_sh(str(value))
    identity = identity_from_uid(str(value))
    assert (identity.trace_id_hex, f"{identity.root_span_id:016x}") == (trace, parent)


def test_uid_with_zero_first_half_still_gets_valid_ids() -> None:
    """A UUID whose first 8 bytes are zero (root span 0 is invalid) yields non-zero IDs."""
    identity = identity_from_uid("00000000-0000-0000-9f60-7a8b9c0d1e2f")
    assert identity.trace_id != 0
    assert identity.root_span_id != 0


def test_non_uuid_uid_is_hashed_to_a_stable_valid_id() -> None:
    """A UID that is not a UUID still yields the same non-zero IDs every time."""
    first, second = identity_from_uid("not-a-uuid"), identity_from_uid("not-a-uuid")
    assert first == second
    assert first.trace_id != 0
    assert first.root_span_id != 0


def test_traceparent_of_root_is_w3c_sampled() -> None:
    """The root's traceparent is ``00-<trace>-<trace[0:16]>-01``: version 00, sampled."""
    trace, parent = tracing_sh(UID)
    assert traceparent(identity_from_uid(UID)) == f"00-{trace}-{parent}-01"


def test_traceparent_of_a_child_span() -> None:
    """A child's traceparent carries its own span ID as 16 hex digits."""
    identity = identity_from_uid(UID)
    header = traceparent(identity, span_id_for(identity, "queue"))
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", header)
    assert header.split("-")[2] == f"{span_id_for(identity, 'queue'):016x}"


# --- span IDs --------------------------------------------------------------------------------


def test_empty_path_is_the_root_span() -> None:
    """The path ``""`` is the root, whose ID is the root span ID."""
    identity = identity_from_uid(UID)
    assert span_id_for(identity, "") == identity.root_span_id


def test_span_id_is_deterministic() -> None:
    """The same trace and path always give the same span ID."""
    assert span_id_for(identity_from_uid(UID), "pod") == span_id_for(identity_from_uid(UID), "pod")


def test_span_ids_of_the_tree_are_distinct_non_zero_and_not_the_root() -> None:
    """The builder's paths get distinct, non-zero span IDs, none equal to the root's."""
    identity = identity_from_uid(UID)
    ids = [span_id_for(identity, path) for path in PATHS]
    assert len(set(ids)) == len(ids)
    assert 0 not in ids
    assert identity.root_span_id not in ids


def test_span_id_fits_in_eight_bytes() -> None:
    """A span ID is 8 bytes: below 2**64."""
    assert all(0 < span_id_for(identity_from_uid(UID), path) < 2**64 for path in PATHS)


def test_span_id_depends_on_the_trace() -> None:
    """The same path in another job's trace has another span ID."""
    other = identity_from_uid(str(uuid.UUID(int=identity_from_uid(UID).trace_id + 1)))
    assert span_id_for(identity_from_uid(UID), "queue") != span_id_for(other, "queue")


@settings(max_examples=100, deadline=None)
@given(st.uuids(), st.sets(st.text(min_size=1, max_size=40), min_size=2, max_size=30))
def test_distinct_paths_get_distinct_span_ids(value: uuid.UUID, paths: set[str]) -> None:
    """Within a trace, distinct non-empty paths get distinct, non-zero, non-root span IDs."""
    identity = identity_from_uid(str(value))
    ids = {span_id_for(identity, path) for path in paths}
    assert len(ids) == len(paths)
    assert 0 not in ids
    assert identity.root_span_id not in ids


# --- build-ID mode ---------------------------------------------------------------------------


def test_build_id_mode_is_deterministic() -> None:
    """Job name and build ID always give the same IDs."""
    assert identity_from_build(JOB, BUILD_ID) == identity_from_build(JOB, BUILD_ID)


def test_build_id_mode_is_recorded() -> None:
    """An identity derived from the build ID says so."""
    assert identity_from_build(JOB, BUILD_ID).mode is IdMode.BUILD_ID


def test_build_id_mode_differs_from_uid_mode() -> None:
    """The two modes give different trace IDs for the same job (never mix them)."""
    assert identity_from_build(JOB, BUILD_ID).trace_id != identity_from_uid(UID).trace_id


def test_build_id_mode_root_is_the_trace_ids_first_half() -> None:
    """In build-ID mode too, the root span ID is the trace ID's first 8 bytes."""
    identity = identity_from_build(JOB, BUILD_ID)
    assert f"{identity.root_span_id:016x}" == identity.trace_id_hex[:16]


def test_build_id_mode_separates_jobs_and_builds() -> None:
    """Another job with the same build ID, or another build of the job, is another trace."""
    base = identity_from_build(JOB, BUILD_ID).trace_id
    assert identity_from_build(JOB + "-e2e", BUILD_ID).trace_id != base
    assert identity_from_build(JOB, "1258197944759226372").trace_id != base


def test_build_id_mode_is_not_fooled_by_the_separator() -> None:
    """Job and build are separated, so ("a", "bc") and ("ab", "c") differ."""
    assert identity_from_build("a", "bc").trace_id != identity_from_build("ab", "c").trace_id


# --- snowflake build IDs ---------------------------------------------------------------------


def test_snowflake_of_the_reference_example() -> None:
    """1258197944759226371 decodes to 2020-05-07T00:52:20.875Z (reference section 4)."""
    assert snowflake_time(BUILD_ID) == SNOWFLAKE_INSTANT


def test_snowflake_keeps_milliseconds() -> None:
    """A snowflake vended at a given millisecond decodes to that millisecond."""
    instant = datetime(2026, 3, 14, 15, 9, 26, 535000, tzinfo=UTC)
    assert snowflake_time(snowflake_for(instant, sequence=4095)) == instant


@pytest.mark.parametrize(
    "build_id",
    [
        pytest.param("4242", id="tot"),
        pytest.param("1", id="tot first"),
        pytest.param("1234567890123456", id="16 digits"),
        pytest.param("10000000000000000", id="17 digits before 2015"),
        pytest.param("", id="empty"),
        pytest.param("abc", id="letters"),
        pytest.param("12581979447592263a1", id="hex-ish"),
        pytest.param("-1258197944759226371", id="negative"),
        pytest.param(" 1258197944759226371", id="padded"),
        pytest.param("١٢٥٨١٩٧٩٤٤٧٥٩٢٢٦٣٧١", id="arabic-indic digits"),
        pytest.param(str(2**63), id="past int64"),
        pytest.param("9" * 40, id="huge"),
    ],
)
def test_non_snowflake_build_ids_decode_to_none(build_id: str) -> None:
    """Tot IDs, garbage and values outside the sane window carry no time."""
    assert snowflake_time(build_id) is None


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_snowflake_decoding_never_raises(build_id: str) -> None:
    """Any text decodes to an instant in 2015-2100 or to None."""
    instant = snowflake_time(build_id)
    if instant is not None:
        assert datetime(2015, 1, 1, tzinfo=UTC) <= instant < datetime(2100, 1, 1, tzinfo=UTC)
