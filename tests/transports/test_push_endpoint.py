"""The push endpoint's contract: who is refused and how, and what each outcome answers."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.memory_store import MemoryArtifactStore
from support.oidc_issuer import LocalOidcIssuer
from support.push_server import PushServerThread

from processor.config import PushSettings
from processor.core.ids import IdMode
from processor.export.otel import SpanConverter
from processor.pipeline import Pipeline, PipelineSettings
from processor.transports.oidc import OidcPolicy, OidcVerifier

AUDIENCE = "https://prowtrace-abc-uc.a.run.app"
PUSHER = "pubsub-push@example-project.iam.gserviceaccount.com"
FOLDER = "gs://prow-artifacts/logs/ci-demo/1858000000000000000"
UID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _prowjob_pending() -> bytes:
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


def _envelope(message: Mapping[str, object], *, attempt: int | None = None) -> bytes:
    envelope: dict[str, object] = {
        "message": {
            "data": base64.b64encode(json.dumps(message).encode()).decode(),
            "messageId": "42",
            "publishTime": "2026-11-01T00:00:08.123456789Z",
        },
        "subscription": "projects/p/subscriptions/s",
    }
    if attempt is not None:
        envelope["deliveryAttempt"] = attempt
    return json.dumps(envelope).encode()


PENDING = {"status": "pending", "job_name": "ci-demo", "job_type": "periodic", "gcs_path": FOLDER}


class Harness:
    """A served endpoint over a real pipeline, and a way to talk to it."""

    def __init__(self, server: PushServerThread, exporter: InMemorySpanExporter) -> None:
        """Talk to ``server``; ``exporter`` records what the pipeline exported."""
        self.server = server
        self.exporter = exporter

    def post(
        self,
        body: bytes,
        *,
        token: str | None = None,
        content_type: str = "application/json",
        path: str = "/",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        """POST ``body`` and return the status and the response text."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        sent = {"Content-Type": content_type, **(headers or {})}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        connection.request("POST", path, body=body, headers=sent)
        response = connection.getresponse()
        text = response.read().decode()
        connection.close()
        return response.status, text

    def get(self, path: str) -> int:
        """GET ``path`` and return the status."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status


def _pipeline(exporter: InMemorySpanExporter, *, grace: timedelta) -> Pipeline:
    store = MemoryArtifactStore({(FOLDER, "prowjob.json"): _prowjob_pending()})
    return Pipeline(
        store,
        exporter,
        SpanConverter(Resource({"service.name": "prow"})),
        PipelineSettings(id_mode=IdMode.UID, grace=grace),
        clock=lambda: datetime(2026, 11, 1, 0, 0, 9, tzinfo=UTC),
    )


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalOidcIssuer]:
    """Serve a local JWKS and mint tokens signed by its key."""
    with LocalOidcIssuer() as local:
        yield local


@pytest.fixture
def harness(issuer: LocalOidcIssuer) -> Iterator[Harness]:
    """Serve the endpoint with OIDC verification against the local issuer."""
    exporter = InMemorySpanExporter()
    verifier = OidcVerifier(OidcPolicy(AUDIENCE, frozenset({PUSHER}), jwks_url=issuer.jwks_url))
    settings = PushSettings(auth="oidc", max_body_bytes=64 * 1024, body_timeout=0.5)
    pipeline = _pipeline(exporter, grace=timedelta(0))
    with PushServerThread(pipeline.handle, settings, verifier=verifier) as server:
        yield Harness(server, exporter)


@pytest.fixture
def open_harness() -> Iterator[Harness]:
    """Serve the endpoint with authentication off, as for local use."""
    exporter = InMemorySpanExporter()
    pipeline = _pipeline(exporter, grace=timedelta(0))
    settings = PushSettings(auth="off", body_timeout=0.5)
    with PushServerThread(pipeline.handle, settings) as server:
        yield Harness(server, exporter)


def test_valid_token_and_message_is_acked_after_export(
    harness: Harness, issuer: LocalOidcIssuer
) -> None:
    """A signed push of a pending message answers 204 and its queue span was exported."""
    status, _ = harness.post(_envelope(PENDING), token=issuer.mint(AUDIENCE, PUSHER))
    assert status == 204
    assert [span.name for span in harness.exporter.get_finished_spans()] == ["queue"]


def test_missing_token_is_refused_before_processing(harness: Harness) -> None:
    """No Authorization header: 401, and nothing is exported."""
    status, text = harness.post(_envelope(PENDING))
    assert status == 401
    assert "missing" in text
    assert harness.exporter.get_finished_spans() == ()


def test_forged_signature_is_refused(harness: Harness, issuer: LocalOidcIssuer) -> None:
    """A token signed by another key under the issuer's key ID: 401."""
    from support.oidc_issuer import generate_signing_key  # noqa: PLC0415

    forged = issuer.mint(AUDIENCE, PUSHER, key=generate_signing_key())
    assert harness.post(_envelope(PENDING), token=forged)[0] == 401


def test_expired_token_is_refused(harness: Harness, issuer: LocalOidcIssuer) -> None:
    """A token that expired an hour ago: 401."""
    expired = issuer.mint(AUDIENCE, PUSHER, expires_in=-3600)
    assert harness.post(_envelope(PENDING), token=expired)[0] == 401


def test_wrong_audience_is_refused(harness: Harness, issuer: LocalOidcIssuer) -> None:
    """A token for another service: 401."""
    other = issuer.mint("https://other.a.run.app", PUSHER)
    assert harness.post(_envelope(PENDING), token=other)[0] == 401


def test_wrong_email_is_forbidden(harness: Harness, issuer: LocalOidcIssuer) -> None:
    """A valid token of a service account not allowed to push: 403."""
    stranger = issuer.mint(AUDIENCE, "someone@example-project.iam.gserviceaccount.com")
    assert harness.post(_envelope(PENDING), token=stranger)[0] == 403


def test_unreachable_keys_answer_retry(issuer: LocalOidcIssuer) -> None:
    """When Google's keys cannot be fetched the push gets 503, so Pub/Sub retries it."""
    exporter = InMemorySpanExporter()
    verifier = OidcVerifier(
        OidcPolicy(AUDIENCE, frozenset({PUSHER}), jwks_url="http://127.0.0.1:9/certs")
    )
    pipeline = _pipeline(exporter, grace=timedelta(0))
    with PushServerThread(pipeline.handle, PushSettings(auth="oidc"), verifier=verifier) as srv:
        status, _ = Harness(srv, exporter).post(
            _envelope(PENDING), token=issuer.mint(AUDIENCE, PUSHER)
        )
    assert status == 503


def test_wrong_content_type_is_refused(open_harness: Harness) -> None:
    """A non-JSON content type: 415."""
    assert open_harness.post(b"{}", content_type="text/plain")[0] == 415


def test_a_compressed_body_is_refused_before_it_is_inflated(harness: Harness) -> None:
    """Content-Encoding: 415 before auth or reading; Pub/Sub pushes plain JSON (its push docs)."""
    bomb = gzip.compress(b" " * (8 * 1024 * 1024))  # 8 MiB of spaces in ~8 KiB
    status, text = harness.post(bomb, headers={"Content-Encoding": "gzip"})
    assert status == 415
    assert "compress" in text
    assert harness.exporter.get_finished_spans() == ()


def test_a_malformed_authorization_value_is_not_echoed(harness: Harness) -> None:
    """'Bearer<jwt>' without a space: 401 whose body names the reason, never the token."""
    secret = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXRoYXQtbXVzdC1ub3QtbGVhaw"  # noqa: S105 - fake
    with structlog.testing.capture_logs() as logs:
        status, text = harness.post(
            _envelope(PENDING), headers={"Authorization": f"Bearer{secret}"}
        )
    assert status == 401
    assert secret not in text
    assert secret not in repr(logs)


def test_oversized_body_is_refused(harness: Harness) -> None:
    """A body over the limit: 413, before the token is even looked at."""
    assert harness.post(b"x" * (65 * 1024))[0] == 413


def test_malformed_envelope_is_refused(open_harness: Harness) -> None:
    """JSON that is not a push envelope: 400 naming the problem."""
    status, text = open_harness.post(b'{"hello": "world"}')
    assert status == 400
    assert "message" in text


def test_skip_message_is_acked(open_harness: Harness) -> None:
    """A triggered message has nothing to trace: 204."""
    triggered = {"status": "triggered", "job_name": "ci-demo", "job_type": "periodic"}
    assert open_harness.post(_envelope(triggered))[0] == 204


def test_poison_without_dead_letter_policy_is_acked(open_harness: Harness) -> None:
    """An invalid message with no delivery attempt (no dead-letter policy): acked, not looped."""
    assert open_harness.post(_envelope({"status": 7}))[0] == 204


def test_poison_with_dead_letter_policy_is_nacked(open_harness: Harness) -> None:
    """An invalid message with a delivery attempt: 422, so Pub/Sub dead-letters it."""
    assert open_harness.post(_envelope({"status": 7}, attempt=2))[0] == 422


def test_retryable_outcome_is_nacked() -> None:
    """Artifacts not written yet, inside the grace period: 503 so the backoff applies."""
    exporter = InMemorySpanExporter()
    pipeline = _pipeline(exporter, grace=timedelta(hours=1))
    missing = dict(PENDING, gcs_path=FOLDER + "0")
    with PushServerThread(pipeline.handle, PushSettings(auth="off")) as server:
        status, text = Harness(server, exporter).post(_envelope(missing))
    assert status == 503
    assert "prowjob.json" in text


def test_slow_body_times_out(open_harness: Harness) -> None:
    """A client that announces a body and trickles it: 408 after the read timeout."""
    with socket.create_connection(("127.0.0.1", open_harness.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408")


def test_server_answers_while_slow_clients_hold_connections(open_harness: Harness) -> None:
    """Fifty half-sent requests do not stop the health check from answering."""
    slow = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", open_harness.server.port), timeout=5)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        slow.append(sock)
    started = time.monotonic()
    status = open_harness.get("/healthz")
    elapsed = time.monotonic() - started
    for sock in slow:
        sock.close()
    assert status == 200
    assert elapsed < 2


def test_readiness_reports_ready(open_harness: Harness) -> None:
    """GET /readyz answers 200 while serving."""
    assert open_harness.get("/readyz") == 200


@pytest.mark.parametrize("attempt", [-1, 2**80])
def test_impossible_delivery_attempt_is_a_malformed_envelope(
    open_harness: Harness, attempt: int
) -> None:
    """A deliveryAttempt Pub/Sub never sends makes the envelope malformed: 400, not 422 or 204."""
    body = json.loads(_envelope({"status": 7}))
    body["deliveryAttempt"] = attempt
    assert open_harness.post(json.dumps(body).encode())[0] == 400
