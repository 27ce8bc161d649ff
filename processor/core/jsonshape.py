"""Typed access to decoded JSON, with errors that name the offending field.

Crier and the artifact writers are Go programs: a key may be absent (``omitempty``) or ``null``, and
both mean "zero value". A key present with the wrong JSON type is a real defect and is reported with
its dotted path, e.g. ``refs[0].pulls[1].number: expected an integer, got "12"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

JsonObject = Mapping[str, Any]


class ShapeError(ValueError):
    """A JSON value does not have the type its field requires."""

    def __init__(self, path: str, expected: str, got: object) -> None:
        """Describe the field, what it should hold and what it holds."""
        super().__init__(f"{path}: expected {expected}, got {_describe(got)}")
        self.path = path


_SHOWN_CHARS = 40


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 3] + "..."
        return f"the string {shown!r}"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def require_object(value: object, path: str) -> JsonObject:
    """Return ``value`` as a JSON object or raise :class:`ShapeError`."""
    if not isinstance(value, dict):
        raise ShapeError(path, "an object", value)
    return value


def get_str(obj: JsonObject, key: str, path: str) -> str:
    """Return a string field; absent or null is ``""``."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ShapeError(f"{path}.{key}" if path else key, "a string", value)
    return value


def get_int(obj: JsonObject, key: str, path: str) -> int:
    """Return an integer field; absent or null is 0. Booleans and floats are refused."""
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{path}.{key}" if path else key, "an integer", value)
    return value


def get_number(obj: JsonObject, key: str, path: str) -> float | None:
    """Return a numeric field as float; absent or null is ``None``."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ShapeError(f"{path}.{key}" if path else key, "a number", value)
    return float(value)


def get_bool(obj: JsonObject, key: str, path: str) -> bool:
    """Return a boolean field; absent or null is ``False``."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ShapeError(f"{path}.{key}" if path else key, "a boolean", value)
    return value


def get_object(obj: JsonObject, key: str, path: str) -> JsonObject:
    """Return an object field; absent or null is an empty mapping."""
    value = obj.get(key)
    if value is None:
        return {}
    return require_object(value, f"{path}.{key}" if path else key)


def get_list(obj: JsonObject, key: str, path: str) -> Sequence[Any]:
    """Return an array field; absent or null is an empty sequence."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ShapeError(f"{path}.{key}" if path else key, "an array", value)
    return value


def get_time(obj: JsonObject, key: str, path: str) -> datetime | None:
    """Return an RFC 3339 timestamp field as an aware UTC datetime; absent, null or "" is ``None``.

    Go's zero time (``0001-01-01T00:00:00Z``) also means "not set".
    """
    text = get_str(obj, key, path)
    if not text:
        return None
    try:
        parsed = parse_rfc3339(text)
    except ValueError:
        raise ShapeError(f"{path}.{key}" if path else key, "an RFC 3339 time", text) from None
    return None if parsed.year <= 1 else parsed


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset, any fraction digits) into aware UTC."""
    normalized = text.strip()
    if normalized.endswith(("Z", "z")):
        normalized = normalized[:-1] + "+00:00"
    # Python accepts at most 6 fraction digits; Go and Pub/Sub may send 9.
    if "." in normalized:
        head, _, rest = normalized.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        normalized = head + "." + rest[: min(digits, 6)] + rest[digits:]
    parsed = datetime.fromisoformat(normalized)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {text!r}") from None
