"""Fault injection: a push endpoint under abuse refuses it with the right status and keeps serving.

The endpoint runs as ``prowtrace serve`` wires it (OIDC on, group commit over OTLP/gRPC to a real
receiver, artifacts from a mirror). Abusive requests carry envelopes of *decoy* jobs whose
artifacts are in the mirror but which the valid stream never sends: had any abusive request been
processed, its spans would show up as unexpected in the exact comparison with the oracle.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.abusive_clients import LatencyProbe, SlowLoris, raw_request
from support.fault_plan import fault_plan, report_figures
from support.fault_rig import mirror_pipeline, receiver_exporter
from support.oidc_issuer import LocalOidcIssuer, generate_signing_key
from support.oracle import SpanKey, assert_traces_complete, expected_spans
from support.otlp_receiver import OtlpReceiver
from support.push_server import PushServerThread

from processor.config import PushSettings
from processor.export.otlp_json import DecodedSpan
from processor.synthetic import Published, generate, push_envelope, stream, write_mirror
from processor.transports.oidc import OidcPolicy, OidcVerifier

pytestmark = pytest.mark.faults

PLAN = fault_plan()
AUDIENCE = "https://prowtrace-faults-uc.a.run.app"
PUSHER = "pubsub-push@faults-project.iam.gserviceaccount.com"
MAX_BODY = 2 * 1024 * 1024
BODY_TIMEOUT = 1.0 if PLAN.name == "short" else 10.0
"""The short run times slow bodies out after 1 s; the full run uses the service's 10 s."""
DECOY_JOBS = 5
HEALTH_P99_LIMIT_MS = 500.0
TRACES_TIMEOUT = 60.0


@dataclass(frozen=True)
class Corpus:
    """The valid stream, decoy messages for abusive requests, and the spans the stream must give."""

    mirror: Path
    valid: tuple[Published, ...]
    decoys: tuple[Published, ...]
    expected: dict[SpanKey, DecodedSpan]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Jobs in the mirror; all but the last few are the valid stream, those are decoys."""
    mirror = tmp_path_factory.mktemp("push-abuse") / "mirror"
    jobs = list(generate(PLAN.jobs + DECOY_JOBS, seed=11))
    write_mirror(jobs, mirror)
    valid = tuple(stream(jobs[:-DECOY_JOBS]))
    return Corpus(
        mirror=mirror,
        valid=valid,
        decoys=tuple(stream(jobs[-DECOY_JOBS:])),
        expected=expected_spans(valid, mirror),
    )


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalOidcIssuer]:
    """Google's token issuer, locally: a JWKS over HTTP and tokens signed by its key."""
    with LocalOidcIssuer() as local:
        yield local


@dataclass
class Served:
    """A push endpoint over the real pipeline, exporting to ``receiver``."""

    server: PushServerThread
    receiver: OtlpReceiver

    def post(self, body: bytes, headers: dict[str, str]) -> int | None:
        """POST ``body`` to the endpoint with exactly ``headers``; return the status."""
        sent = {"Content-Type": "application/json", "Content-Length": str(len(body))} | headers
        return raw_request("127.0.0.1", self.server.port, headers=sent, body_parts=[body])


@pytest.fixture
def served(corpus: Corpus, issuer: LocalOidcIssuer) -> Iterator[Served]:
    """``prowtrace serve``'s endpoint with OIDC against the local issuer."""
    settings = PushSettings(
        auth="oidc",
        audience=AUDIENCE,
        allowed_emails=frozenset({PUSHER}),
        max_body_bytes=MAX_BODY,
        body_timeout=BODY_TIMEOUT,
    )
    verifier = OidcVerifier(OidcPolicy(AUDIENCE, frozenset({PUSHER}), jwks_url=issuer.jwks_url))
    with OtlpReceiver() as receiver:
        exporter = receiver_exporter(receiver)
        pipeline = mirror_pipeline(corpus.mirror, exporter)
        with PushServerThread(pipeline.handle, settings, verifier=verifier) as server:
            yield Served(server, receiver)
        exporter.shutdown()


def envelope_bytes(message: Published, message_id: int) -> bytes:
    """Return the push body Pub/Sub would send for ``message``."""
    return json.dumps(push_envelope(message, message_id=str(message_id))).encode()


def unsigned_token() -> str:
    """Return a token with ``alg: none``: claims anyone could write."""

    def part(document: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    header = part({"alg": "none", "kid": "local-key-1", "typ": "JWT"})
    claims = part({"aud": AUDIENCE, "email": PUSHER, "iss": "https://accounts.google.com"})
    return f"{header}.{claims}."


@dataclass(frozen=True)
class Abuse:
    """One kind of abusive request and the status it must get."""

    kind: str
    status: int
    send: Callable[[Served, bytes], int | None]


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def abuses(issuer: LocalOidcIssuer) -> list[Abuse]:
    """Every kind of request the endpoint must refuse, with the status it must answer."""
    valid = bearer(issuer.mint(AUDIENCE, PUSHER))

    def with_headers(headers: dict[str, str]) -> Callable[[Served, bytes], int | None]:
        return lambda served, body: served.post(body, headers)

    def oversized_declared(served: Served, body: bytes) -> int | None:
        del body
        headers = {"Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)}
        return raw_request("127.0.0.1", served.server.port, headers=headers | valid)

    def oversized_chunked(served: Served, body: bytes) -> int | None:
        del body
        chunk = b"x" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"} | valid
        parts = [frame] * (MAX_BODY // len(chunk) + 2) + [b"0\r\n\r\n"]
        return raw_request("127.0.0.1", served.server.port, headers=headers, body_parts=parts)

    return [
        Abuse("missing_token", 401, with_headers({})),
        Abuse("not_bearer", 401, with_headers({"Authorization": "Basic cHVzaGVyOnNlY3JldA=="})),
        Abuse("garbage_token", 401, with_headers(bearer("not.a.token"))),
        Abuse("unsigned_token", 401, with_headers(bearer(unsigned_token()))),
        Abuse(
            "forged_signature",
            401,
            with_headers(bearer(issuer.mint(AUDIENCE, PUSHER, key=generate_signing_key()))),
        ),
        Abuse(
            "unknown_key_id",
            401,
            with_headers(
                bearer(issuer.mint(AUDIENCE, PUSHER, kid="retired", key=generate_signing_key()))
            ),
        ),
        Abuse(
            "expired", 401, with_headers(bearer(issuer.mint(AUDIENCE, PUSHER, expires_in=-3600)))
        ),
        Abuse(
            "wrong_audience",
            401,
            with_headers(bearer(issuer.mint("https://other.a.run.app", PUSHER))),
        ),
        Abuse(
            "wrong_issuer",
            401,
            with_headers(bearer(issuer.mint(AUDIENCE, PUSHER, issuer="https://evil.example"))),
        ),
        Abuse(
            "email_not_allowed",
            403,
            with_headers(bearer(issuer.mint(AUDIENCE, "intruder@evil.iam.gserviceaccount.com"))),
        ),
        Abuse(
            "email_not_verified",
            401,
            with_headers(bearer(issuer.mint(AUDIENCE, PUSHER, email_verified=False))),
        ),
        Abuse("wrong_content_type", 415, with_headers({"Content-Type": "text/plain"} | valid)),
        Abuse("oversized_declared", 413, oversized_declared),
        Abuse("oversized_chunked", 413, oversized_chunked),
    ]


ABUSE_KINDS = [
    "missing_token",
    "not_bearer",
    "garbage_token",
    "unsigned_token",
    "forged_signature",
    "unknown_key_id",
    "expired",
    "wrong_audience",
    "wrong_issuer",
    "email_not_allowed",
    "email_not_verified",
    "wrong_content_type",
    "oversized_declared",
    "oversized_chunked",
]


@pytest.mark.parametrize("kind", ABUSE_KINDS)
def test_abusive_request_is_refused_with_its_status_and_not_processed(
    kind: str, served: Served, issuer: LocalOidcIssuer, corpus: Corpus
) -> None:
    """Each kind of abusive push gets its status, and its (decoy) message exports nothing."""
    abuse = next(abuse for abuse in abuses(issuer) if abuse.kind == kind)
    terminal = corpus.decoys[-1]
    assert abuse.send(served, envelope_bytes(terminal, 1)) == abuse.status
    # A valid push after it is still processed: the refusal did not break the endpoint.
    valid = served.post(envelope_bytes(corpus.valid[0], 2), bearer(issuer.mint(AUDIENCE, PUSHER)))
    assert valid == 204
    decoy_traces = {trace for trace, _ in expected_spans([terminal], corpus.mirror)}
    assert decoy_traces, "the decoy message must be one that would export spans"
    assert not decoy_traces & {span.trace_id for span in served.receiver.spans()}


def test_slow_body_with_a_valid_token_is_timed_out(served: Served, issuer: LocalOidcIssuer) -> None:
    """A signed request whose body never finishes is answered 408 after the body timeout."""
    with SlowLoris(
        "127.0.0.1",
        served.server.port,
        3,
        phase="body",
        headers=bearer(issuer.mint(AUDIENCE, PUSHER)),
    ) as slow:
        began = time.monotonic()
        replies = slow.replies(timeout=BODY_TIMEOUT + 5)
        waited = time.monotonic() - began
    assert replies == [408, 408, 408]
    assert waited >= BODY_TIMEOUT * 0.9


def test_abuse_leaves_valid_pushes_and_health_checks_unharmed(
    served: Served, issuer: LocalOidcIssuer, corpus: Corpus
) -> None:
    """Under slow-loris and refused floods, valid pushes are traced exactly and health answers."""
    kinds = abuses(issuer)
    abusive_bodies = itertools.cycle(envelope_bytes(m, i) for i, m in enumerate(corpus.decoys))
    statuses: Counter[tuple[str, int | None]] = Counter()
    lock = threading.Lock()
    stop_abuse = threading.Event()
    plan_abuse = itertools.islice(itertools.cycle(kinds), PLAN.abusive_requests)
    abuse_lock = threading.Lock()

    def attack() -> None:
        while not stop_abuse.is_set():
            with abuse_lock:
                abuse = next(plan_abuse, None)
                body = next(abusive_bodies)
            if abuse is None:
                return
            status = abuse.send(served, body)
            with lock:
                statuses[(abuse.kind, status)] += 1

    token = bearer(issuer.mint(AUDIENCE, PUSHER))
    port = served.server.port
    began = time.monotonic()
    with (
        LatencyProbe("127.0.0.1", port) as probe,
        SlowLoris("127.0.0.1", port, PLAN.slow_clients, phase="headers"),
        SlowLoris("127.0.0.1", port, PLAN.slow_clients, phase="body", headers=token) as slow_body,
        ThreadPoolExecutor(max_workers=4, thread_name_prefix="attacker") as attackers,
    ):
        attacks = [attackers.submit(attack) for _ in range(4)]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="pusher") as pushers:
            valid_statuses = list(
                pushers.map(
                    lambda pair: served.post(envelope_bytes(pair[1], pair[0]), token),
                    enumerate(corpus.valid),
                )
            )
        complete = served.receiver.wait_for(
            lambda receiver: set(corpus.expected) <= {span.key for span in receiver.spans()},
            timeout=TRACES_TIMEOUT,
        )
        traced_after = time.monotonic() - began
        for attack_done in attacks:
            attack_done.result(timeout=120)
        stop_abuse.set()
        slow_replies = Counter(slow_body.replies(timeout=BODY_TIMEOUT + 5))
    health = probe.stats()

    wrong = {key: n for key, n in statuses.items() if key[1] != _status_of(kinds, key[0])}
    report_figures(
        "push_abuse",
        {
            "valid_messages": len(corpus.valid),
            "traces": len({trace for trace, _ in corpus.expected}),
            "spans": len(corpus.expected),
            "lost_traces": len(
                {trace for trace, _ in corpus.expected}
                - {span.trace_id for span in served.receiver.spans()}
            ),
            "abusive_requests": sum(statuses.values()),
            "abusive_by_status": {f"{k}->{s}": n for (k, s), n in sorted(statuses.items())},
            "slow_loris_connections": 2 * PLAN.slow_clients,
            "slow_body_replies": dict(slow_replies),
            "health_probes": health.probes,
            "health_failures": health.failures,
            "health_p50_ms": round(health.p50_ms, 1),
            "health_p99_ms": round(health.p99_ms, 1),
            "health_max_ms": round(health.max_ms, 1),
            "seconds_to_all_traces": round(traced_after, 1),
        },
        plan=PLAN,
    )
    assert complete, "not every valid job's spans arrived"
    assert_traces_complete(served.receiver.unique_spans(), corpus.expected)
    assert valid_statuses == [204] * len(corpus.valid)
    assert not wrong, f"abusive requests answered with the wrong status: {wrong}"
    assert sum(statuses.values()) == PLAN.abusive_requests
    assert slow_replies == Counter({408: PLAN.slow_clients})
    assert health.failures == 0
    assert health.p99_ms < HEALTH_P99_LIMIT_MS, health


def _status_of(kinds: list[Abuse], kind: str) -> int:
    return next(abuse.status for abuse in kinds if abuse.kind == kind)
