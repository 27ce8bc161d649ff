"""OIDC verification of Pub/Sub push requests, against a local issuer serving JWKS over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import jwt
import pytest
from support.oidc_issuer import LocalOidcIssuer, generate_signing_key

from processor.transports.oidc import (
    HttpJwksFetcher,
    JwksKeyCache,
    OidcPolicy,
    OidcVerifier,
    Rejection,
    Unauthenticated,
    UnusableJwks,
    VerifierUnavailable,
    max_age_seconds,
    parse_jwks,
)

AUDIENCE = "https://prowtrace.example.run.app/push"
PUSHER = "crier-push@prow-project.iam.gserviceaccount.com"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        """Start at an arbitrary instant."""
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the current instant."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def issuer() -> Iterator[LocalOidcIssuer]:
    """Run a local issuer for the test."""
    with LocalOidcIssuer() as running:
        yield running


def _policy(issuer: LocalOidcIssuer) -> OidcPolicy:
    return OidcPolicy(
        audience=AUDIENCE, allowed_emails=frozenset({PUSHER}), jwks_url=issuer.jwks_url
    )


@pytest.fixture
def verifier(issuer: LocalOidcIssuer) -> OidcVerifier:
    """Verify against the local issuer's JWKS with the default cache."""
    return OidcVerifier(_policy(issuer))


def _verifier_with_clock(issuer: LocalOidcIssuer, clock: FakeClock) -> OidcVerifier:
    cache = JwksKeyCache(HttpJwksFetcher(issuer.jwks_url), clock=clock)
    return OidcVerifier(_policy(issuer), key_cache=cache)


def _rejection(verifier: OidcVerifier, header: str | None) -> Rejection:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(header)
    return caught.value.reason


def _bearer(token: str) -> str:
    return f"Bearer {token}"


# -- accepted ----------------------------------------------------------------------------------


def test_valid_token_is_accepted(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A Google-shaped token for the audience and an allowed pusher yields that pusher's email."""
    caller = verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER)))
    assert caller.email == PUSHER


def test_bearer_scheme_is_case_insensitive(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """The auth scheme is matched case-insensitively, as HTTP requires."""
    caller = verifier.verify(f"bearer {issuer.mint(AUDIENCE, PUSHER)}")
    assert caller.email == PUSHER


def test_expiry_within_leeway_is_accepted(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token that expired less than the leeway ago still passes (clock skew)."""
    token = issuer.mint(AUDIENCE, PUSHER, issued_at=int(time.time()) - 3610, expires_in=3600)
    assert verifier.verify(_bearer(token)).email == PUSHER


# -- rejected before any key is needed ---------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_rejected(verifier: OidcVerifier, header: str | None) -> None:
    """No Authorization header (or a blank one) is rejected as missing."""
    assert _rejection(verifier, header) is Rejection.MISSING_HEADER


def test_non_bearer_scheme_is_rejected(verifier: OidcVerifier) -> None:
    """Basic credentials are not a bearer token."""
    assert _rejection(verifier, "Basic dXNlcjpwYXNz") is Rejection.NOT_BEARER


def test_garbage_token_is_rejected_without_fetching_keys(
    issuer: LocalOidcIssuer, verifier: OidcVerifier
) -> None:
    """A token that is not a JWT is malformed, and is judged without contacting the JWKS."""
    assert _rejection(verifier, "Bearer not.a-jwt") is Rejection.MALFORMED_TOKEN
    assert issuer.jwks_requests == 0


def test_hs256_token_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """An HMAC-signed token (the algorithm-confusion attack) is refused by algorithm."""
    claims = jwt.decode(issuer.mint(AUDIENCE, PUSHER), options={"verify_signature": False})
    forged = jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": issuer.kid})
    assert _rejection(verifier, _bearer(forged)) is Rejection.UNSUPPORTED_ALGORITHM


# -- rejected by signature ---------------------------------------------------------------------


def test_foreign_signature_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token signed by another key under the issuer's key id fails the signature check."""
    forged = issuer.mint(AUDIENCE, PUSHER, key=generate_signing_key())
    assert _rejection(verifier, _bearer(forged)) is Rejection.BAD_SIGNATURE


def test_unknown_key_id_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token naming a key id the JWKS does not hold is rejected as unknown key."""
    token = issuer.mint(AUDIENCE, PUSHER, kid="never-published", key=generate_signing_key())
    assert _rejection(verifier, _bearer(token)) is Rejection.UNKNOWN_KEY_ID


# -- rejected by claims ------------------------------------------------------------------------


def test_expired_token_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token that expired longer ago than the leeway is rejected as expired."""
    token = issuer.mint(AUDIENCE, PUSHER, issued_at=int(time.time()) - 7200, expires_in=3600)
    assert _rejection(verifier, _bearer(token)) is Rejection.EXPIRED


def test_future_not_before_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token whose nbf is beyond the leeway in the future is not yet valid."""
    token = issuer.mint(AUDIENCE, PUSHER, not_before=int(time.time()) + 120)
    assert _rejection(verifier, _bearer(token)) is Rejection.NOT_YET_VALID


def test_future_issued_at_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token issued beyond the leeway in the future is not yet valid."""
    token = issuer.mint(AUDIENCE, PUSHER, issued_at=int(time.time()) + 120)
    assert _rejection(verifier, _bearer(token)) is Rejection.NOT_YET_VALID


def test_wrong_audience_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token minted for another endpoint is rejected as wrong audience."""
    token = issuer.mint("https://other.example/push", PUSHER)
    assert _rejection(verifier, _bearer(token)) is Rejection.WRONG_AUDIENCE


def test_wrong_issuer_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """A token from an issuer other than Google's is rejected as wrong issuer."""
    token = issuer.mint(AUDIENCE, PUSHER, issuer="https://evil.example")
    assert _rejection(verifier, _bearer(token)) is Rejection.WRONG_ISSUER


def test_missing_required_claim_is_rejected(
    issuer: LocalOidcIssuer, verifier: OidcVerifier
) -> None:
    """A signed token without an exp claim is rejected as missing a claim."""
    claims = {"aud": AUDIENCE, "iss": "https://accounts.google.com", "sub": "1"}
    token = issuer.mint_claims({**claims, "iat": int(time.time()), "email": PUSHER})
    assert _rejection(verifier, _bearer(token)) is Rejection.MISSING_CLAIM


def test_email_not_in_allowed_list_is_rejected(
    issuer: LocalOidcIssuer, verifier: OidcVerifier
) -> None:
    """A valid Google token for some other service account is not allowed."""
    token = issuer.mint(AUDIENCE, "someone-else@other.iam.gserviceaccount.com")
    assert _rejection(verifier, _bearer(token)) is Rejection.EMAIL_NOT_ALLOWED


def test_unverified_email_is_rejected(issuer: LocalOidcIssuer, verifier: OidcVerifier) -> None:
    """An allowed email whose email_verified is false is rejected as not verified."""
    token = issuer.mint(AUDIENCE, PUSHER, email_verified=False)
    assert _rejection(verifier, _bearer(token)) is Rejection.EMAIL_NOT_VERIFIED


# -- key fetching and caching ------------------------------------------------------------------


def test_jwks_is_fetched_once_for_many_verifications(
    issuer: LocalOidcIssuer, verifier: OidcVerifier
) -> None:
    """Fifty verifications with a warm cache cost one JWKS request."""
    token = _bearer(issuer.mint(AUDIENCE, PUSHER))
    for _ in range(50):
        verifier.verify(token)
    assert issuer.jwks_requests == 1


def test_concurrent_cold_start_fetches_jwks_once() -> None:
    """Many threads verifying at once against a cold cache share a single slow JWKS fetch."""
    with LocalOidcIssuer(jwks_delay_seconds=0.2) as issuer:
        verifier = OidcVerifier(_policy(issuer))
        token = _bearer(issuer.mint(AUDIENCE, PUSHER))
        start = threading.Barrier(16)
        emails: list[str] = []

        def verify() -> None:
            start.wait()
            emails.append(verifier.verify(token).email)

        threads = [threading.Thread(target=verify) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert emails == [PUSHER] * 16
        assert issuer.jwks_requests == 1


def test_jwks_endpoint_down_is_unavailable_not_unauthenticated(
    issuer: LocalOidcIssuer, verifier: OidcVerifier
) -> None:
    """When the JWKS answers 503, a valid token gets VerifierUnavailable (retryable)."""
    issuer.jwks_available = False
    with pytest.raises(VerifierUnavailable):
        verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER)))


def test_unreachable_jwks_is_unavailable() -> None:
    """A JWKS URL nobody listens on gives VerifierUnavailable."""
    with LocalOidcIssuer() as issuer:
        token = _bearer(issuer.mint(AUDIENCE, PUSHER))
        policy = _policy(issuer)
    with pytest.raises(VerifierUnavailable):
        OidcVerifier(policy).verify(token)


def test_failed_fetch_is_not_retried_until_the_interval_passes(issuer: LocalOidcIssuer) -> None:
    """After a failed fetch, callers fail fast; after the interval, a recovered JWKS is used."""
    clock = FakeClock()
    verifier = _verifier_with_clock(issuer, clock)
    token = _bearer(issuer.mint(AUDIENCE, PUSHER))
    issuer.jwks_available = False
    for _ in range(5):
        with pytest.raises(VerifierUnavailable):
            verifier.verify(token)
    assert issuer.jwks_requests == 1
    issuer.jwks_available = True
    clock.advance(31)
    assert verifier.verify(token).email == PUSHER


def test_rotated_key_is_accepted_after_refresh(issuer: LocalOidcIssuer) -> None:
    """A token signed with a newly published key id is accepted after a refetch of the JWKS."""
    clock = FakeClock()
    verifier = _verifier_with_clock(issuer, clock)
    verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER)))
    issuer.rotate("local-key-2")
    clock.advance(60)  # well inside max-age: only the unknown kid can cause the refetch
    assert verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER))).email == PUSHER
    assert issuer.jwks_requests == 2


def test_unknown_key_ids_do_not_refetch_within_interval(issuer: LocalOidcIssuer) -> None:
    """Tokens with made-up key ids cause at most one refetch per interval."""
    clock = FakeClock()
    verifier = _verifier_with_clock(issuer, clock)
    verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER)))
    stranger = generate_signing_key()
    for n in range(10):
        token = issuer.mint(AUDIENCE, PUSHER, kid=f"made-up-{n}", key=stranger)
        assert _rejection(verifier, _bearer(token)) is Rejection.UNKNOWN_KEY_ID
    assert issuer.jwks_requests == 1


def test_cache_control_max_age_is_honoured() -> None:
    """Keys are reused until the JWKS response's max-age runs out, then refetched."""
    with LocalOidcIssuer(cache_control="public, max-age=600, must-revalidate") as issuer:
        clock = FakeClock()
        verifier = _verifier_with_clock(issuer, clock)
        token = _bearer(issuer.mint(AUDIENCE, PUSHER))
        verifier.verify(token)
        clock.advance(599)
        verifier.verify(token)
        assert issuer.jwks_requests == 1
        clock.advance(2)
        verifier.verify(token)
        assert issuer.jwks_requests == 2


# -- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("public, max-age=19593, must-revalidate, no-transform", 19593),
        ("MAX-AGE=60", 60),
        ('max-age="30"', 30),
        ("no-store", 0),
        ("private, no-cache, max-age=600", 0),
        ("s-maxage=100", None),
        ("public", None),
        (None, None),
    ],
)
def test_max_age_seconds_reads_cache_control(header: str | None, expected: int | None) -> None:
    """max-age is read case-insensitively; no-cache/no-store mean 0; otherwise None."""
    assert max_age_seconds(header) == expected


def test_parse_jwks_keeps_only_rs256_signing_keys() -> None:
    """Encryption keys, other algorithms and key-id-less keys are skipped."""
    with LocalOidcIssuer() as issuer:
        [rsa_key] = issuer.jwks()["keys"]
    document = {
        "keys": [
            rsa_key,
            {**rsa_key, "kid": "enc", "use": "enc"},
            {**rsa_key, "kid": "rs512", "alg": "RS512"},
            {k: v for k, v in rsa_key.items() if k != "kid"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        ]
    }
    assert list(parse_jwks(json.dumps(document).encode())) == [rsa_key["kid"]]


@pytest.mark.parametrize("document", [b"<html>", b"[]", b'{"keys": "x"}', b'{"keys": []}'])
def test_parse_jwks_rejects_unusable_documents(document: bytes) -> None:
    """A document that is not JSON, has no keys list, or no usable key is an error."""
    with pytest.raises(UnusableJwks, match="JWKS"):
        parse_jwks(document)


@pytest.mark.parametrize(
    ("audience", "emails"), [("", frozenset({PUSHER})), (AUDIENCE, frozenset[str]())]
)
def test_policy_requires_audience_and_an_email(audience: str, emails: frozenset[str]) -> None:
    """A policy with no audience or no allowed email is refused at construction."""
    with pytest.raises(ValueError, match="OidcPolicy"):
        OidcPolicy(audience=audience, allowed_emails=emails)
