"""Pub/Sub's push envelope: decoding to a Delivery, and refusing anything else."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from core_fixtures import crier_message, encode
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.transports.envelope import InvalidEnvelope, delivery_from_push

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
