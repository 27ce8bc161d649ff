"""Keep secrets and bulk out of span attributes.

Clone commands and errors can carry credentials (tokens in clone URLs, ``Authorization`` headers
passed with ``-c http.extraheader``); job descriptions can be kilobytes. Everything textual that
comes from an artifact goes through :func:`scrub` before it becomes an attribute.
"""

from __future__ import annotations

import functools
import re

REDACTED = "REDACTED"

MAX_ATTRIBUTE_CHARS = 1024
"""Long enough for any useful description or command line; bounded so a span stays small."""

# Up to the LAST "@" of the authority: "https://user@host:PASSWORD@host/" hides the password too.
# _URL_USERINFO and _SECRET_ASSIGNMENT start only where a run of their leading characters starts
# (the lookbehind): tried from every position, a long run of word characters costs time quadratic
# in its length (seconds for a few KiB of test output). The leftmost match is the same either way;
# _URL_USERINFO keeps a run's non-letter head in its group so the replacement text is the same.
_URL_USERINFO = re.compile(r"(?i)(?<![a-z0-9+.\-])([0-9+.\-]*[a-z][a-z0-9+.\-]*://)[^/\s?#]*@")
_AUTH_HEADER = re.compile(
    r"(?i)\b(authorization\s*[:=]\s*['\"]?)(?!REDACTED)(?:[a-z][a-z0-9-]*(?:\s+|(?=['\"])))?['\"]?[^\s'\"]+"
)
# A credential after a scheme word has a digit, a capital or base64 punctuation somewhere
# (case-sensitive lookahead): prose such as "a basic endpoint" or "digest mismatch" is no secret.
_AUTH_SCHEME = re.compile(
    r"(?i)\b((?:bearer|negotiate|basic|digest|ntlm)\s*['\"]?)"
    r"(?=(?-i:[^\s'\"]*[0-9A-Z+/=]))[^\s'\"]{8,}"
)
_PRIVATE_KEY = re.compile(
    r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# Formats from gitleaks' rule set (config/gitleaks.toml): GitHub, GitLab, Google OAuth and API
# keys, Slack tokens and webhooks, npm, Stripe, AWS access key IDs.
_TOKEN_LIKE = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{10,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{10,}"
    r"|ya29\.[A-Za-z0-9_\-]{10,}|xox[abposre]-[A-Za-z0-9\-]{10,}|AIza[A-Za-z0-9_\-]{35}"
    r"|npm_[A-Za-z0-9]{36}|[sr]k_(?:live|test|prod)_[A-Za-z0-9]{10,99}"
    r"|(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})"
    r"|hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{10,}"
)
_SIGNED_URL_PARAM = re.compile(
    r"(?i)([?&](?:x-(?:goog|amz)-(?:signature|credential|security-token)|signature|sig"
    r"|access_token|token|key|apikey|api_key|password)=)[^&\s'\"#]+"
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?<![a-z0-9_.\-])([a-z0-9_.\-]*(?:password|passwd|token|secret|api[_-]?key|private[_-]?key"
    r"|credential)[a-z0-9_\-]*['\"]?\s*[=:]\s*['\"]?)[^\s&'\",}]+"
)
_CLI_SECRET = re.compile(
    r"(?i)(--(?:password|passwd|token|secret|api-key|client-secret)(?:\s+|=)['\"]?"
    r"|\blogin\b[^|;&\n]*?\s-p\s*['\"]?)[^\s'\"]+"
)

_SECRET_WORD = re.compile(
    r"(?i)password|passwd|token|secret|api[_-]?key|private[_-]?key|credential"
)
"""Every match of ``_SECRET_ASSIGNMENT`` contains a match of this (same flags), which is found
~10x faster: the full pattern's leading character class rescans every word it starts in."""
_SECRET_WORDS = (
    "password",
    "passwd",
    "token",
    "secret",
    "apikey",
    "api_key",
    "api-key",
    "private_key",
    "private-key",
    "privatekey",
    "credential",
)
"""The same words, lowercase, for ASCII text (where ``(?i)`` is plain ASCII case folding)."""
_TOKEN_PREFIXES = (
    "gh",
    "github_pat_",
    "glpat-",
    "ya29.",
    "xox",
    "AIza",
    "npm_",
    "k_live_",
    "k_test_",
    "k_prod_",
    "A3T",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "hooks.slack.com",
)
"""Each ``_TOKEN_LIKE`` match contains one of these (that pattern is case-sensitive)."""
_SCHEMES = ("bearer", "negotiate", "basic", "digest", "ntlm")


def strip_secrets(text: str) -> str:
    """Remove credentials from ``text``: URL user-info, headers, keys, tokens, signed URLs."""
    # Each pattern runs only where it can match, after a cheap test that every match passes:
    # most texts hold no secret, and scrubbing was a quarter of the pipeline's CPU time. For
    # ASCII text a lowercase substring test is exact; ``(?i)`` also folds some non-ASCII letters
    # (U+0130, U+0131, U+017F) into ASCII ones, so other text takes the patterns' own tests.
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub(REDACTED, text)
    if "@" in text and "://" in text:
        text = _URL_USERINFO.sub(r"\1", text)
    folded = text.lower() if text.isascii() else None
    if folded is None or "authorization" in folded:
        text = _AUTH_HEADER.sub(rf"\g<1>{REDACTED}", text)
    if folded is None or any(scheme in folded for scheme in _SCHEMES):
        text = _AUTH_SCHEME.sub(rf"\g<1>{REDACTED}", text)
    if any(prefix in text for prefix in _TOKEN_PREFIXES):
        text = _TOKEN_LIKE.sub(REDACTED, text)
    if "=" in text and ("?" in text or "&" in text):
        text = _SIGNED_URL_PARAM.sub(rf"\g<1>{REDACTED}", text)
    if "--" in text or "-p" in text or "-P" in text:
        text = _CLI_SECRET.sub(rf"\g<1>{REDACTED}", text)
    folded = text.lower() if text.isascii() else None
    if (
        any(word in folded for word in _SECRET_WORDS)
        if folded is not None
        else _SECRET_WORD.search(text)
    ):
        text = _SECRET_ASSIGNMENT.sub(rf"\g<1>{REDACTED}", text)
    return text


def cap(text: str, limit: int = MAX_ATTRIBUTE_CHARS) -> str:
    """Truncate ``text`` to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def scrub(text: str, limit: int = MAX_ATTRIBUTE_CHARS) -> str:
    """Strip secrets, then cap the length: the one door for artifact text into attributes."""
    stripped = _strip_short(text) if len(text) <= _REMEMBERED_CHARS else strip_secrets(text)
    return cap(stripped, limit)


_REMEMBERED_CHARS = 256
"""Short texts repeat across a job's spans and across jobs (container, step and test names,
label values): their scrubbed form is kept, so the patterns run once per distinct text. Only
short ones, so the cache stays small (8,192 x 256 characters) whatever the input."""


@functools.lru_cache(maxsize=8192)
def _strip_short(text: str) -> str:
    return strip_secrets(text)
