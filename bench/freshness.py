"""Freshness at storage latency: how soon after a job's last file lands its trace is complete.

Everything runs in this process over the latency model (:mod:`bench.latency`: every GET waits a
drawn Cloud Storage latency; ``prowjob.json``/``podinfo.json`` appear a drawn lag after the
message), exporting over OTLP/gRPC to the counting receiver, with the services' exporter chain
(group commit). Measured, each within one run so the ratios hold on a loaded machine:

- **one message**: a terminal message whose files are all there, handled alone; the pipeline's
  time split into reading+building and exporting, once with one read at a time (what the
  pipeline did before) and once with its reads concurrent.
- **freshness**: terminal messages arrive at a steady rate; each is complete when its export
  succeeded (the transport acks right after). Freshness = completion - the moment its last late
  file landed. Pull: :class:`~processor.transports.pull.PullWorker` against Google's Pub/Sub
  emulator, holding late messages. Push: :class:`~processor.transports.push.PushEndpoint` served
  on loopback, fed by a client playing Pub/Sub: it posts each message when published and, on a
  503, posts it again after the retry policy's backoff (Terraform's defaults, 10 s doubling to
  600 s). Push is run twice: holding late messages (the default) and with holding off, which is
  the nack-and-backoff behaviour of before (the emulator's own retry policy is not Pub/Sub's: it
  redelivers on a ~2 s tick, so the backoff is played by the client, as Pub/Sub documents it).
- **reads per job** in those runs, and what they cost at Cloud Storage's Class B price.
- **backfill**: runs per second at several concurrencies for a fixed time each; the latency
  bound at concurrency C is C x the rate at concurrency 1 (each worker waits on storage).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import random
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import aiohttp
import structlog
from google.pubsub_v1 import PubsubMessage
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

from bench.latency import (
    GCS_GET,
    LATE_FILES,
    LagModel,
    ModelledStore,
    reads_floor_p50,
    usd_per_million_jobs,
)

__all__ = ["FULL", "QUICK", "FreshnessPlan", "LagModel", "measure"]
from bench.receiver import CountingReceiver
from bench.stats import percentile
from bench.workspace import read_deliveries
from processor.artifacts import ArtifactStore
from processor.artifacts.mirror import MirrorArtifactStore
from processor.config import PullSettings, PushSettings
from processor.core.message import Delivery, Traceable, classify
from processor.export.exporters import build_resource
from processor.export.group_commit import GroupCommitExporter
from processor.export.otel import SpanConverter
from processor.junit_gather import JunitLimits
from processor.pipeline import Outcome, Pipeline, PipelineSettings, Ready, Result
from processor.tools.backfill import PipelineSink, ReadAheadStore, run_backfill
from processor.tools.backfill_progress import Tally
from processor.tools.backfill_runs import Selection
from processor.tools.demo.pubsub_emulator import PubSubEmulator
from processor.transports.pull import PullWorker
from processor.transports.push import PushEndpoint, create_app, serve

GRACE = timedelta(minutes=5)
"""prowtrace's default grace period."""
RETRY_MIN_SECONDS = 10.0
RETRY_MAX_SECONDS = 600.0
"""Terraform's retry policy defaults (terraform/variables.tf), which the push client plays."""
PROJECT = "bench"
TERMINAL_FILES = 5
"""The files a terminal message reads at once (prowjob, podinfo, started, finished, clones)."""


@dataclass(frozen=True)
class FreshnessPlan:
    """Sizes of one freshness run."""

    jobs: int
    """Terminal messages per freshness run (one per job)."""
    rate: float
    """Messages published per second."""
    lag: LagModel
    single: int
    """Messages timed one at a time."""
    backfill_seconds: float
    backfill_concurrency: tuple[int, ...]


FULL = FreshnessPlan(200, 5.0, LagModel(), 60, 8.0, (1, 8, 32))
QUICK = FreshnessPlan(30, 10.0, LagModel(scale=0.1), 15, 2.0, (1, 8))


def terminal_deliveries(corpus: Path, mirror: Path, limit: int) -> list[tuple[Delivery, str]]:
    """Return up to ``limit`` terminal messages (one per job) whose job wrote both late files."""
    raw = MirrorArtifactStore(mirror)
    chosen: dict[str, Delivery] = {}
    for delivery in read_deliveries(corpus):
        classified = classify(delivery.data)
        if not isinstance(classified, Traceable) or not classified.state.is_terminal:
            continue
        folder = classified.message.gcs_path
        if folder in chosen or not all(raw.read(folder, name) for name in LATE_FILES):
            continue
        chosen[folder] = delivery
        if len(chosen) == limit:
            break
    return [(delivery, folder) for folder, delivery in chosen.items()]


def _exporter(receiver: CountingReceiver) -> GroupCommitExporter:
    return GroupCommitExporter(OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True))


def _pipeline(
    store: ArtifactStore,
    exporter: GroupCommitExporter,
    **settings: int | timedelta | JunitLimits | None,
) -> Pipeline:
    converter = SpanConverter(build_resource({}))
    return Pipeline(store, exporter, converter, PipelineSettings(**settings))  # type: ignore[arg-type] # each keyword is one field


def _summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
    }


def one_message(
    messages: Sequence[tuple[Delivery, str]], mirror: Path, receiver: CountingReceiver
) -> dict[str, Any]:
    """Time terminal messages one at a time: reads one after another, then concurrent.

    Concurrent twice: with test spans (a listing of ``artifacts/`` goes with the five reads, then
    the JUnit files it found are read) and without. Each concurrent row also gets the latency
    model's own floor for the reads it made (:func:`bench.latency.reads_floor_p50`).
    """
    report: dict[str, Any] = {}
    rows = (
        ("sequential", 1, JunitLimits()),
        ("concurrent", 64, JunitLimits()),
        ("concurrent_no_test_spans", 64, None),
    )
    for label, concurrency, junit in rows:
        store = ModelledStore(MirrorArtifactStore(mirror), latency=GCS_GET, seed=1)
        exporter = _exporter(receiver)
        pipeline = _pipeline(
            store, exporter, grace=timedelta(0), read_concurrency=concurrency, junit=junit
        )
        plans, exports, totals, floors = [], [], [], []
        for delivery, folder in messages:
            before = store.reads[folder.rstrip("/")]
            started = time.perf_counter()
            planned = pipeline.plan(delivery)
            planned_at = time.perf_counter()
            if not isinstance(planned, Ready):
                raise TypeError(f"a terminal message did not plan: {planned}")
            if pipeline.export(planned).outcome is not Outcome.EXPORTED:
                raise RuntimeError("export failed")
            done = time.perf_counter()
            plans.append(planned_at - started)
            exports.append(done - planned_at)
            totals.append(done - started)
            reads = store.reads[folder.rstrip("/")] - before
            # With test spans: the five files and the listing, then the JUnit files it named.
            first = min(reads, TERMINAL_FILES + 1) if junit else reads
            floors.append(_floor(first, reads - first))
        exporter.shutdown()
        report[label] = {
            "read_and_build_ms_p50": 1e3 * statistics.median(plans),
            "export_ms_p50": 1e3 * statistics.median(exports),
            "total_ms_p50": 1e3 * statistics.median(totals),
            "total_ms_p99": 1e3 * percentile(totals, 0.99),
            "reads_floor_ms_p50": 1e3 * statistics.median(floors),
        }
    for label in ("concurrent", "concurrent_no_test_spans"):
        row = report[label]
        bound = 1e3 * GCS_GET.p50 + row["export_ms_p50"]
        row["ratio_to_one_get_plus_export"] = row["total_ms_p50"] / bound
        row["ratio_to_floor_plus_export"] = row["total_ms_p50"] / (
            row["reads_floor_ms_p50"] + row["export_ms_p50"]
        )
        row["floor_ratio_to_one_get_plus_export"] = (
            row["reads_floor_ms_p50"] + row["export_ms_p50"]
        ) / bound
    concurrent = report["concurrent"]
    report["one_get_plus_export_ms"] = 1e3 * GCS_GET.p50 + concurrent["export_ms_p50"]
    report["ratio_to_one_get_plus_export"] = concurrent["ratio_to_one_get_plus_export"]
    report["speedup"] = report["sequential"]["total_ms_p50"] / concurrent["total_ms_p50"]
    return report


@functools.cache
def _floor(first: int, then: int) -> float:
    return reads_floor_p50(GCS_GET, first, then)


class _Schedule:
    """Per job: when its message is published and when its late files land (monotonic)."""

    def __init__(self, messages: Sequence[tuple[Delivery, str]], plan: FreshnessPlan) -> None:
        rng = random.Random(7)  # noqa: S311 - a model, not a secret
        self.lags = {
            folder: {name: plan.lag.draw(rng) for name in LATE_FILES} for _, folder in messages
        }
        self.start = time.monotonic() + 0.5
        self.publish = {
            folder: self.start + index / plan.rate for index, (_, folder) in enumerate(messages)
        }

    def withhold(self, store: ModelledStore) -> None:
        for folder, lags in self.lags.items():
            for name, lag in lags.items():
                store.withhold(folder, name, self.publish[folder] + lag)

    def landed(self, folder: str) -> float:
        return self.publish[folder] + max(self.lags[folder].values())

    def freshness(self, done: dict[str, float]) -> list[float]:
        return [max(0.0, at - self.landed(folder)) for folder, at in done.items()]


class _Recorder:
    """The pipeline's handle and recheck, noting when each job's complete trace went out."""

    def __init__(self, pipeline: Pipeline, folders: dict[bytes, str]) -> None:
        self._pipeline = pipeline
        self._folders = folders
        self.done: dict[str, float] = {}

    def handle(self, delivery: Delivery) -> Result:
        return self._note(delivery, self._pipeline.handle(delivery))

    def recheck(self, delivery: Delivery, late: Result) -> Result:
        return self._note(delivery, self._pipeline.recheck(delivery, late))

    def _note(self, delivery: Delivery, result: Result) -> Result:
        if result.outcome is Outcome.EXPORTED and result.has_root:
            self.done.setdefault(self._folders[delivery.data], time.monotonic())
        return result


def _reads(store: ModelledStore, folders: Sequence[str]) -> dict[str, float]:
    counts = [store.reads[folder] for folder in folders]
    mean = statistics.fmean(counts)
    return {"mean": mean, "max": max(counts), "usd_per_million_jobs": usd_per_million_jobs(mean)}


def _wait(done: dict[str, float], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(done) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def freshness_pull(
    messages: Sequence[tuple[Delivery, str]],
    mirror: Path,
    receiver: CountingReceiver,
    plan: FreshnessPlan,
) -> dict[str, Any]:
    """Freshness through the pull worker (holding late messages) on the emulator."""
    store = ModelledStore(MirrorArtifactStore(mirror), latency=GCS_GET, seed=2)
    exporter = _exporter(receiver)
    pipeline = _pipeline(store, exporter, grace=GRACE)
    recorder = _Recorder(pipeline, {delivery.data: folder for delivery, folder in messages})
    done = recorder.done
    with PubSubEmulator() as emulator:
        topic = emulator.create_topic(PROJECT, "fresh")
        subscription = emulator.create_subscription(
            PROJECT, "fresh", topic, ack_deadline_seconds=60
        )
        worker = PullWorker(
            emulator.streaming_subscriber(),
            PullSettings(subscription=subscription),
            recorder.handle,
            hold_for=GRACE,
            recheck=recorder.recheck,
        )
        worker.start()
        schedule = _Schedule(messages, plan)
        schedule.withhold(store)
        publisher = emulator.publisher()
        for delivery, folder in messages:
            time.sleep(max(0.0, schedule.publish[folder] - time.monotonic()))
            publisher.publish(topic=topic, messages=[PubsubMessage(data=delivery.data)])
        _wait(done, len(messages), timeout=plan.lag.scale * 60 + 60)
        worker.stop()
    exporter.shutdown()
    return {
        "freshness_s": _summary(schedule.freshness(done)),
        "completed": len(done),
        "jobs": len(messages),
        "nacked": worker.nacked,
        "rechecks": worker.rechecks,
        "reads_per_job": _reads(store, [folder for _, folder in messages]),
    }


class _PushServer:
    """The push endpoint on loopback in a thread of its own (its own event loop)."""

    def __init__(self, endpoint: PushEndpoint, settings: PushSettings) -> None:
        self._endpoint = endpoint
        self._settings = settings
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="bench-push", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the push endpoint did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def started(port: int) -> None:
                self.port = port
                self._ready.set()

            app = create_app(self._endpoint, self._settings)
            await serve(app, self._settings, self._stop, started=started)

        asyncio.run(main())


def _envelope(delivery: Delivery, published: datetime) -> bytes:
    message = {
        "data": base64.b64encode(delivery.data).decode(),
        "messageId": delivery.message_id or "1",
        "publishTime": published.isoformat().replace("+00:00", "Z"),
    }
    return json.dumps({"message": message, "subscription": "projects/b/subscriptions/s"}).encode()


async def _play_pubsub(
    url: str, messages: Sequence[tuple[Delivery, str]], schedule: _Schedule, scale: float
) -> dict[str, int]:
    """Post each message at its publish time; on a non-2xx answer, again after the backoff."""
    nacks = {"nacks": 0}
    wall_offset = time.time() - time.monotonic()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def deliver(delivery: Delivery, folder: str) -> None:
            await asyncio.sleep(max(0.0, schedule.publish[folder] - time.monotonic()))
            published = datetime.fromtimestamp(schedule.publish[folder] + wall_offset, UTC)
            body = _envelope(delivery, published)
            attempt = 0
            while True:
                headers = {"Content-Type": "application/json"}
                async with session.post(url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:  # noqa: PLR2004 - HTTP success
                        return
                nacks["nacks"] += 1
                backoff = min(RETRY_MIN_SECONDS * 2**attempt, RETRY_MAX_SECONDS)
                attempt += 1
                await asyncio.sleep(scale * backoff)

        await asyncio.gather(*(deliver(delivery, folder) for delivery, folder in messages))
    return nacks


def freshness_push(
    messages: Sequence[tuple[Delivery, str]],
    mirror: Path,
    receiver: CountingReceiver,
    plan: FreshnessPlan,
    *,
    hold: bool,
) -> dict[str, Any]:
    """Freshness through the push endpoint, holding late messages or nacking them."""
    store = ModelledStore(MirrorArtifactStore(mirror), latency=GCS_GET, seed=3)
    exporter = _exporter(receiver)
    pipeline = _pipeline(store, exporter, grace=GRACE)
    recorder = _Recorder(pipeline, {delivery.data: folder for delivery, folder in messages})
    done = recorder.done
    settings = PushSettings(auth="off", host="127.0.0.1", port=0)  # the shipped hold bounds
    if not hold:
        settings = replace(settings, hold_seconds=0.0)
    endpoint = PushEndpoint(
        recorder.handle, settings, verifier=None, hold_for=GRACE, recheck=recorder.recheck
    )
    with _PushServer(endpoint, settings) as server:
        schedule = _Schedule(messages, plan)
        schedule.withhold(store)
        url = f"http://127.0.0.1:{server.port}/"
        nacks = asyncio.run(_play_pubsub(url, messages, schedule, plan.lag.scale))
    exporter.shutdown()
    return {
        "freshness_s": _summary(schedule.freshness(done)),
        "completed": len(done),
        "jobs": len(messages),
        "nacked": nacks["nacks"],
        "rechecks": endpoint.rechecks,
        "reads_per_job": _reads(store, [folder for _, folder in messages]),
    }


def backfill_rate(mirror: Path, receiver: CountingReceiver, plan: FreshnessPlan) -> dict[str, Any]:
    """Backfill runs per second at each concurrency over the latency model, ``seconds`` each."""
    prefixes = tuple(f"gs://{bucket.name}/" for bucket in sorted(mirror.iterdir()))
    rows: dict[str, Any] = {}
    for concurrency in plan.backfill_concurrency:
        store = ModelledStore(MirrorArtifactStore(mirror), latency=GCS_GET, seed=4)
        read_ahead = ReadAheadStore(store)
        exporter = _exporter(receiver)
        pipeline = _pipeline(read_ahead, exporter, grace=timedelta(0))
        tally = Tally()
        timer = threading.Timer(plan.backfill_seconds, tally.stop.set)
        timer.start()
        run_backfill(
            read_ahead,
            prefixes,
            Selection(),
            PipelineSink(pipeline),
            concurrency=concurrency,
            tally=tally,
        )
        timer.cancel()
        counts = tally.snapshot()
        exporter.shutdown()
        rows[str(concurrency)] = {
            "runs": counts.done,
            "seconds": counts.elapsed,
            "runs_per_s": counts.done / counts.elapsed,
            "reads_per_run": sum(store.reads.values()) / max(1, counts.done),
        }
    single = rows[str(plan.backfill_concurrency[0])]["runs_per_s"]
    for level, row in rows.items():
        row["latency_bound_runs_per_s"] = int(level) * single
        row["fraction_of_bound"] = row["runs_per_s"] / row["latency_bound_runs_per_s"]
    return rows


def measure(
    corpus: Path, mirror: Path, helper_cpus: frozenset[int], plan: FreshnessPlan
) -> dict[str, Any]:
    """Run every freshness measurement; return the report section."""
    messages = terminal_deliveries(corpus, mirror, plan.jobs)
    # The services log a line per message; here they would interleave with the report.
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        return _measure(messages, mirror, helper_cpus, plan)
    finally:
        structlog.configure(**saved)


def _measure(
    messages: Sequence[tuple[Delivery, str]],
    mirror: Path,
    helper_cpus: frozenset[int],
    plan: FreshnessPlan,
) -> dict[str, Any]:
    with CountingReceiver(helper_cpus) as receiver:
        report: dict[str, Any] = {
            "latency_model": GCS_GET.describe(),
            "lag_model": plan.lag.describe(),
            "retry_policy": f"{RETRY_MIN_SECONDS:g} s doubling to {RETRY_MAX_SECONDS:g} s"
            + (f", scaled by {plan.lag.scale:g} like the lags" if plan.lag.scale != 1 else ""),
            "one_message": one_message(messages[: plan.single], mirror, receiver),
            "pull_hold": freshness_pull(messages, mirror, receiver, plan),
            "push_hold": freshness_push(messages, mirror, receiver, plan, hold=True),
            "push_nack": freshness_push(messages, mirror, receiver, plan, hold=False),
            "backfill": backfill_rate(mirror, receiver, plan),
        }
    return report
