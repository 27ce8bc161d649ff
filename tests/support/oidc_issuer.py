"""A local stand-in for Google's OIDC token issuer, for tests of push-endpoint authentication.

``LocalOidcIssuer`` holds RSA signing keys, serves their public halves as a JWKS document over
real HTTP on 127.0.0.1 (an ephemeral port), and mints RS256 tokens shaped like the ones Pub/Sub
attaches to push requests. It counts JWKS requests so tests can assert on caching, can be told
to fail (HTTP 503), to answer slowly or to serve another body, and can rotate to a new key the way
Google does.

Use it as a context manager; leaving the block stops the server and joins its thread::

    with LocalOidcIssuer() as issuer:
        token = issuer.mint("https://push.example/", "pusher@p.iam.gserviceaccount.com")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_ISSUER = "https://accounts.google.com"
JWKS_PATH = "/oauth2/v3/certs"


def generate_signing_key() -> rsa.RSAPrivateKey:
    """Return a fresh 2048-bit RSA key; sign with it to forge tokens the issuer never made."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def remove_signature(token: str) -> str:
    """Return ``token`` as Cloud Run's front end forwards it after its invoker IAM check passed.

    Cloud Run verifies the token, then replaces the JWT's signature segment with the literal
    ``SIGNATURE_REMOVED_BY_GOOGLE`` so that the container cannot replay it elsewhere; header and
    claims are forwarded unchanged (https://cloud.google.com/run/docs/troubleshooting#signature-removed;
    also described in Google's apigee/registry README, "Cloud Run removes signatures from
    accepted JWT tokens, replacing them with SIGNATURE_REMOVED_BY_GOOGLE").
    """
    header, claims, _signature = token.split(".")
    return f"{header}.{claims}.SIGNATURE_REMOVED_BY_GOOGLE"


def _public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, object]:
    jwk: dict[str, object] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    # The same fields Google publishes for each key.
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


class LocalOidcIssuer:
    """Mints Google-shaped OIDC tokens and serves the JWKS that verifies them."""

    def __init__(
        self,
        *,
        kid: str = "local-key-1",
        jwks_delay_seconds: float = 0.0,
    ) -> None:
        """Create an issuer with one signing key; the server starts on ``__enter__``."""
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPrivateKey] = {kid: generate_signing_key()}
        self._current_kid = kid
        self._jwks_requests = 0
        self.jwks_delay_seconds = jwks_delay_seconds
        self.jwks_available = True
        self.jwks_body: bytes | None = None
        """Served with status 200 instead of the JWKS when set (a broken key document)."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Start serving the JWKS on 127.0.0.1 at an ephemeral port."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # A short poll keeps shutdown (and so every test's teardown) quick.
            kwargs={"poll_interval": 0.02},
            name="local-oidc-issuer",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server, close its socket and join its thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    # -- what tests read ---------------------------------------------------------------------

    @property
    def jwks_url(self) -> str:
        """The URL of the JWKS document (valid while the context is open)."""
        if self._server is None:
            raise RuntimeError("LocalOidcIssuer is not running: use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    @property
    def jwks_requests(self) -> int:
        """How many JWKS requests the server has answered (including failed ones)."""
        with self._lock:
            return self._jwks_requests

    @property
    def kid(self) -> str:
        """The key id new tokens are signed with by default."""
        return self._current_kid

    def jwks(self) -> dict[str, list[dict[str, object]]]:
        """Return the JWKS document as served: the public half of every key the issuer holds."""
        with self._lock:
            keys = dict(self._keys)
        return {"keys": [_public_jwk(kid, key) for kid, key in keys.items()]}

    # -- what tests do -----------------------------------------------------------------------

    def rotate(self, new_kid: str, *, retire_old: bool = False) -> None:
        """Add a key under ``new_kid`` and sign with it from now on, as Google's rotation does."""
        with self._lock:
            if retire_old:
                self._keys.clear()
            self._keys[new_kid] = generate_signing_key()
            self._current_kid = new_kid

    def mint(  # noqa: PLR0913 - one keyword per claim a test may need to bend
        self,
        audience: str,
        email: str,
        *,
        expires_in: int = 3600,
        issuer: str = GOOGLE_ISSUER,
        email_verified: bool = True,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        issued_at: int | None = None,
        not_before: int | None = None,
    ) -> str:
        """Mint a token like Pub/Sub's push token.

        ``kid`` defaults to the current key id and ``key`` to the private key held under that
        id; pass ``key=generate_signing_key()`` with the issuer's kid to forge a signature.
        ``issued_at`` defaults to now; ``expires_in`` counts from ``issued_at``; ``not_before``
        is omitted unless given (Google's tokens carry none).
        """
        iat = int(time.time()) if issued_at is None else issued_at
        claims: dict[str, object] = {
            "aud": audience,
            "azp": "112233445566778899000",
            "email": email,
            "email_verified": email_verified,
            "exp": iat + expires_in,
            "iat": iat,
            "iss": issuer,
            "sub": "112233445566778899000",
        }
        if not_before is not None:
            claims["nbf"] = not_before
        return self.mint_claims(claims, kid=kid, key=key)

    def mint_claims(
        self,
        claims: Mapping[str, object],
        *,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        """Sign exactly ``claims`` with RS256 (for tokens ``mint`` will not shape)."""
        chosen_kid = self._current_kid if kid is None else kid
        if key is None:
            with self._lock:
                key = self._keys[chosen_kid]
        return jwt.encode(dict(claims), key, algorithm="RS256", headers={"kid": chosen_kid})

    # -- HTTP --------------------------------------------------------------------------------

    def _answer_jwks(self) -> tuple[int, bytes]:
        with self._lock:
            self._jwks_requests += 1
        if self.jwks_delay_seconds:
            time.sleep(self.jwks_delay_seconds)
        if not self.jwks_available:
            return 503, b'{"error": "unavailable"}'
        if self.jwks_body is not None:
            return 200, self.jwks_body
        return 200, json.dumps(self.jwks()).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class JwksHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                status, body = issuer._answer_jwks()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class names it so
                # Keep test output quiet; tests read jwks_requests instead.
                del format, args

        return JwksHandler
