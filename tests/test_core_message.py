"""Crier's message: push-envelope decoding and the traceable / skip / invalid classification."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from core_fixtures import BUILD_ID, GCS_PATH, JOB, URL, crier_message, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core.message import (
    Invalid,
    InvalidEnvelope,
    JobState,
    Skip,
    Traceable,
    classify,
    delivery_from_push,
)

PUBLISH_TEXT = "2020-05-07T01:05:41.123456789Z"


def envelope(data: bytes, **message: str) -> dict[str, Any]:
    """Return a Pub/Sub push body carrying ``data``, as Pub/Sub sends it."""
    fields: dict[str, Any] = {
        "data": base64.b64encode(data).decode(),
        "attributes": {},
        "messageId": "4242424242",
        "message_id": "4242424242",
        "publishTime": PUBLISH_TEXT,
        "publish_time": PUBLISH_TEXT,
    }
    fields.update(message)
    return {"message": fields, "subscription": "projects/k8s-prow/subscriptions/prowtrace"}


# --- push envelopes -------------------------------------------------------------------------


def test_push_envelope_data_is_base64_decoded() -> None:
    """The delivery's data is the base64-decoded ``message.data``."""
    data = encode(crier_message("pending"))
    delivery = delivery_from_push(encode(envelope(data)))
    assert delivery.data == data


def test_push_envelope_publish_time_with_nine_fraction_digits() -> None:
    """A publishTime with nanoseconds parses to the microsecond, in UTC."""
    delivery = delivery_from_push(encode(envelope(b"{}")))
    assert delivery.publish_time == datetime(2020, 5, 7, 1, 5, 41, 123456, tzinfo=UTC)


def test_push_envelope_publish_time_with_offset_is_converted_to_utc() -> None:
    """A publishTime with a zone offset becomes the same instant in UTC."""
    body = envelope(b"{}", publishTime="2020-05-07T03:05:41.5+02:00")
    delivery = delivery_from_push(encode(body))
    assert delivery.publish_time == datetime(2020, 5, 7, 1, 5, 41, 500000, tzinfo=UTC)


def test_push_envelope_message_id_is_kept() -> None:
    """The message ID is taken from ``messageId``."""
    assert delivery_from_push(encode(envelope(b"{}"))).message_id == "4242424242"


def test_push_envelope_delivery_attempt_is_kept() -> None:
    """``deliveryAttempt`` (sent with a dead-letter policy) is carried over."""
    body = envelope(b"{}")
    body["deliveryAttempt"] = 3
    assert delivery_from_push(encode(body)).delivery_attempt == 3


def test_push_envelope_without_delivery_attempt_has_none() -> None:
    """Without a dead-letter policy there is no delivery attempt."""
    assert delivery_from_push(encode(envelope(b"{}"))).delivery_attempt is None


def test_push_envelope_without_data_delivers_empty_bytes() -> None:
    """Pub/Sub omits ``data`` when it is empty; the delivery then carries no bytes."""
    body = envelope(b"{}")
    del body["message"]["data"]
    assert delivery_from_push(encode(body)).data == b""


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty body"),
        pytest.param(b"not json", id="not JSON"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'{"subscription": "s"}', id="no message"),
        pytest.param(b'{"message": "hello"}', id="message not an object"),
        pytest.param(b'{"message": {"data": "e30="}}', id="no publishTime"),
        pytest.param(b'{"message": {"data": "e30=", "publishTime": ""}}', id="empty publishTime"),
        pytest.param(
            b'{"message": {"data": "e30=", "publishTime": "yesterday"}}', id="bad publishTime"
        ),
        pytest.param(
            b'{"message": {"data": "e30=", "publishTime": "2020-05-07T01:05:41"}}',
            id="publishTime without zone",
        ),
        pytest.param(
            b'{"message": {"data": 5, "publishTime": "2020-05-07T01:05:41Z"}}', id="data a number"
        ),
        pytest.param(
            b'{"message": {"data": "%%%", "publishTime": "2020-05-07T01:05:41Z"}}',
            id="data not base64",
        ),
        pytest.param(
            b'{"message": {"data": "e30=", "publishTime": "2020-05-07T01:05:41Z"},'
            b' "deliveryAttempt": "3"}',
            id="deliveryAttempt a string",
        ),
    ],
)
def test_malformed_push_envelope_raises_invalid_envelope(body: bytes) -> None:
    """Anything but a well-formed push envelope raises InvalidEnvelope."""
    with pytest.raises(InvalidEnvelope):
        delivery_from_push(body)


def test_missing_publish_time_is_named() -> None:
    """The InvalidEnvelope for a missing publishTime names that field."""
    with pytest.raises(InvalidEnvelope, match=r"message\.publishTime"):
        delivery_from_push(b'{"message": {"data": "e30="}}')


def test_deeply_nested_push_body_raises_invalid_envelope() -> None:
    """A push body nested deeper than the JSON decoder's recursion limit is InvalidEnvelope."""
    with pytest.raises(InvalidEnvelope):
        delivery_from_push(b"[" * 100_000)


def test_publish_time_out_of_range_in_utc_raises_invalid_envelope() -> None:
    """A publishTime that is valid text but outside datetime's range in UTC is InvalidEnvelope."""
    body = envelope(b"{}", publishTime="9999-12-31T23:59:59-01:00")
    with pytest.raises(InvalidEnvelope):
        delivery_from_push(encode(body))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_push_decoding_of_arbitrary_bytes_raises_only_invalid_envelope(body: bytes) -> None:
    """Arbitrary bytes either decode to a delivery or raise InvalidEnvelope, nothing else."""
    with contextlib.suppress(InvalidEnvelope):
        delivery_from_push(body)


@settings(max_examples=200, deadline=None)
@given(
    message=st.dictionaries(
        st.sampled_from(["data", "publishTime", "messageId", "message_id", "attributes"]),
        _JSON
        | st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())
        | st.binary(max_size=32).map(lambda b: base64.b64encode(b).decode()),
    ),
    attempt=_JSON,
)
def test_push_decoding_of_arbitrary_envelopes_raises_only_invalid_envelope(
    message: dict[str, Any], attempt: object
) -> None:
    """Envelope-shaped JSON with arbitrary field values never raises but InvalidEnvelope."""
    body = encode({"message": message, "deliveryAttempt": attempt})
    with contextlib.suppress(InvalidEnvelope):
        delivery_from_push(body)


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
