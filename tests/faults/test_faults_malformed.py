"""Fault injection: malformed inputs mixed into a valid stream are classified, never crash anything.

Hypothesis generates the inputs (:mod:`support.malformed`): arbitrary JSON and bytes,
crier-shaped objects with wrong types and hostile strings, truncated messages, broken encodings,
absurd numbers and nesting, huge fields, and for the push endpoint damaged envelopes (truncated or
foreign base64, wrong types). They are interleaved with a realistic stream and sent three ways:
straight into the pipeline, to the push endpoint over HTTP, and through Google's Pub/Sub emulator
to the streaming-pull worker. Each way must classify every malformed input (never raise, never
retry it), and the valid jobs' traces must come out exactly as the oracle says.
"""

from __future__ import annotations

import http.client
import json
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from support.e2e import create_route, wait_until
from support.fault_plan import fault_plan, report_figures
from support.fault_rig import (
    mirror_pipeline,
    publish_batched,
    pull_worker,
    quiet_structlog,
    receiver_exporter,
)
from support.malformed import (
    FUZZ_BUCKET,
    MalformedInput,
    draw,
    malformed_envelopes,
    malformed_payloads,
)
from support.oracle import (
    RecordingExporter,
    SpanKey,
    assert_traces_complete,
    expected_spans,
)
from support.otlp_receiver import OtlpReceiver, unique_spans_of
from support.pubsub_admin import EmulatorForTests
from support.push_server import PushServerThread

from processor.artifacts.mirror import MirrorArtifactStore
from processor.config import PushSettings
from processor.core.message import Delivery
from processor.export.exporters import build_resource
from processor.export.otel import SpanConverter
from processor.export.otlp_json import DecodedSpan
from processor.pipeline import Outcome, Pipeline, PipelineSettings
from processor.synthetic import (
    Published,
    generate,
    message_bytes,
    push_envelope,
    stream,
    write_mirror,
)

pytestmark = pytest.mark.faults
T = TypeVar("T")
U = TypeVar("U")

PLAN = fault_plan()
PROJECT = "prow-faults"
POISON = {Outcome.INVALID, Outcome.SKIPPED, Outcome.FAILED}
"""What a malformed input may be classified as: never EXPORTED (it names no real job) nor RETRY."""
PUSH_STATUSES = {204, 400, 422}
"""Malformed push bodies: 400 (not an envelope), 204 (poison acked and logged) or 422 (poison
nacked towards the dead-letter topic, when the envelope carries a ``deliveryAttempt``)."""
TRACES_TIMEOUT = 120.0


@dataclass(frozen=True)
class Stream:
    """A valid stream, the spans it must give, and malformed inputs to mix into it."""

    mirror: Path
    valid: tuple[Published, ...]
    expected: dict[SpanKey, DecodedSpan]
    payloads: tuple[MalformedInput, ...]
    """Malformed crier messages (Pub/Sub message data)."""
    envelopes: tuple[MalformedInput, ...]
    """Malformed push request bodies."""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    """Generate the valid stream and ``PLAN.malformed_inputs`` inputs of each form."""
    mirror = tmp_path_factory.mktemp("malformed") / "mirror"
    jobs = list(generate(PLAN.jobs, seed=21))
    write_mirror(jobs, mirror)
    valid = tuple(stream(jobs))
    bodies = [message_bytes(message) for message in valid]
    return Stream(
        mirror=mirror,
        valid=valid,
        expected=expected_spans(valid, mirror),
        payloads=tuple(draw(malformed_payloads(bodies), PLAN.malformed_inputs, seed=1)),
        envelopes=tuple(draw(malformed_envelopes(bodies), PLAN.malformed_inputs, seed=2)),
    )


@pytest.fixture
def quiet() -> Iterator[None]:
    """Keep thousands of poison-message log lines out of the captured output."""
    with quiet_structlog():
        yield


def interleave(first: Sequence[T], second: Sequence[U], seed: int) -> list[T | U]:
    """Merge two sequences at random positions, keeping each one's own order."""
    slots = [True] * len(first) + [False] * len(second)  # True: take from ``first``
    random.Random(seed).shuffle(slots)  # noqa: S311 - a reproducible test order, not a secret
    firsts, seconds = iter(first), iter(second)
    taken: list[T | U] = [next(firsts) if take else next(seconds) for take in slots]
    return taken


def oracle_pipeline(mirror: Path, exporter: RecordingExporter) -> Pipeline:
    """Return the pipeline the oracle runs: in-memory export, grace 0."""
    return Pipeline(
        MirrorArtifactStore(mirror),
        exporter,
        SpanConverter(build_resource({})),
        PipelineSettings(grace=timedelta(0)),
    )


def classify_directly(
    mixed: Stream,
) -> tuple[Counter[tuple[str, str]], Counter[Outcome], list[str], RecordingExporter]:
    """Run the mixed stream through one pipeline; count outcomes per malformed kind."""
    recorder = RecordingExporter()
    pipeline = oracle_pipeline(mixed.mirror, recorder)
    now = datetime.now(UTC)
    by_kind: Counter[tuple[str, str]] = Counter()
    valid_outcomes: Counter[Outcome] = Counter()
    crashes: list[str] = []
    for item in interleave(mixed.valid, mixed.payloads, seed=3):
        if isinstance(item, Published):
            delivery = Delivery(data=message_bytes(item), publish_time=item.publish_time)
            valid_outcomes[pipeline.handle(delivery).outcome] += 1
            continue
        try:
            outcome = pipeline.handle(Delivery(data=item.data, publish_time=now)).outcome
        except Exception as error:  # noqa: BLE001 - a crash is what this test looks for
            crashes.append(f"{item!r}: {error!r}")
            continue
        by_kind[(item.kind, str(outcome))] += 1
    return by_kind, valid_outcomes, crashes, recorder


def test_pipeline_classifies_every_malformed_payload(mixed: Stream) -> None:
    """Straight into the pipeline: no input raises, each is classified, valid traces exact."""
    by_kind, valid_outcomes, crashes, recorder = classify_directly(mixed)
    report_figures(
        "malformed_pipeline",
        {
            "malformed_inputs": len(mixed.payloads),
            "valid_messages": len(mixed.valid),
            "traces": len({trace for trace, _ in mixed.expected}),
            "unexpected_crashes": len(crashes),
            "classified": {f"{k}->{o}": n for (k, o), n in sorted(by_kind.items())},
            "by_outcome": _by_outcome(by_kind),
        },
        plan=PLAN,
    )
    assert not crashes, "\n".join(crashes[:20])
    assert sum(by_kind.values()) == len(mixed.payloads)
    disallowed = {k: n for k, n in by_kind.items() if k[1] not in set(map(str, POISON))}
    assert not disallowed, disallowed
    assert Outcome.RETRY not in valid_outcomes
    assert_traces_complete(unique_spans_of(recorder.spans()), mixed.expected)


def test_gcs_path_with_a_lone_surrogate_is_invalid(tmp_path: Path) -> None:
    """A crier message whose gcs_path holds a lone surrogate is classified, not raised."""
    recorder = RecordingExporter()
    pipeline = oracle_pipeline(tmp_path, recorder)
    data = json.dumps({"status": "success", "gcs_path": f"gs://{FUZZ_BUCKET}/logs/j/\ud800"})
    result = pipeline.handle(Delivery(data=data.encode(), publish_time=datetime.now(UTC)))
    assert result.outcome is Outcome.INVALID
    assert "UTF-8" in result.reason


def test_push_endpoint_answers_every_malformed_body(mixed: Stream, quiet: None) -> None:
    """Over HTTP: each malformed body gets 400, 204 or 422, never 5xx; valid traces exact."""
    del quiet
    items = interleave(mixed.valid, mixed.envelopes, seed=4)
    statuses: Counter[tuple[str, int]] = Counter()
    valid_statuses: Counter[int] = Counter()
    with OtlpReceiver() as receiver:
        exporter = receiver_exporter(receiver)
        pipeline = mirror_pipeline(mixed.mirror, exporter)
        with PushServerThread(pipeline.handle, PushSettings(auth="off")) as server:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            for index, item in enumerate(items):
                if isinstance(item, Published):
                    body = json.dumps(push_envelope(item, message_id=str(index))).encode()
                else:
                    body = item.data
                connection.request(
                    "POST", "/", body=body, headers={"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                response.read()
                if isinstance(item, Published):
                    valid_statuses[response.status] += 1
                else:
                    statuses[(item.kind, response.status)] += 1
            connection.close()
            health = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            health.request("GET", "/healthz")
            healthy = health.getresponse().status
            health.close()
        exporter.shutdown()
        received = receiver.unique_spans()
    report_figures(
        "malformed_push",
        {
            "malformed_inputs": len(mixed.envelopes),
            "valid_messages": len(mixed.valid),
            "answered": {f"{k}->{s}": n for (k, s), n in sorted(statuses.items())},
            "by_status": {
                str(status): sum(n for (_, s), n in statuses.items() if s == status)
                for status in sorted({s for _, s in statuses})
            },
        },
        plan=PLAN,
    )
    wrong = {key: n for key, n in statuses.items() if key[1] not in PUSH_STATUSES}
    assert not wrong, f"malformed bodies answered outside {PUSH_STATUSES}: {wrong}"
    assert sum(statuses.values()) == len(mixed.envelopes)
    assert valid_statuses == Counter({204: len(mixed.valid)})
    assert healthy == 200
    assert_traces_complete(received, mixed.expected)


@pytest.mark.emulator
def test_pull_worker_classifies_every_malformed_message(
    mixed: Stream, pubsub_emulator: EmulatorForTests, quiet: None
) -> None:
    """Through Pub/Sub: every message is acked once classified, as the pipeline classifies it."""
    del quiet
    by_kind, valid_outcomes, _, _ = classify_directly(mixed)
    expected_outcomes = valid_outcomes + Counter(
        Outcome(outcome) for (_, outcome), n in by_kind.items() for _ in range(n)
    )
    route = create_route(pubsub_emulator, PROJECT, "malformed")
    items = interleave(mixed.valid, mixed.payloads, seed=3)
    payloads = [message_bytes(i) if isinstance(i, Published) else i.data for i in items]
    total = len(payloads)
    with OtlpReceiver() as receiver:
        exporter = receiver_exporter(receiver)
        pipeline = mirror_pipeline(mixed.mirror, exporter)
        with pull_worker(pubsub_emulator, route.subscription, pipeline.handle) as worker:
            publish_batched(pubsub_emulator, route.topic, payloads)
            wait_until(
                lambda: worker.acked + worker.nacked >= total,
                TRACES_TIMEOUT,
                "every message settled",
            )
        exporter.shutdown()
        received = receiver.unique_spans()
    leftover = len(pubsub_emulator.pull(route.subscription, wait_seconds=0.5))
    report_figures(
        "malformed_pull",
        {
            "published": total,
            "malformed_inputs": len(mixed.payloads),
            "valid_messages": len(mixed.valid),
            "acked": worker.acked,
            "nacked": worker.nacked,
            "outcomes": {str(o): n for o, n in sorted(worker.outcomes.items())},
            "left_in_subscription": leftover,
        },
        plan=PLAN,
    )
    assert (worker.acked, worker.nacked, leftover) == (total, 0, 0)
    assert worker.outcomes == expected_outcomes
    assert_traces_complete(received, mixed.expected)


def _by_outcome(by_kind: Counter[tuple[str, str]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (_, outcome), n in by_kind.items():
        totals[outcome] += n
    return dict(sorted(totals.items()))
