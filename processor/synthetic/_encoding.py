r"""Byte-faithful encodings of what Prow's Go programs write: JSON, timestamps and build IDs.

Go's ``encoding/json`` differs from Python's ``json`` in small ways that matter to byte-for-byte
fixtures: it never escapes non-ASCII text, but it does escape ``<``, ``>``, ``&``, U+2028 and U+2029
(HTML-safe output), and ``MarshalIndent(v, "", "\\t")`` puts ``": "`` after keys. Go maps are
written with sorted keys; structs in field order (callers build dicts in that order).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any

SNOWFLAKE_EPOCH_MS = 1288834974657
"""``github.com/bwmarrin/snowflake``'s default epoch (Twitter's), used by Prow's build IDs."""

SNOWFLAKE_NODE = 1
"""Prow vends from snowflake node 1 (``snowflake.NewNode(1)`` in ``pkg/pjutil/tot.go``)."""

_HTML_UNSAFE = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_json(value: Any, *, indent: bool = False) -> bytes:  # noqa: ANN401 - any JSON value
    r"""Encode ``value`` as Go's ``json.Marshal`` (or ``json.MarshalIndent(v, "", "\t")``) would."""
    text = (
        _indented(value) if indent else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    )
    # The characters only occur inside strings, so plain replacement is exact. (``str.translate``
    # with a table is several times slower on long texts that rarely contain them.)
    for unsafe, escaped in _HTML_UNSAFE:
        if unsafe in text:
            text = text.replace(unsafe, escaped)
    return text.encode()


def _indented(value: Any) -> str:  # noqa: ANN401 - any JSON value
    r"""Return ``json.dumps(value, indent="\t", ensure_ascii=False)``, about twice as fast.

    The standard library falls back to a generator-based pure-Python encoder whenever ``indent`` is
    set; corpus generation spends most of its time here, so this is a direct recursive version.
    """
    parts: list[str] = []
    _encode_indented(value, "", parts.append)
    return "".join(parts)


_LITERALS = {None: "null", True: "true", False: "false"}


def _encode_indented(item: Any, pad: str, add: Callable[[str], None]) -> None:  # noqa: ANN401 - JSON
    kind = type(item)
    if kind is str:
        add(encode_basestring(item))
    elif kind is dict:
        if not item:
            add("{}")
            return
        inner = pad + "\t"
        separator = "{\n" + inner
        for key, child in item.items():
            add(separator)
            add(encode_basestring(key))
            add(": ")
            _encode_indented(child, inner, add)
            separator = ",\n" + inner
        add("\n" + pad + "}")
    elif kind is list:
        if not item:
            add("[]")
            return
        inner = pad + "\t"
        separator = "[\n" + inner
        for child in item:
            add(separator)
            _encode_indented(child, inner, add)
            separator = ",\n" + inner
        add("\n" + pad + "]")
    elif kind is int:
        add(str(item))
    elif item is None or kind is bool:
        add(_LITERALS[item])
    else:
        raise TypeError(f"cannot encode {kind.__name__} as JSON: {item!r}")


def go_map(items: dict[str, Any]) -> dict[str, Any]:
    """Return ``items`` with sorted keys, the order Go writes a map in."""
    return dict(sorted(items.items()))


@lru_cache(maxsize=65536)
def rfc3339(seconds: int) -> str:
    """Format epoch seconds as Kubernetes' ``metav1.Time`` does (RFC 3339, seconds, ``Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def rfc3339_ms(ms: int) -> str:
    """Format epoch milliseconds truncated to the second, like ``metav1.Time`` of that instant."""
    return rfc3339(ms // 1000)


def rfc3339_micro(us: int) -> str:
    """Format epoch microseconds as ``metav1.MicroTime`` does (always six fractional digits)."""
    return f"{rfc3339(us // 1_000_000)[:-1]}.{us % 1_000_000:06d}Z"


def protobuf_timestamp(ms: int) -> str:
    """Format epoch milliseconds as protobuf's JSON mapping of ``Timestamp`` does.

    That mapping (used for ``publishTime`` in Pub/Sub push bodies) writes 3, 6 or 9 fractional
    digits as needed, and none at all for a whole second.
    """
    whole = rfc3339(ms // 1000)
    if ms % 1000 == 0:
        return whole
    return f"{whole[:-1]}.{ms % 1000:03d}Z"


def snowflake_id(unix_ms: int, step: int = 0) -> int:
    """Return the snowflake ID Prow's node 1 vends at ``unix_ms`` for the given sequence step."""
    return ((unix_ms - SNOWFLAKE_EPOCH_MS) << 22) | (SNOWFLAKE_NODE << 12) | step


def snowflake_ms(build_id: int) -> int:
    """Return the Unix millisecond a snowflake ID was vended at."""
    return (build_id >> 22) + SNOWFLAKE_EPOCH_MS
