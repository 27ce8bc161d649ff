"""Pub/Sub's push envelope: the JSON body a push subscription POSTs, reduced to a Delivery.

Pub/Sub, not crier, defines this wrapper, so it lives with the transports; the core only sees
the :class:`~processor.core.message.Delivery` inside. ``prowtrace replay`` reads the same
envelopes from recorded JSON lines.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from processor.core.jsonshape import ShapeError, get_int, get_str, parse_rfc3339, require_object
from processor.core.message import Delivery

MAX_DELIVERY_ATTEMPT = 1000
"""Pub/Sub counts attempts from 1 and dead-letters after at most 100; more is not Pub/Sub."""


class InvalidEnvelope(ValueError):
    """A push request body that is not a Pub/Sub push envelope."""


def delivery_from_push(body: bytes) -> Delivery:
    """Decode a Pub/Sub push envelope (``{"message": {...}, "subscription": ...}``).

    Raises :class:`InvalidEnvelope` when the body is not such an envelope. The inner ``data`` is
    not looked at here: a bad crier message inside a good envelope is :func:`classify`'s business.
    """
    try:
        decoded = _loads(body)
    except RecursionError:
        raise InvalidEnvelope("not a Pub/Sub push envelope: JSON nested too deeply") from None
    except ValueError as error:
        raise InvalidEnvelope(f"not a Pub/Sub push envelope: {error}") from None
    return delivery_from_envelope(decoded)


def delivery_from_envelope(decoded: object) -> Delivery:
    """Read a push envelope that is already JSON-decoded (see :func:`delivery_from_push`)."""
    try:
        envelope = require_object(decoded, "body")
        message = require_object(envelope.get("message"), "message")
        encoded = get_str(message, "data", "message")
        publish_text = get_str(message, "publishTime", "message")
        publish_time = parse_rfc3339(publish_text) if publish_text else None
        message_id = get_str(message, "messageId", "message") or get_str(
            message, "message_id", "message"
        )
        attempt = get_int(envelope, "deliveryAttempt", "") or None
    except (ShapeError, ValueError, OverflowError) as error:
        raise InvalidEnvelope(f"not a Pub/Sub push envelope: {error}") from None
    if attempt is not None and not 1 <= attempt <= MAX_DELIVERY_ATTEMPT:
        raise InvalidEnvelope(f"deliveryAttempt: {attempt} is not a Pub/Sub delivery attempt")
    if publish_time is None:
        raise InvalidEnvelope("message.publishTime: missing")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEnvelope("message.data: not valid base64") from None
    return Delivery(
        data=data, publish_time=publish_time, message_id=message_id, delivery_attempt=attempt
    )


def _loads(data: bytes) -> Any:  # noqa: ANN401 - JSON is untyped until require_object checks it
    return json.loads(data)
