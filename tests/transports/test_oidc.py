"""OIDC verification of Pub/Sub push requests, against a local issuer serving JWKS over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from support.oidc_issuer import LocalOidcIssuer, generate_signing_key, remove_signature

from processor.transports.oidc import (
    GOOGLE_JWKS_URL,
    JWKS_COOLDOWN_SECONDS,
    OidcPolicy,
    OidcVerifier,
    Rejection,
    Unauthenticated,
    VerifierUnavailable,
    google_jwks_client,
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


def mint_with(local: LocalOidcIssuer, /, **claims: Any) -> str:  # noqa: ANN401 - mint's keywords
    """Mint a pusher's token with some claims changed; times are seconds from now, taken now."""
    fields: dict[str, Any] = {"audience": AUDIENCE, "email": PUSHER, **claims}
    now = int(time.time())
    fields.update({key: now + fields[key] for key in ("issued_at", "not_before") if key in fields})
    return local.mint(fields.pop("audience"), fields.pop("email"), **fields)


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


# -- key fetching and caching (PyJWKClient, configured by the verifier) -----------------------


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


@pytest.mark.parametrize(
    "document",
    [b"<html>rate limited</html>", b'{"keys": []}', b'{"keys": [{"kty": "RSA", "n": "!!"}]}'],
    ids=["not-json", "no-keys", "no-usable-key"],
)
def test_unusable_jwks_is_unavailable(document: bytes) -> None:
    """A JWKS that is not JSON or holds no usable key cannot judge the token: unavailable."""
    with LocalOidcIssuer() as issuer:
        issuer.jwks_body = document
        with pytest.raises(VerifierUnavailable):
            OidcVerifier(_policy(issuer)).verify(_bearer(issuer.mint(AUDIENCE, PUSHER)))


def test_failed_fetch_is_not_retried_until_the_cooldown_passes(issuer: LocalOidcIssuer) -> None:
    """After a failed fetch, callers fail fast; after the cooldown, a recovered JWKS is used."""
    clock = FakeClock()
    verifier = OidcVerifier(_policy(issuer), clock=clock)
    token = _bearer(issuer.mint(AUDIENCE, PUSHER))
    issuer.jwks_available = False
    for _ in range(5):
        with pytest.raises(VerifierUnavailable):
            verifier.verify(token)
    assert issuer.jwks_requests == 1
    issuer.jwks_available = True
    clock.advance(JWKS_COOLDOWN_SECONDS + 1)
    assert verifier.verify(token).email == PUSHER


def test_rotated_key_is_accepted_after_refresh(issuer: LocalOidcIssuer) -> None:
    """A token signed with a newly published key id is accepted after a refetch of the JWKS."""
    keys = jwt.PyJWKClient(issuer.jwks_url, lifespan=3600, cooldown_duration=0)
    verifier = OidcVerifier(_policy(issuer), jwks_client=keys)
    verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER)))
    issuer.rotate("local-key-2")
    # Well inside the lifespan: only the unknown key id can cause the refetch.
    assert verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER))).email == PUSHER
    assert issuer.jwks_requests == 2


def test_unknown_key_ids_do_not_refetch_within_the_cooldown(
    issuer: LocalOidcIssuer, verifier: OidcVerifier
) -> None:
    """Tokens with made-up key ids cause no refetch within the cooldown after a fetch."""
    verifier.verify(_bearer(issuer.mint(AUDIENCE, PUSHER)))
    stranger = generate_signing_key()
    for n in range(10):
        token = issuer.mint(AUDIENCE, PUSHER, kid=f"made-up-{n}", key=stranger)
        assert _rejection(verifier, _bearer(token)) is Rejection.UNKNOWN_KEY_ID
    assert issuer.jwks_requests == 1


def test_google_key_client_settings() -> None:
    """Google's keys: kept 5 minutes, refetched for a new key id at most every 30 s, 5 s timeout."""
    keys = google_jwks_client(GOOGLE_JWKS_URL)
    assert keys.jwk_set_cache is not None
    assert (keys.jwk_set_cache.lifespan, keys.cooldown_duration, keys.timeout) == (300, 30, 5)


# -- policy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audience", "emails"), [("", frozenset({PUSHER})), (AUDIENCE, frozenset[str]())]
)
def test_policy_requires_audience_and_an_email(audience: str, emails: frozenset[str]) -> None:
    """A policy with no audience or no allowed email is refused at construction."""
    with pytest.raises(ValueError, match="OidcPolicy"):
        OidcPolicy(audience=audience, allowed_emails=emails)


# -- tokens whose signature Cloud Run's invoker check removed ----------------------------------


def _behind_cloud_run_iam(issuer: LocalOidcIssuer) -> OidcVerifier:
    policy = OidcPolicy(AUDIENCE, frozenset({PUSHER}), jwks_url=issuer.jwks_url, cloud_run_iam=True)
    return OidcVerifier(policy)


def test_signature_removed_token_is_accepted_behind_cloud_run_iam(
    issuer: LocalOidcIssuer,
) -> None:
    """With Cloud Run's invoker check on, its signature-stripped token passes without any JWKS."""
    token = remove_signature(issuer.mint(AUDIENCE, PUSHER))
    assert _behind_cloud_run_iam(issuer).verify(_bearer(token)).email == PUSHER
    assert issuer.jwks_requests == 0


def test_signature_removed_token_is_refused_with_the_policys_reason(
    issuer: LocalOidcIssuer,
) -> None:
    """Without the invoker check known to be on, a stripped token is refused, saying why."""
    policy = OidcPolicy(
        AUDIENCE,
        frozenset({PUSHER}),
        jwks_url=issuer.jwks_url,
        signature_removed_refusal="not on Cloud Run",
    )
    with pytest.raises(Unauthenticated) as caught:
        OidcVerifier(policy).verify(_bearer(remove_signature(issuer.mint(AUDIENCE, PUSHER))))
    assert caught.value.reason is Rejection.SIGNATURE_REMOVED
    assert caught.value.detail == "not on Cloud Run"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"audience": "https://other.example/push"}, Rejection.WRONG_AUDIENCE),
        ({"issuer": "https://evil.example"}, Rejection.WRONG_ISSUER),
        ({"issued_at": -7200, "expires_in": 3600}, Rejection.EXPIRED),
        ({"not_before": 120}, Rejection.NOT_YET_VALID),
        ({"issued_at": 120}, Rejection.NOT_YET_VALID),
        ({"email": "someone@other.iam.gserviceaccount.com"}, Rejection.EMAIL_NOT_ALLOWED),
        ({"email_verified": False}, Rejection.EMAIL_NOT_VERIFIED),
    ],
    ids=["aud", "iss", "exp", "nbf", "iat", "email", "email_verified"],
)
def test_signature_removed_token_still_has_its_claims_checked(
    issuer: LocalOidcIssuer, claims: dict[str, Any], reason: Rejection
) -> None:
    """Behind Cloud Run's check every claim is still checked, with the usual clock skew."""
    token = remove_signature(mint_with(issuer, **claims))
    assert _rejection(_behind_cloud_run_iam(issuer), _bearer(token)) is reason


def test_only_the_exact_marker_counts_as_removed(issuer: LocalOidcIssuer) -> None:
    """A signature segment merely resembling the marker is checked as a signature, and fails."""
    header, claims, _ = issuer.mint(AUDIENCE, PUSHER).split(".")
    token = f"{header}.{claims}.SIGNATURE_REMOVED_BY_GOOGLEx"
    assert _rejection(_behind_cloud_run_iam(issuer), _bearer(token)) is Rejection.BAD_SIGNATURE
