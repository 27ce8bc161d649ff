"""Verify the Google-signed OIDC token Pub/Sub attaches to push requests.

A push subscription configured with an OIDC token sends ``Authorization: Bearer <JWT>``; the JWT
is signed RS256 by Google, its ``aud`` is the audience configured on the subscription and its
``email`` is the push service account. ``OidcVerifier.verify`` checks all of that and either
returns the caller or raises:

- ``Unauthenticated`` (answer 401/403): the request is not from an allowed pusher; ``reason``
  says why, as a ``Rejection``.
- ``VerifierUnavailable`` (answer 503): Google's signing keys could not be fetched, so nothing
  can be said about the token; Pub/Sub should retry later.

Signing keys come from Google's JWKS through ``JwksKeyCache``: fetched once, kept for the
response's ``Cache-Control: max-age``, refetched early when a token names an unknown key id (a
rotation), but never more often than ``min_refresh_interval_seconds`` so tokens with made-up key
ids cannot turn into a fetch per request. One lock serialises fetches, so a cold start under load
makes one request, not one per caller.

Why PyJWT with our own key cache rather than ``PyJWKClient`` or google-auth:
google-auth's ``id_token.verify_token`` fetches the certificates on every call (and for a JWKS
document it hands the work to PyJWT anyway). ``PyJWKClient`` caches and rate-limits refreshes,
but ignores ``Cache-Control``, holds its lock while a refresh is in flight even for callers whose
key is cached, reads the wall clock directly and reports an unknown key id and an unusable JWKS
with the same exception. The cache below is small and owns exactly those decisions; PyJWT still
does the cryptography and the claim checks.
"""

from __future__ import annotations

import enum
import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
ALGORITHM = "RS256"
# Claims every Google ID token carries; a token without them is not one.
_REQUIRED_CLAIMS = ("aud", "exp", "iat", "iss", "sub")


@dataclass(frozen=True)
class OidcPolicy:
    """Who may push: the audience the subscription was configured with and its service accounts."""

    audience: str
    allowed_emails: frozenset[str]
    issuers: frozenset[str] = GOOGLE_ISSUERS
    jwks_url: str = GOOGLE_JWKS_URL
    leeway_seconds: int = 30

    def __post_init__(self) -> None:
        """Reject a policy that would let nobody in or check nothing."""
        if not self.audience.strip():
            raise ValueError("OidcPolicy.audience must be non-empty")
        if not any(email.strip() for email in self.allowed_emails):
            raise ValueError("OidcPolicy.allowed_emails must name at least one service account")
        if not self.issuers:
            raise ValueError("OidcPolicy.issuers must name at least one issuer")
        if self.leeway_seconds < 0:
            raise ValueError("OidcPolicy.leeway_seconds must not be negative")


@dataclass(frozen=True)
class VerifiedCaller:
    """The authenticated pusher."""

    email: str
    subject: str
    expires_at: int


class Rejection(enum.StrEnum):
    """Why a request was not authenticated (stable values, fit for logs and metrics)."""

    MISSING_HEADER = "missing_header"
    NOT_BEARER = "not_bearer"
    MALFORMED_TOKEN = "malformed_token"  # noqa: S105 - a reason code, not a credential
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNKNOWN_KEY_ID = "unknown_key_id"
    BAD_SIGNATURE = "bad_signature"
    MISSING_CLAIM = "missing_claim"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    EMAIL_NOT_ALLOWED = "email_not_allowed"
    EMAIL_NOT_VERIFIED = "email_not_verified"


class Unauthenticated(Exception):
    """The request does not carry a valid token from an allowed pusher (answer 401)."""

    def __init__(self, reason: Rejection, detail: str) -> None:
        """Record the machine-readable reason and a human-readable detail."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class VerifierUnavailable(Exception):
    """Google's signing keys could not be fetched; the token was not judged (answer 503)."""


class UnusableJwks(ValueError):
    """The JWKS document is not JSON, or holds no RS256 signing key."""


class UnknownKeyId(Exception):
    """The JWKS, even freshly fetched (or fetched too recently to refetch), lacks this key id."""


# -- pure helpers ------------------------------------------------------------------------------

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)


def max_age_seconds(cache_control: str | None) -> int | None:
    """Return how long a response may be cached per its ``Cache-Control`` header, or None.

    ``no-cache``/``no-store`` mean 0; a missing header or one without ``max-age`` means None
    (the caller's default applies).
    """
    if cache_control is None:
        return None
    if _NO_CACHE.search(cache_control):
        return 0
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def parse_jwks(document: bytes) -> dict[str, jwt.PyJWK]:
    """Return the RS256 signing keys of a JWKS document by key id.

    Keys that are not RSA signing keys for RS256, or that do not parse, are skipped: one odd key
    must not lock everyone out. Raises ``UnusableJwks`` when no usable key remains.
    """
    try:
        parsed = json.loads(document)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnusableJwks(f"JWKS is not JSON: {error}") from error
    raw_keys = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(raw_keys, list):
        raise UnusableJwks("JWKS has no 'keys' list")
    keys: dict[str, jwt.PyJWK] = {}
    for raw in raw_keys:
        if not _is_rs256_signing_key(raw):
            continue
        try:
            keys[raw["kid"]] = jwt.PyJWK(raw, algorithm=ALGORITHM)
        except jwt.PyJWTError:
            continue
    if not keys:
        raise UnusableJwks("JWKS has no usable RS256 signing key")
    return keys


def _is_rs256_signing_key(raw: object) -> bool:
    return (
        isinstance(raw, dict)
        and raw.get("kty") == "RSA"
        and isinstance(raw.get("kid"), str)
        and raw.get("use", "sig") == "sig"
        and raw.get("alg", ALGORITHM) == ALGORITHM
    )


def bearer_token(authorization_header: str | None) -> str:
    """Return the token of an ``Authorization: Bearer <token>`` header value, or raise."""
    if authorization_header is None or not authorization_header.strip():
        raise Unauthenticated(Rejection.MISSING_HEADER, "no Authorization header")
    parts = authorization_header.split()
    # The scheme is case-insensitive (RFC 9110 section 11.1).
    if parts[0].lower() != "bearer":
        raise Unauthenticated(Rejection.NOT_BEARER, f"Authorization scheme is {parts[0]!r}")
    if len(parts) != 2:  # noqa: PLR2004 - "Bearer" and the token
        raise Unauthenticated(Rejection.MALFORMED_TOKEN, "expected 'Bearer <token>'")
    return parts[1]


# -- fetching keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JwksResponse:
    """A fetched JWKS document and the ``Cache-Control`` header it came with."""

    body: bytes
    cache_control: str | None


class JwksFetchError(Exception):
    """The JWKS endpoint could not be reached or did not answer 200."""


class HttpJwksFetcher:
    """GETs a JWKS document over HTTP(S) with a timeout."""

    def __init__(self, url: str, *, timeout_seconds: float = 5.0) -> None:
        """Fetch from ``url`` (http or https only); give up after ``timeout_seconds``."""
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"JWKS URL must be http(s): {url!r}")
        self.url = url
        self.timeout_seconds = timeout_seconds

    def __call__(self) -> JwksResponse:
        """Fetch the document; raise ``JwksFetchError`` on any transport or HTTP failure."""
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked in __init__
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310 - scheme checked in __init__
                return JwksResponse(response.read(), response.headers.get("Cache-Control"))
        except urllib.error.HTTPError as error:
            error.close()
            raise JwksFetchError(f"GET {self.url}: HTTP {error.code}") from error
        except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSError
            raise JwksFetchError(f"GET {self.url}: {error}") from error


@dataclass(frozen=True)
class _KeySnapshot:
    keys: Mapping[str, jwt.PyJWK] = field(default_factory=dict)
    fresh_until: float = float("-inf")


class JwksKeyCache:
    """Signing keys by key id, fetched lazily and shared by all threads.

    - Keys are kept for the response's ``max-age`` (``default_max_age_seconds`` without one),
      but at least ``min_refresh_interval_seconds``.
    - An unknown key id triggers a refetch unless one was made in the last
      ``min_refresh_interval_seconds``.
    - After a failed fetch, callers get ``VerifierUnavailable`` without a new attempt until that
      interval has passed, so an outage does not queue every request behind a timeout.
    - Known, fresh keys are served without taking the lock.
    """

    def __init__(
        self,
        fetch: Callable[[], JwksResponse],
        *,
        clock: Callable[[], float] = time.monotonic,
        default_max_age_seconds: float = 300.0,
        min_refresh_interval_seconds: float = 30.0,
    ) -> None:
        """Use ``fetch`` to get the JWKS and ``clock`` (monotonic seconds) to age it."""
        self._fetch = fetch
        self._clock = clock
        self._default_max_age = default_max_age_seconds
        self._min_refresh_interval = min_refresh_interval_seconds
        self._lock = threading.Lock()
        self._snapshot = _KeySnapshot()
        self._last_attempt: float | None = None

    def key_for(self, kid: str) -> jwt.PyJWK:
        """Return the key for ``kid``; raise ``UnknownKeyId`` or ``VerifierUnavailable``."""
        snapshot = self._snapshot  # one read: the snapshot is replaced whole, never mutated
        if kid in snapshot.keys and self._clock() < snapshot.fresh_until:
            return snapshot.keys[kid]
        with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            snapshot = self._snapshot
            now = self._clock()
            fresh = now < snapshot.fresh_until
            if fresh and kid in snapshot.keys:
                return snapshot.keys[kid]
            recently_tried = (
                self._last_attempt is not None
                and now - self._last_attempt < self._min_refresh_interval
            )
            if recently_tried:
                if fresh:
                    raise UnknownKeyId(kid)
                raise VerifierUnavailable("JWKS fetch failed recently; not retrying yet")
            snapshot = self._refresh(now)
        if kid not in snapshot.keys:
            raise UnknownKeyId(kid)
        return snapshot.keys[kid]

    def _refresh(self, now: float) -> _KeySnapshot:
        self._last_attempt = now
        try:
            response = self._fetch()
            keys = parse_jwks(response.body)
        except (JwksFetchError, UnusableJwks) as error:
            raise VerifierUnavailable(f"cannot load Google's signing keys: {error}") from error
        max_age = max_age_seconds(response.cache_control)
        lifetime = self._default_max_age if max_age is None else max_age
        self._snapshot = _KeySnapshot(keys, now + max(lifetime, self._min_refresh_interval))
        return self._snapshot


# -- the verifier ------------------------------------------------------------------------------

# Most specific first: InvalidSignatureError is a DecodeError, and all are InvalidTokenError.
_REJECTIONS: tuple[tuple[type[jwt.InvalidTokenError], Rejection], ...] = (
    (jwt.InvalidSignatureError, Rejection.BAD_SIGNATURE),
    (jwt.ExpiredSignatureError, Rejection.EXPIRED),
    (jwt.ImmatureSignatureError, Rejection.NOT_YET_VALID),
    (jwt.InvalidAudienceError, Rejection.WRONG_AUDIENCE),
    (jwt.InvalidIssuerError, Rejection.WRONG_ISSUER),
    (jwt.MissingRequiredClaimError, Rejection.MISSING_CLAIM),
    (jwt.InvalidAlgorithmError, Rejection.UNSUPPORTED_ALGORITHM),
)


def rejection_for(error: jwt.InvalidTokenError) -> Rejection:
    """Map a PyJWT validation error to our reason (anything unlisted is a malformed token)."""
    for error_type, rejection in _REJECTIONS:
        if isinstance(error, error_type):
            return rejection
    return Rejection.MALFORMED_TOKEN


class OidcVerifier:
    """Checks push requests' bearer tokens against an ``OidcPolicy``.

    ``verify`` is synchronous and thread-safe. With the key cache warm it does no I/O and costs
    one RS256 signature check plus JSON/base64 decoding: about 0.1 ms per call (measured:
    100-115 µs over 5,000 calls, 2048-bit key, on the 2-vCPU Xeon development VM). A cold or
    expired cache makes one caller fetch the JWKS (up to the fetcher's 5 s timeout) while the
    others wait on the lock, so an async server should call it via ``asyncio.to_thread``.
    """

    def __init__(self, policy: OidcPolicy, *, key_cache: JwksKeyCache | None = None) -> None:
        """Verify against ``policy``; keys come from ``key_cache`` or ``policy.jwks_url``."""
        self.policy = policy
        self._keys = (
            JwksKeyCache(HttpJwksFetcher(policy.jwks_url)) if key_cache is None else key_cache
        )

    def verify(self, authorization_header: str | None) -> VerifiedCaller:
        """Return the caller named by a valid token; raise ``Unauthenticated`` otherwise.

        Raises ``VerifierUnavailable`` when the signing keys cannot be fetched.
        """
        token = bearer_token(authorization_header)
        kid = _key_id(token)
        try:
            key = self._keys.key_for(kid)
        except UnknownKeyId:
            raise Unauthenticated(
                Rejection.UNKNOWN_KEY_ID, f"no Google signing key has id {kid!r}"
            ) from None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.policy.audience,
                issuer=self.policy.issuers,
                leeway=self.policy.leeway_seconds,
                options={"require": list(_REQUIRED_CLAIMS)},
            )
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(rejection_for(error), str(error)) from None
        return self._caller(claims)

    def _caller(self, claims: dict[str, Any]) -> VerifiedCaller:
        email = claims.get("email")
        if not isinstance(email, str) or email not in self.policy.allowed_emails:
            raise Unauthenticated(Rejection.EMAIL_NOT_ALLOWED, f"email {email!r} is not allowed")
        # Google sends a JSON boolean; anything else is not a verification.
        if claims.get("email_verified") is not True:
            raise Unauthenticated(Rejection.EMAIL_NOT_VERIFIED, f"email {email!r} not verified")
        return VerifiedCaller(
            email=email, subject=str(claims["sub"]), expires_at=int(claims["exp"])
        )


def _key_id(token: str) -> str:
    """Read the unverified header: only to pick the key, never to trust anything else."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        raise Unauthenticated(Rejection.MALFORMED_TOKEN, str(error)) from None
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated(
            Rejection.UNSUPPORTED_ALGORITHM, f"alg is {header.get('alg')!r}, not {ALGORITHM}"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated(Rejection.MALFORMED_TOKEN, "token header has no key id")
    return kid
