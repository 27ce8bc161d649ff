"""strip_secrets' fast pre-tests never change its answer: it equals running every pattern always."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core import redact

LONG_S, DOTLESS_I, DOTTED_I, KELVIN = "\u017f", "\u0131", "\u0130", "\u212a"
"""Letters that ``(?i)`` folds into ASCII s, i, i and k though ``str.lower`` does not."""

PIECES = [
    *(
        "password",
        "PassWord",
        f"pa{LONG_S}{LONG_S}word",
        "passwd",
        "token",
        "TOKEN",
        "toKen",
        "secret",
    ),
    *(
        "SECRET",
        f"{LONG_S}ecret",
        "api_key",
        "apikey",
        "API-KEY",
        f"ap{DOTLESS_I}_key",
        f"ap{DOTTED_I}key",
        "key",
    ),
    *(
        "Authorization",
        f"AUTHOR{DOTTED_I}ZATION",
        f"author{DOTLESS_I}zation",
        "Authoriz",
        "ation",
        "bearer ",
    ),
    *("Basic ", "token ", "=", ":", " ", "\t", "'", '"', "&", ".", "_", "-", "@", "://"),
    *("https://", "user:pw@", "host/path", "ghp_", "gho_", "github_pat_", "glpat-"),
    *(
        "ya29.",
        "xoxb-",
        "abcdefghijklmnopqrstuvwxyz0123",
        "\u00e9",
        DOTTED_I,
        DOTLESS_I,
        LONG_S,
        KELVIN,
        f"to{KELVIN}en",
    ),
    *("Negotiate ", "NTLM ", "digest", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"),
    *("AIza", "npm_", "sk_live_", "AKIA", "ABCDEFGHIJKLMNOP", "hooks.slack.com/services/"),
    *("?", "X-Goog-Signature=", "sig=", "--password ", "--token=", "login", " -p ", "\t-P"),
    *("private_key", "client_secret", "credential", "}", ","),
]


def every_pattern(text: str) -> str:
    """Return the reference: each pattern applied unconditionally, in strip_secrets' order."""
    text = redact._PRIVATE_KEY.sub(redact.REDACTED, text)
    text = redact._URL_USERINFO.sub(r"\1", text)
    text = redact._AUTH_HEADER.sub(rf"\g<1>{redact.REDACTED}", text)
    text = redact._AUTH_SCHEME.sub(rf"\g<1>{redact.REDACTED}", text)
    text = redact._TOKEN_LIKE.sub(redact.REDACTED, text)
    text = redact._SIGNED_URL_PARAM.sub(rf"\g<1>{redact.REDACTED}", text)
    text = redact._CLI_SECRET.sub(rf"\g<1>{redact.REDACTED}", text)
    return redact._SECRET_ASSIGNMENT.sub(rf"\g<1>{redact.REDACTED}", text)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=16))
def test_prefilters_agree_with_every_pattern(parts: list[str]) -> None:
    """Pieces of secrets, case-folding look-alikes and arbitrary text scrub identically."""
    text = "".join(parts)
    assert redact.strip_secrets(text) == every_pattern(text)


def test_non_ascii_case_folding_still_redacts() -> None:
    """A dotless-i "authorization" header and a long-s "password" are still redacted."""
    header = f"author{DOTLESS_I}zation"
    assert redact.strip_secrets(f"{header}: hunter2") == f"{header}: {redact.REDACTED}"
    word = f"pa{LONG_S}{LONG_S}word"
    assert redact.strip_secrets(f"{word}=hunter2") == f"{word}={redact.REDACTED}"


URL_USERINFO_AS_FIRST_WRITTEN = re.compile(r"(?i)([a-z][a-z0-9+.\-]*://)[^/\s?#]*@")
SECRET_ASSIGNMENT_AS_FIRST_WRITTEN = re.compile(
    r"(?i)([a-z0-9_.\-]*(?:password|passwd|token|secret|api[_-]?key|private[_-]?key"
    r"|credential)[a-z0-9_\-]*['\"]?\s*[=:]\s*['\"]?)[^\s&'\",}]+"
)
"""The patterns before they were anchored at the start of a run (quadratic on long words)."""


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=16))
def test_run_anchored_patterns_replace_exactly_as_before(parts: list[str]) -> None:
    """The linear-time patterns give the same text as the quadratic ones they replace."""
    text = "".join(parts)
    assert redact._URL_USERINFO.sub(r"\1", text) == URL_USERINFO_AS_FIRST_WRITTEN.sub(r"\1", text)
    secret = rf"\g<1>{redact.REDACTED}"
    assert redact._SECRET_ASSIGNMENT.sub(secret, text) == SECRET_ASSIGNMENT_AS_FIRST_WRITTEN.sub(
        secret, text
    )
