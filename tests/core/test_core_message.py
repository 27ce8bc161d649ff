"""Crier's message: the traceable / skip / invalid classification."""

from __future__ import annotations

import json
from typing import Any

import pytest
from core_fixtures import BUILD_ID, GCS_PATH, JOB, URL, crier_message, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core.message import (
    Invalid,
    JobState,
    Skip,
    Traceable,
    classify,
)

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


# --- classification: traceable ---------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "success", "failure", "aborted", "error"])
def test_state_with_artifact_path_is_traceable(status: str) -> None:
    """Pending and terminal states with a gcs_path are traceable, in that state."""
    classified = classify(encode(crier_message(status)))
    assert isinstance(classified, Traceable)
    assert classified.state is JobState(status)


def test_build_id_is_the_last_segment_of_gcs_path() -> None:
    """The build ID is the artifact folder's last path segment."""
    classified = classify(encode(crier_message("success")))
    assert isinstance(classified, Traceable)
    assert classified.build_id == BUILD_ID


def test_build_id_ignores_a_trailing_slash() -> None:
    """A trailing slash on gcs_path does not change the build ID."""
    classified = classify(encode(crier_message("success", gcs_path=GCS_PATH + "/")))
    assert isinstance(classified, Traceable)
    assert classified.build_id == BUILD_ID


def test_s3_artifact_path_is_traceable() -> None:
    """Prow also stores artifacts on S3; such a path is traceable."""
    classified = classify(encode(crier_message("success", gcs_path="s3://prow-logs/logs/j/77")))
    assert isinstance(classified, Traceable)
    assert classified.build_id == "77"


def test_traceable_message_keeps_crier_fields() -> None:
    """The decoded message carries job name, type, URL, description and refs."""
    classified = classify(encode(crier_message("failure")))
    assert isinstance(classified, Traceable)
    message = classified.message
    assert (message.job_name, message.job_type, message.url) == (JOB, "presubmit", URL)
    assert message.description == "Job failed."
    assert [refs.full_name for refs in message.refs] == [
        "kubernetes/kubernetes",
        "kubernetes/test-infra",
    ]
    assert message.refs[0].pulls[0].number == 123


def test_unknown_keys_are_tolerated() -> None:
    """Keys a newer crier might add do not make the message invalid."""
    doc = crier_message("success")
    doc["new_field"] = {"nested": [1, 2, 3]}
    doc["refs"][0]["clone_depth"] = 50
    doc["refs"][0]["pulls"][0]["author_link"] = "https://github.com/x"
    assert isinstance(classify(encode(doc)), Traceable)


def test_null_values_mean_zero_values() -> None:
    """A JSON null is Go's zero value, like an absent key."""
    doc = crier_message("success")
    doc["refs"] = None
    doc["message"] = None
    classified = classify(encode(doc))
    assert isinstance(classified, Traceable)
    assert classified.message.refs == ()


# --- classification: skip --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["triggered", "scheduling"])
def test_states_before_pending_are_skipped(status: str) -> None:
    """Triggered and scheduling have no pod yet: nothing to trace."""
    classified = classify(encode(crier_message(status, gcs_path="", url="")))
    assert isinstance(classified, Skip)
    assert status in classified.reason


def test_triggered_with_artifact_path_is_still_skipped() -> None:
    """Even with a gcs_path, triggered is skipped: the first span starts at pending."""
    assert isinstance(classify(encode(crier_message("triggered"))), Skip)


def test_unknown_state_is_skipped_with_its_name() -> None:
    """A state this version does not know (newer Prow) is skipped, naming the state."""
    classified = classify(encode(crier_message("sleeping")))
    assert isinstance(classified, Skip)
    assert "sleeping" in classified.reason


def test_terminal_without_artifact_path_is_skipped() -> None:
    """A terminal state with an empty gcs_path never ran: skipped, naming the job."""
    classified = classify(encode(crier_message("aborted", gcs_path="", url="")))
    assert isinstance(classified, Skip)
    assert JOB in classified.reason


def test_gangway_error_with_empty_job_name_is_skipped() -> None:
    """Gangway's ``error`` for a ProwJob it failed to create (no name, no path) is skipped."""
    doc = {"status": "error", "message": "Failed creating prowjob: invalid spec", "project": "p"}
    classified = classify(encode(doc))
    assert isinstance(classified, Skip)
    assert classified.message.job_name == ""
    assert classified.message.description.startswith("Failed creating prowjob")


# --- classification: invalid -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"   \n", "empty", id="blank"),
        pytest.param(b"{status: pending}", "not JSON", id="not JSON"),
        pytest.param(b"\xff\xfe\xfd{", "message", id="not UTF-8"),
        pytest.param(b'["pending"]', "message: expected an object", id="array"),
        pytest.param(b'"pending"', "message: expected an object", id="string"),
        pytest.param(b"null", "message: expected an object", id="null"),
        pytest.param(b"[" * 100_000, "nested too deeply", id="deeply nested"),
        pytest.param(b"{}", "status: missing", id="no status"),
    ],
)
def test_malformed_message_is_invalid_with_reason(data: bytes, reason: str) -> None:
    """Bytes that are not a crier message object are invalid, saying why."""
    classified = classify(data)
    assert isinstance(classified, Invalid)
    assert reason in classified.reason


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        pytest.param(("status",), 3, "status", id="status"),
        pytest.param(("job_name",), ["a"], "job_name", id="job_name"),
        pytest.param(("gcs_path",), {"a": 1}, "gcs_path", id="gcs_path"),
        pytest.param(("refs",), {"org": "x"}, "refs", id="refs"),
        pytest.param(("refs", 0), "kubernetes/kubernetes", "refs[0]", id="refs[0]"),
        pytest.param(("refs", 1, "org"), 7, "refs[1].org", id="refs[1].org"),
        pytest.param(("refs", 0, "pulls"), "123", "refs[0].pulls", id="pulls"),
        pytest.param(("refs", 0, "pulls", 0, "number"), "123", "refs[0].pulls[0].number", id="n"),
        pytest.param(("refs", 0, "pulls", 0, "number"), 12.5, "refs[0].pulls[0].number", id="f"),
        pytest.param(("refs", 0, "pulls", 0, "number"), True, "refs[0].pulls[0].number", id="b"),
        pytest.param(("refs", 0, "skip_submodules"), "yes", "refs[0].skip_submodules", id="bool"),
    ],
)
def test_wrong_type_is_invalid_naming_the_field(
    field: tuple[str | int, ...], value: object, path: str
) -> None:
    """A field of the wrong JSON type makes the message invalid, and the reason names it."""
    doc: Any = crier_message("success")
    target = doc
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    classified = classify(encode(doc))
    assert isinstance(classified, Invalid)
    assert classified.reason.startswith(f"{path}: expected ")


@pytest.mark.parametrize(
    "gcs_path",
    [
        "https://storage.googleapis.com/kubernetes-jenkins/logs/j/1",
        "kubernetes-jenkins/logs/j/1",
        "file:///tmp/logs/j/1",
        "gs://",
        "gs://bucket-only",
        "gs://bucket/",
        "gs:///logs/j/1",
    ],
)
def test_bad_artifact_path_is_invalid(gcs_path: str) -> None:
    """A gcs_path that is not gs://BUCKET/PATH or s3://BUCKET/PATH is invalid."""
    classified = classify(encode(crier_message("success", gcs_path=gcs_path)))
    assert isinstance(classified, Invalid)
    assert classified.reason.startswith("gcs_path: ")


def test_oversized_message_is_invalid() -> None:
    """A message past 1 MiB is not one of crier's (~1 KiB) and is refused unparsed."""
    doc = crier_message("success")
    doc["message"] = "x" * (1024 * 1024)
    classified = classify(encode(doc))
    assert isinstance(classified, Invalid)
    assert "bytes" in classified.reason


# --- classification never raises -------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1024))
def test_classify_of_arbitrary_bytes_never_raises(data: bytes) -> None:
    """Any bytes classify as exactly one of traceable, skip or invalid."""
    assert isinstance(classify(data), Traceable | Skip | Invalid)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_classify_of_arbitrary_json_never_raises(value: object) -> None:
    """Any JSON value classifies as exactly one of traceable, skip or invalid."""
    assert isinstance(classify(json.dumps(value).encode()), Traceable | Skip | Invalid)


_CRIER_KEYS = ["status", "job_name", "job_type", "gcs_path", "url", "refs", "message", "runid"]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(_CRIER_KEYS),
        _JSON
        | st.sampled_from([s.value for s in JobState])
        | st.sampled_from([GCS_PATH, "gs://b/x/1", "s3://b/1", "gs://b"])
        | st.lists(
            st.dictionaries(
                st.sampled_from(["org", "repo", "pulls", "base_ref", "skip_submodules"]),
                _JSON | st.lists(st.dictionaries(st.just("number"), _JSON), max_size=2),
            ),
            max_size=2,
        ),
    )
)
def test_classify_of_crier_shaped_objects_never_raises(doc: dict[str, Any]) -> None:
    """Objects with crier's keys holding arbitrary values always classify, never raise."""
    assert isinstance(classify(encode(doc)), Traceable | Skip | Invalid)
