"""The push endpoint behind Cloud Run's invoker IAM check, with Cloud Run's front end imitated.

When a Cloud Run service requires authentication, Cloud Run verifies the caller's Google-signed
token itself and forwards the request with the JWT's signature segment replaced by the literal
``SIGNATURE_REMOVED_BY_GOOGLE``, so the container cannot replay it
(https://cloud.google.com/run/docs/troubleshooting#signature-removed). ``front_end`` below does
exactly that to a token from the local issuer; the request then goes over HTTP to the real
push endpoint, configured from the environment the way ``prowtrace serve`` configures it
(``load_push_settings`` and ``push_verifier``).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs
from support.memory_store import MemoryArtifactStore
from support.oidc_issuer import LocalOidcIssuer, remove_signature
from support.push_server import PushServerThread

from processor.config import ConfigError, load_push_settings
from processor.core.ids import IdMode
from processor.export.otel import SpanConverter
from processor.pipeline import Pipeline, PipelineSettings
from processor.transports.oidc import push_verifier

AUDIENCE = "https://prowtrace-123456789012.us-central1.run.app"
PUSHER = "prowtrace-pusher@tracing-project.iam.gserviceaccount.com"
FOLDER = "gs://prow-artifacts/logs/ci-demo/1858000000000000000"
UID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
BEHIND_IAM = {"PROWTRACE_PUSH_AUTH": "cloud-run-iam", "K_SERVICE": "prowtrace"}
"""What the Terraform module sets with the invoker check on; Cloud Run sets K_SERVICE."""
IAM_OFF = {"PROWTRACE_PUSH_AUTH": "oidc", "K_SERVICE": "prowtrace"}
"""The module with invoker_iam_check = false: prowtrace verifies Google's signature itself."""
OFF_CLOUD_RUN = {"PROWTRACE_PUSH_AUTH": "cloud-run-iam"}
"""The same setting where no Cloud Run front end checked anything (no K_SERVICE)."""


def front_end(token: str) -> str:
    """Return what Cloud Run forwards to the container once its IAM check accepted ``token``."""
    return remove_signature(token)


def _envelope() -> bytes:
    message = {
        "status": "pending",
        "job_name": "ci-demo",
        "job_type": "periodic",
        "gcs_path": FOLDER,
    }
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(json.dumps(message).encode()).decode(),
                "messageId": "42",
                "publishTime": "2026-11-01T00:00:08.123456789Z",
            },
            "subscription": "projects/tracing-project/subscriptions/prowtrace-prowjobs",
        }
    ).encode()


def _prowjob() -> bytes:
    return json.dumps(
        {
            "metadata": {"name": UID},
            "spec": {"type": "periodic", "job": "ci-demo"},
            "status": {
                "state": "pending",
                "startTime": "2026-11-01T00:00:00Z",
                "pendingTime": "2026-11-01T00:00:07Z",
                "build_id": "1858000000000000000",
            },
        }
    ).encode()


class Service:
    """``prowtrace serve``'s endpoint on loopback, configured from an environment."""

    def __init__(self, env: Mapping[str, str], jwks_url: str) -> None:
        """Build settings and verifier from ``env`` as ``serve`` does; keys from ``jwks_url``."""
        self.exporter = InMemorySpanExporter()
        settings = load_push_settings(
            {
                "PROWTRACE_PUSH_AUDIENCE": AUDIENCE,
                "PROWTRACE_PUSH_ALLOWED_EMAILS": PUSHER,
                **env,
            }
        )
        pipeline = Pipeline(
            MemoryArtifactStore({(FOLDER, "prowjob.json"): _prowjob()}),
            self.exporter,
            SpanConverter(Resource({"service.name": "prow"})),
            PipelineSettings(id_mode=IdMode.UID),
            clock=lambda: datetime(2026, 11, 1, 0, 0, 9, tzinfo=UTC),
        )
        self.server = PushServerThread(
            pipeline.handle, settings, verifier=push_verifier(settings, jwks_url=jwks_url)
        )

    def push(self, token: str) -> tuple[int, str]:
        """POST one push envelope with ``token`` as its bearer token."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        connection.request("POST", "/", body=_envelope(), headers=headers)
        response = connection.getresponse()
        answer = response.status, response.read().decode()
        connection.close()
        return answer


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalOidcIssuer]:
    """Google's token issuer and JWKS, locally."""
    with LocalOidcIssuer() as local:
        yield local


def _serve(env: Mapping[str, str], issuer: LocalOidcIssuer) -> Iterator[Service]:
    service = Service(env, issuer.jwks_url)
    with service.server:
        yield service


@pytest.fixture
def behind_iam(issuer: LocalOidcIssuer) -> Iterator[Service]:
    """On Cloud Run, told that its invoker check is on."""
    yield from _serve(BEHIND_IAM, issuer)


@pytest.fixture
def iam_off(issuer: LocalOidcIssuer) -> Iterator[Service]:
    """On Cloud Run with the invoker check off: full signature verification."""
    yield from _serve(IAM_OFF, issuer)


@pytest.fixture
def off_cloud_run(issuer: LocalOidcIssuer) -> Iterator[Service]:
    """Told the invoker check is on, but not running on Cloud Run."""
    yield from _serve(OFF_CLOUD_RUN, issuer)


def _refusals(logs: list[MutableMapping[str, Any]]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "push_refused"]


def test_forwarded_token_is_accepted_behind_the_invoker_check(
    behind_iam: Service, issuer: LocalOidcIssuer
) -> None:
    """Cloud Run's signature-stripped push token is accepted and the message traced (204)."""
    status, _ = behind_iam.push(front_end(issuer.mint(AUDIENCE, PUSHER)))
    assert status == 204
    assert [span.name for span in behind_iam.exporter.get_finished_spans()] == ["queue"]


def test_forwarded_token_is_refused_with_the_invoker_check_off(
    iam_off: Service, issuer: LocalOidcIssuer
) -> None:
    """With the invoker check off nothing verified the signature: 401, logged with the reason."""
    with capture_logs() as logs:
        status, text = iam_off.push(front_end(issuer.mint(AUDIENCE, PUSHER)))
    assert (status, iam_off.exporter.get_finished_spans()) == (401, ())
    assert text.startswith("signature_removed")
    [reason] = _refusals(logs)
    assert "PROWTRACE_PUSH_AUTH=oidc requires Google's signature" in reason


def test_signed_token_is_accepted_with_the_invoker_check_off(
    iam_off: Service, issuer: LocalOidcIssuer
) -> None:
    """With the invoker check off, the token Pub/Sub signed is verified in full and accepted."""
    assert iam_off.push(issuer.mint(AUDIENCE, PUSHER))[0] == 204


def test_forwarded_token_is_refused_off_cloud_run(
    off_cloud_run: Service, issuer: LocalOidcIssuer
) -> None:
    """Without K_SERVICE no Cloud Run front end checked the token: 401, naming K_SERVICE."""
    with capture_logs() as logs:
        status, _ = off_cloud_run.push(front_end(issuer.mint(AUDIENCE, PUSHER)))
    assert (status, off_cloud_run.exporter.get_finished_spans()) == (401, ())
    [reason] = _refusals(logs)
    assert "K_SERVICE is not set" in reason


def test_serving_off_cloud_run_says_stripped_tokens_will_be_refused(
    issuer: LocalOidcIssuer,
) -> None:
    """Building the verifier for cloud-run-iam without K_SERVICE logs a warning at start."""
    with capture_logs() as logs:
        Service(OFF_CLOUD_RUN, issuer.jwks_url)
    assert [entry["event"] for entry in logs] == ["push_auth_not_on_cloud_run"]


TAMPERED_CLAIMS: dict[str, dict[str, Any]] = {
    "aud": {"audience": "https://someone-else-123.us-central1.run.app"},
    "iss": {"issuer": "https://evil.example"},
    "exp": {"issued_at": -7200, "expires_in": 3600},
    "nbf": {"not_before": 600},
    "email": {"email": "intruder@other-project.iam.gserviceaccount.com"},
    "email_verified": {"email_verified": False},
}


@pytest.mark.parametrize("claims", TAMPERED_CLAIMS.values(), ids=TAMPERED_CLAIMS.keys())
def test_wrong_claims_are_refused_behind_the_invoker_check(
    behind_iam: Service, issuer: LocalOidcIssuer, claims: dict[str, Any]
) -> None:
    """Behind Cloud Run's check the claims still decide: one wrong claim and it is refused."""
    fields: dict[str, Any] = {"audience": AUDIENCE, "email": PUSHER, **claims}
    now = int(time.time())  # the times above are seconds from now, taken now
    fields.update({key: now + fields[key] for key in ("issued_at", "not_before") if key in fields})
    token = issuer.mint(fields.pop("audience"), fields.pop("email"), **fields)
    status, _ = behind_iam.push(front_end(token))
    assert status in {401, 403}
    assert behind_iam.exporter.get_finished_spans() == ()


def _with_claims(token: str, **changes: object) -> str:
    """Rewrite a token's claims and keep its (now wrong) signature: a tampered token."""
    header, claims, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    payload = json.dumps({**decoded, **changes}).encode()
    forged = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("mode", ["behind_iam", "iam_off"])
def test_tampered_claims_are_refused_in_both_modes(
    mode: str, request: pytest.FixtureRequest, issuer: LocalOidcIssuer
) -> None:
    """A signed token whose claims were rewritten afterwards fails the signature check: 401."""
    service: Service = request.getfixturevalue(mode)
    original = issuer.mint("https://someone-else-123.us-central1.run.app", PUSHER)
    status, text = service.push(_with_claims(original, aud=AUDIENCE))
    assert (status, text.split(":")[0]) == (401, "bad_signature")


# -- the setting itself ---------------------------------------------------------------------------


def test_cloud_run_iam_needs_the_audience_and_emails_like_oidc() -> None:
    """cloud-run-iam still checks the claims, so both expected values must be configured."""
    with pytest.raises(ConfigError, match="PROWTRACE_PUSH_AUTH=cloud-run-iam"):
        load_push_settings(BEHIND_IAM)


def test_unknown_push_auth_names_the_choices() -> None:
    """A misspelt mode is refused with the three it could be."""
    with pytest.raises(ConfigError, match="choose oidc, cloud-run-iam or off"):
        load_push_settings({"PROWTRACE_PUSH_AUTH": "iam"})


def test_auth_off_is_still_refused_on_cloud_run() -> None:
    """No token check at all is never an option where K_SERVICE is set."""
    with pytest.raises(ConfigError, match="refused on Cloud Run"):
        load_push_settings({"PROWTRACE_PUSH_AUTH": "off", "K_SERVICE": "prowtrace"})
