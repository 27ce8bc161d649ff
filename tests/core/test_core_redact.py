"""Secrets and bulk are kept out of span attributes by scrub()."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from processor.core.redact import MAX_ATTRIBUTE_CHARS, REDACTED, cap, scrub, strip_secrets

SECRET = "s3cr3tV4lue9876"  # noqa: S105 - a planted fake secret that must not survive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            f"git fetch https://x-access-token:{SECRET}@github.com/k/k.git",
            "git fetch https://github.com/k/k.git",
            id="https user:password",
        ),
        pytest.param(
            f"git fetch https://{SECRET}@github.com/k/k.git",
            "git fetch https://github.com/k/k.git",
            id="https token only",
        ),
        pytest.param(
            f"git fetch http://oauth2:{SECRET}@gitlab.example.com/g/p",
            "git fetch http://gitlab.example.com/g/p",
            id="http",
        ),
        pytest.param(
            f"git clone ssh://git:{SECRET}@git.example.com:2222/r.git",
            "git clone ssh://git.example.com:2222/r.git",
            id="ssh",
        ),
        pytest.param(
            f"git clone git+https://bot:{SECRET}@example.com/r",
            "git clone git+https://example.com/r",
            id="git+https",
        ),
        pytest.param(
            f"fatal: unable to access 'HTTPS://u:{SECRET}@GitHub.com/k/k.git/': 502",
            "fatal: unable to access 'HTTPS://GitHub.com/k/k.git/': 502",
            id="upper-case scheme, quoted",
        ),
    ],
)
def test_url_user_info_is_removed(text: str, expected: str) -> None:
    """User-info is cut from URLs of any scheme, leaving the rest of the text."""
    assert strip_secrets(text) == expected


def test_url_without_user_info_is_unchanged() -> None:
    """A URL without user-info, and an scp-style git address, are left alone."""
    text = "git fetch https://github.com/kubernetes/kubernetes.git git@github.com:k/k.git"
    assert strip_secrets(text) == text


@pytest.mark.parametrize(
    "text",
    [
        f"git -c http.extraheader=Authorization: Bearer {SECRET} fetch",
        f"git -c http.extraheader=AUTHORIZATION: basic {SECRET} fetch",
        f"curl -H 'Authorization: token {SECRET}' https://api.github.com",
        f"authorization={SECRET}",
        f'{{"Authorization": "{SECRET}"}}'.replace('": "', ": "),
    ],
)
def test_authorization_header_value_is_redacted(text: str) -> None:
    """The value of an Authorization header (any scheme word) is replaced."""
    scrubbed = strip_secrets(text)
    assert SECRET not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    "token",
    [
        "ghp_" + "a" * 36,
        "gho_" + "B1" * 18,
        "ghs_" + "c2" * 18,
        "github_pat_" + "11ABCDEFG0" + "_" + "x" * 40,
        "glpat-" + "Ab3-dE5_fG7hJ9kL1mN2",
        "ya29." + "a0AfH6SMB" + "x" * 20,
        "xoxb-" + "1234567890-abcdefghij",
    ],
)
def test_token_shaped_strings_are_redacted(token: str) -> None:
    """GitHub, GitLab, Google OAuth and Slack token shapes are replaced wherever they appear."""
    scrubbed = strip_secrets(f"error: bad credentials {token} for push")
    assert token not in scrubbed
    assert scrubbed == f"error: bad credentials {REDACTED} for push"


@pytest.mark.parametrize(
    "text",
    [
        f"password={SECRET}",
        f"PASSWORD: {SECRET}",
        f"mysql -u root --opts passwd={SECRET}&x=1",
        f"token={SECRET}",
        f"secret = {SECRET}",
        f"api_key={SECRET}",
        f"API-KEY: {SECRET}",
    ],
)
def test_secret_assignments_are_redacted(text: str) -> None:
    """``password=``, ``token:``, ``secret =``, ``api_key=`` style values are replaced."""
    scrubbed = strip_secrets(text)
    assert SECRET not in scrubbed
    assert REDACTED in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "[sig-network] Services should create a basic endpoint from pod",
        "sha256 digest mismatch for layer",
        "falls back to basic authentication when the bearer flow is disabled",
    ],
)
def test_prose_after_an_auth_scheme_word_is_unchanged(text: str) -> None:
    """A scheme word followed by an ordinary lowercase word is prose, not a credential."""
    assert strip_secrets(text) == text


def test_ordinary_text_is_unchanged() -> None:
    """Text without secrets passes through unchanged."""
    text = "Job failed: 3 tests failed in k8s.io/kubernetes/pkg/scheduler (exit code 1)"
    assert scrub(text) == text


def test_cap_leaves_short_text_alone() -> None:
    """Text within the limit is returned as is."""
    assert cap("x" * MAX_ATTRIBUTE_CHARS) == "x" * MAX_ATTRIBUTE_CHARS


def test_cap_truncates_to_the_limit_and_marks_the_cut() -> None:
    """Longer text is cut to exactly the limit, ending with an ellipsis."""
    capped = cap("abcdefghij", 5)
    assert capped == "abcd…"


def test_scrub_caps_a_kilobytes_long_description() -> None:
    """A description of kilobytes is capped at MAX_ATTRIBUTE_CHARS."""
    assert len(scrub("Job failed. " * 1000)) == MAX_ATTRIBUTE_CHARS


def test_scrub_strips_before_capping() -> None:
    """A secret cut in half by the cap cannot survive: secrets go first, then the length."""
    text = "a" * 10 + f" https://u:{SECRET}@h/x"
    assert SECRET[:5] not in scrub(text, 20)


def test_user_info_right_after_an_ansi_colour_code_is_removed() -> None:
    """User-info is removed from a URL printed in bold (``ESC[1m`` glued to the scheme)."""
    text = f"fatal: could not read from \x1b[1mhttps://bot:{SECRET}@github.com/k/k\x1b[0m"
    assert SECRET not in scrub(text)


@pytest.mark.parametrize(
    "text",
    [f"GITHUB_TOKEN={SECRET}", f"DB_PASSWORD={SECRET}", f"client_secret = {SECRET}"],
)
def test_prefixed_secret_assignments_are_redacted(text: str) -> None:
    """Secret assignments whose name has a prefix (``GITHUB_TOKEN=``) are redacted too."""
    assert SECRET not in strip_secrets(text)


_TOKEN = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"], include_characters="-_.~:%+!$"),
    min_size=12,
    max_size=40,
)
_SCHEME = st.sampled_from(["https", "http", "ssh", "git", "git+ssh", "s3", "HTTPS", "ftp"])
_CONTEXT = st.text(max_size=60)


@settings(max_examples=300, deadline=None)
@example(prefix="", scheme="https", user="x-access-token", token="ghp_" + "a" * 36, suffix="")
@given(
    prefix=_CONTEXT,
    scheme=_SCHEME,
    user=st.sampled_from(["", "x-access-token", "oauth2", "git"]),
    token=_TOKEN,
    suffix=_CONTEXT,
)
def test_scrub_never_keeps_a_token_from_url_user_info(
    prefix: str, scheme: str, user: str, token: str, suffix: str
) -> None:
    """A token placed in a URL's user-info never survives scrub, whatever surrounds the URL."""
    assume(token not in prefix + suffix)
    userinfo = f"{user}:{token}" if user else token
    text = f"{prefix} {scheme}://{userinfo}@github.com/kubernetes/kubernetes.git {suffix}"
    assert token not in scrub(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=3000), limit=st.integers(min_value=1, max_value=2000))
def test_scrub_never_exceeds_the_limit(text: str, limit: int) -> None:
    """Whatever the text, scrub returns at most ``limit`` characters."""
    assert len(scrub(text, limit)) <= limit


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_scrub_never_exceeds_the_default_limit(text: str) -> None:
    """With the default limit, scrub returns at most MAX_ATTRIBUTE_CHARS characters."""
    assert len(scrub(text)) <= MAX_ATTRIBUTE_CHARS
