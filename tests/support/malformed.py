"""Malformed inputs for the fault-injection suite: crier message bodies and push request bodies.

Hypothesis strategies (this module needs the ``hypothesis`` dev dependency) that produce what a
broken or hostile publisher could send: arbitrary JSON and raw bytes, crier-shaped objects with
wrong types or hostile strings, valid messages cut short, invalid UTF-8, absurd numbers and
nesting, huge fields; and, for the push endpoint, envelopes with truncated or foreign base64 and
wrong types. Every input carries a ``kind`` so a test can count how each kind was classified.

Crier-shaped inputs name artifact folders only in :data:`FUZZ_BUCKET` (or unusable URLs), never a
real job's folder: a malformed message must not be able to add spans to a real job's trace, so a
test can assert the valid jobs' traces are exactly unaffected.

:func:`draw` takes ``n`` examples from a strategy by running Hypothesis's own generation (with a
fixed seed, so a run is reproducible), for tests that need a whole batch to mix into a stream::

    inputs = draw(malformed_payloads(valid_bodies), 300, seed=1)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from processor.core.message import MAX_MESSAGE_BYTES

T = TypeVar("T")

FUZZ_BUCKET = "fuzz-nowhere"
"""The only bucket crier-shaped malformed inputs point at: no real job's artifacts live there."""

CRIER_FIELDS = ("status", "job_name", "job_type", "gcs_path", "url", "refs", "message", "runid")

EDGE_STRINGS = (
    "",
    " ",
    "\x00",
    "\x00success",
    "success\x00",
    "SUCCESS",
    " success",
    "\u200bsuccess",  # zero-width space
    "\u202esseccus",  # right-to-left override
    "\ufeffpending",  # byte-order mark
    "\ud800",  # lone high surrogate (JSON allows the escape; UTF-8 cannot encode it)
    "\udfff\ud800",  # surrogates in the wrong order
    "e\u0301\u0301\u0301",  # stacked combining marks
    "\U0001f4a9" * 64,  # astral-plane characters
    "\u2028\u2029",  # JSON-legal line separators that break JavaScript
    "\\u0000",  # an escaped escape
    "../../../../etc/passwd",  # standalone: not a path
    "%2e%2e%2f%2e%2e%2f",
    "\r\nSet-Cookie: x=y",
    "${jndi:ldap://127.0.0.1/a}",
    "A" * 10_000,
)
"""Strings that break naive handling: NUL, bidi controls, lone surrogates, traversal, injection."""

HOSTILE_FOLDERS = (
    f"gs://{FUZZ_BUCKET}/logs/job/1",
    f"gs://{FUZZ_BUCKET}/logs/job/../../../etc",
    f"gs://{FUZZ_BUCKET}/logs/job/./1",
    f"gs://{FUZZ_BUCKET}//logs//job//1",
    f"gs://{FUZZ_BUCKET}/logs/job/1\x00",
    f"gs://{FUZZ_BUCKET}/logs/job/\ud800",
    f"gs://{FUZZ_BUCKET}/" + "a/" * 2_000 + "1",
    f"gs://{FUZZ_BUCKET}/" + "x" * 5_000,
    f"s3://{FUZZ_BUCKET}/pr-logs/pull/1/job/2",
    "gs://",
    "gs:///path/only",
    "gs://UPPER_case..bucket/logs/1",
    "file:///etc/passwd",
    "http://127.0.0.1:9/logs/1",
    "/local/absolute/path",
    "gs:/one-slash/logs/1",
)
"""Artifact folder URLs that are unusable, hostile, or in the fuzz bucket (never real)."""

HUGE_SIZES = (64 * 1024, 900 * 1024, MAX_MESSAGE_BYTES + 1)
"""Sizes of huge fields: well under, just under and just over the message size limit."""


@dataclass(frozen=True)
class MalformedInput:
    """One malformed input and the kind of fault it is."""

    kind: str
    data: bytes

    def __repr__(self) -> str:
        """Show the kind and a bounded prefix: some inputs are megabytes long."""
        shown = self.data[:80]
        more = f"...+{len(self.data) - 80} bytes" if len(self.data) > 80 else ""
        return f"MalformedInput({self.kind!r}, {shown!r}{more})"


# -- building blocks ----------------------------------------------------------------------------


def repointed(valid: Sequence[bytes]) -> list[bytes]:
    """Return the valid messages with their artifact folders moved to :data:`FUZZ_BUCKET`.

    The damaged copies of valid messages are built from these, so even a damaged copy that
    still decodes (JSON also reads UTF-16 and a byte-order mark) cannot touch a real job's trace.
    """
    moved = []
    for body in valid:
        message = json.loads(body)
        if isinstance(message, dict) and isinstance(message.get("gcs_path"), str):
            _, _, path = message["gcs_path"].partition("://")
            message["gcs_path"] = f"gs://{FUZZ_BUCKET}/{path.partition('/')[2] or 'x'}"
        moved.append(json.dumps(message, ensure_ascii=False).encode())
    return moved


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(EDGE_STRINGS)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(CRIER_FIELDS), children, max_size=5
        )
    ),
    max_leaves=20,
)
"""Any JSON document (as Python values), biased towards crier's field names and edge strings."""


def _dumps(value: object, *, ascii_only: bool = True) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, as a foreign encoder would send them.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _wrong_type_for(field: str) -> st.SearchStrategy[Any]:
    """Values of a type the field never holds (refs wants a list, the others strings)."""
    if field == "refs":
        return st.one_of(
            st.text(max_size=10),
            st.integers(),
            st.dictionaries(st.text(max_size=5), json_values, max_size=3),
            st.lists(_json_scalars, min_size=1, max_size=3),  # items are not objects
            st.lists(
                st.fixed_dictionaries(
                    {"org": _json_scalars, "repo": _json_scalars, "pulls": json_values}
                ),
                min_size=1,
                max_size=2,
            ),
        )
    return st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.lists(_json_scalars, max_size=3),
        st.dictionaries(st.text(max_size=5), _json_scalars, max_size=3),
    )


def _fuzz_folder() -> st.SearchStrategy[str]:
    return st.sampled_from(HOSTILE_FOLDERS) | st.text(max_size=30).map(
        lambda tail: f"gs://{FUZZ_BUCKET}/{tail}"
    )


_states = st.sampled_from(
    ["pending", "success", "failure", "aborted", "error", "triggered", "scheduling"]
)


def _crier_object(
    *, status: st.SearchStrategy[Any] = _states, text: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Build crier-shaped messages pointing at the fuzz bucket; ``text`` fills string fields."""
    strings = text if text is not None else st.text(max_size=20)
    return st.fixed_dictionaries(
        {"status": status, "gcs_path": _fuzz_folder()},
        optional={
            "job_name": strings,
            "job_type": strings,
            "url": strings,
            "message": strings,
            "runid": strings,
            "refs": st.lists(
                st.fixed_dictionaries(
                    {"org": strings, "repo": strings},
                    optional={
                        "base_sha": strings,
                        "pulls": st.lists(
                            st.fixed_dictionaries({"number": st.integers()}), max_size=2
                        ),
                    },
                ),
                max_size=2,
            ),
        },
    )


@st.composite
def _with_wrong_type(draw: st.DrawFn) -> dict[str, Any]:
    message = draw(_crier_object())
    field = draw(st.sampled_from(CRIER_FIELDS))
    if draw(st.booleans()) or field == "gcs_path":
        message[field] = draw(_wrong_type_for(field))
    else:
        message.pop(field, None)
        message[draw(st.sampled_from(CRIER_FIELDS))] = draw(_wrong_type_for(field))
    return message


@st.composite
def _truncated(draw: st.DrawFn, valid: Sequence[bytes]) -> bytes:
    body = draw(st.sampled_from(valid))
    return body[: draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))]


@st.composite
def _bad_encoding(draw: st.DrawFn, valid: Sequence[bytes]) -> bytes:
    body = draw(st.sampled_from(valid))
    text = body.decode()
    how = draw(st.sampled_from(["utf16", "utf32", "bom", "latin1", "invalid", "overlong", "nul"]))
    if how == "utf16":
        return text.encode("utf-16")
    if how == "utf32":
        return text.encode("utf-32-be")
    if how == "bom":
        return b"\xef\xbb\xbf" + body
    if how == "latin1":
        return text.replace('"status"', '"st\u00e4tus"').encode("latin-1", "replace")
    cut = draw(st.integers(min_value=0, max_value=len(body)))
    insert = {"invalid": b"\xff\xfe\x80", "overlong": b"\xc0\xaf", "nul": b"\x00"}[how]
    return body[:cut] + insert + body[cut:]


def _numbers() -> st.SearchStrategy[bytes]:
    literal = st.sampled_from(
        [
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"1e999999",
            b"-0",
            b"9" * 5_000,
            b"0." + b"0" * 5_000 + b"1",
            b"1" + b"0" * 400,
        ]
    )
    folder = f"gs://{FUZZ_BUCKET}/a/1".encode()
    templates = (
        b"%s",
        b'{"status": %s, "gcs_path": "' + folder + b'"}',
        b'{"status": "success", "gcs_path": "'
        + folder
        + b'", "refs": [{"org": "o", "repo": "r", "pulls": [{"number": %s}]}]}',
    )
    return st.tuples(literal, st.sampled_from(templates)).map(
        lambda pair: pair[1].replace(b"%s", pair[0])
    )


def _deep() -> st.SearchStrategy[bytes]:
    depth = st.sampled_from([100, 1_000, 100_000])
    shape = st.sampled_from(["array", "object", "refs"])

    def nest(depth_and_shape: tuple[int, str]) -> bytes:
        depth, kind = depth_and_shape
        if kind == "array":
            return b"[" * depth + b"]" * depth
        if kind == "object":
            return b'{"a":' * depth + b"1" + b"}" * depth
        return (
            b'{"status": "success", "gcs_path": "gs://'
            + FUZZ_BUCKET.encode()
            + b'/a/1", "refs": '
            + b"[" * depth
            + b"]" * depth
            + b"}"
        )

    return st.tuples(depth, shape).map(nest)


def _huge() -> st.SearchStrategy[bytes]:
    size = st.sampled_from(HUGE_SIZES)
    where = st.sampled_from(["job_name", "message", "status", "gcs_path", "refs", "padding"])

    def build(size_and_field: tuple[int, str]) -> bytes:
        size, field = size_and_field
        message: dict[str, Any] = {"status": "success", "gcs_path": f"gs://{FUZZ_BUCKET}/a/1"}
        if field == "refs":
            message["refs"] = [{"org": "o", "repo": "r"}] * (size // 24)
        elif field == "gcs_path":
            message["gcs_path"] = f"gs://{FUZZ_BUCKET}/" + "p" * size
        elif field == "padding":
            message["unknown_field"] = "x" * size
        else:
            message[field] = "\u00e9" * (size // 2)
        return _dumps(message, ascii_only=False)

    return st.tuples(size, where).map(build)


# -- the strategies -----------------------------------------------------------------------------


def malformed_payloads(valid: Sequence[bytes]) -> st.SearchStrategy[MalformedInput]:
    """Malformed crier message bodies, as a Pub/Sub message's data; ``valid`` seeds truncation.

    Kinds: ``json_value`` (any JSON document), ``wrong_types`` (a crier field of the wrong type or
    misplaced), ``edge_strings`` (hostile text in every string field), ``raw_bytes``,
    ``truncated`` (a valid message cut short), ``encoding`` (UTF-16, BOM, invalid UTF-8...),
    ``numbers`` (NaN, 1e999999, 5,000 digits), ``deep`` (nesting up to 100,000 levels) and
    ``huge`` (fields of 64 KiB up to just past the 1 MiB message limit; rarer than the rest).
    """
    if not valid:
        raise ValueError("malformed_payloads needs at least one valid message to truncate")
    valid = repointed(valid)
    kinds: list[tuple[str, st.SearchStrategy[bytes]]] = [
        ("json_value", json_values.map(_dumps)),
        ("wrong_types", _with_wrong_type().map(_dumps)),
        (
            "edge_strings",
            _crier_object(
                status=st.sampled_from(EDGE_STRINGS) | _states,
                text=st.sampled_from(EDGE_STRINGS) | st.text(max_size=20),
            ).map(lambda message: _dumps(message, ascii_only=False)),
        ),
        ("raw_bytes", st.binary(max_size=200)),
        ("truncated", _truncated(valid)),
        ("encoding", _bad_encoding(valid)),
        ("numbers", _numbers()),
        ("deep", _deep()),
    ]
    common = st.sampled_from(kinds).flatmap(
        lambda pair: pair[1].map(lambda data: MalformedInput(pair[0], data))
    )
    huge = _huge().map(lambda data: MalformedInput("huge", data))
    # One draw in 50 is huge: enough to cover the limits, few enough to keep memory modest.
    return st.integers(min_value=0, max_value=49).flatmap(lambda n: huge if n == 0 else common)


def envelope(
    data: bytes, *, message_id: str = "1", publish_time: str | None = None
) -> dict[str, Any]:
    """Return a well-formed Pub/Sub push envelope carrying ``data``."""
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "publishTime": publish_time or "2026-11-01T00:00:00.000Z",
        },
        "subscription": "projects/fuzz/subscriptions/fuzz",
    }


@st.composite
def _truncated_base64(draw: st.DrawFn, valid: Sequence[bytes]) -> bytes:
    body = envelope(draw(st.sampled_from(valid)))
    encoded = body["message"]["data"]
    # Cut to a length that is not a multiple of 4: never valid base64.
    keep = draw(st.integers(min_value=1, max_value=len(encoded) - 1))
    if keep % 4 == 0:
        keep -= 1
    body["message"]["data"] = encoded[:keep]
    return json.dumps(body).encode()


@st.composite
def _foreign_base64(draw: st.DrawFn, valid: Sequence[bytes]) -> bytes:
    body = envelope(draw(st.sampled_from(valid)))
    encoded: str = body["message"]["data"]
    how = draw(st.sampled_from(["urlsafe", "whitespace", "junk", "unpadded"]))
    if how == "urlsafe":
        encoded = base64.urlsafe_b64encode(b"\xfb\xff" + draw(st.sampled_from(valid))).decode()
    elif how == "whitespace":
        encoded = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + " \t"
    elif how == "junk":
        cut = draw(st.integers(min_value=0, max_value=len(encoded)))
        encoded = (
            encoded[:cut]
            + draw(st.sampled_from(["!", "*", "\u00e9", "=", "\x00"]))
            + (encoded[cut:])
        )
    else:
        encoded = encoded.rstrip("=") + ("" if encoded.endswith("=") else "A")
    body["message"]["data"] = encoded
    return json.dumps(body).encode()


@st.composite
def _envelope_wrong_types(draw: st.DrawFn, valid: Sequence[bytes]) -> bytes:
    body: dict[str, Any] = envelope(draw(st.sampled_from(valid)))
    target = draw(
        st.sampled_from(
            ["message", "data", "publishTime", "messageId", "deliveryAttempt", "drop_publish"]
        )
    )
    value = draw(json_values)
    if target == "message":
        body["message"] = value if not isinstance(value, dict) else [value]
    elif target == "drop_publish":
        del body["message"]["publishTime"]
    elif target == "deliveryAttempt":
        body["deliveryAttempt"] = draw(
            st.sampled_from(["3", 2.5, -1, 2**80, True, [], {}, "\ud800"])
        )
    elif target == "publishTime":
        body["message"]["publishTime"] = draw(
            st.sampled_from(
                ["", "yesterday", "2026-13-45T25:61:61Z", "0000-00-00T00:00:00Z", "9" * 50]
            )
            | _json_scalars.filter(lambda item: not isinstance(item, str))
        )
    else:
        body["message"][target] = value if not isinstance(value, str) else [value]
    return _dumps(body)


def malformed_envelopes(
    valid: Sequence[bytes], payloads: st.SearchStrategy[MalformedInput] | None = None
) -> st.SearchStrategy[MalformedInput]:
    """Malformed push request bodies; ``valid`` are good crier messages to wrap and damage.

    Kinds: ``payload/<kind>`` (a good envelope around a malformed message; see
    :func:`malformed_payloads`), ``truncated_base64``, ``foreign_base64`` (URL-safe alphabet,
    line breaks, junk characters, bad padding), ``envelope_types`` (wrong types, a missing
    publish time, absurd delivery attempts), ``envelope_json`` (any JSON document) and
    ``envelope_bytes`` (not JSON at all).
    """
    inner = payloads if payloads is not None else malformed_payloads(valid)
    valid = repointed(valid)
    wrapped = inner.map(
        lambda item: MalformedInput(f"payload/{item.kind}", _dumps(envelope(item.data)))
    )
    kinds: list[tuple[str, st.SearchStrategy[bytes]]] = [
        ("truncated_base64", _truncated_base64(valid)),
        ("foreign_base64", _foreign_base64(valid)),
        ("envelope_types", _envelope_wrong_types(valid)),
        ("envelope_json", json_values.map(_dumps)),
        ("envelope_bytes", st.binary(max_size=200)),
    ]
    damaged = st.sampled_from(kinds).flatmap(
        lambda pair: pair[1].map(lambda data: MalformedInput(pair[0], data))
    )
    return st.one_of(wrapped, damaged)


def draw(strategy: st.SearchStrategy[T], n: int, *, seed: int = 0) -> list[T]:
    """Return ``n`` examples of ``strategy`` from Hypothesis's generation phase (reproducible).

    Uses Hypothesis as a test would (``@given``), not ``.example()``, so the examples have its
    usual spread from simple to complex; the fixed ``seed`` makes the batch the same every run.
    """
    drawn: list[T] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: T) -> None:
        drawn.append(example)

    collect()
    return drawn[:n]
