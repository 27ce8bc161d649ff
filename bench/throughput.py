"""Throughput: the full pipeline against the floor, on one core, in the same process and run.

The child process is pinned to the measured core (gRPC's own threads inherit the pin); the OTLP
receiver runs in another process on the helper core. Each round times the floor, then the
pipeline as ``prowtrace replay`` runs it (one message after another, one export each), then as
``prowtrace pull`` runs it (32 threads, flow control of 256 messages, group commit); then the floor
and the concurrent pipeline once more with test spans off (``PROWTRACE_TEST_SPANS=off``: the
pipeline as it was before JUnit files were read, against a floor of the same fewer spans). Ratios
are taken within a round, so drift of the shared machine between rounds cancels out.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import floor
from bench.receiver import CountingReceiver, otlp_environ
from bench.workspace import Corpus, read_deliveries
from processor.app import build_pipeline, service_exporter
from processor.config import Settings
from processor.core.message import Delivery
from processor.export.exporters import build_resource
from processor.logs import configure_logging
from processor.pipeline import Outcome, Pipeline, Result

PULL_THREADS = 32
PULL_OUTSTANDING = 256
WARMUP_MESSAGES = 100
BARE = "_no_test_spans"
"""Suffix of the figures measured with test spans off."""


def handle_serially(pipeline: Pipeline, deliveries: Sequence[Delivery]) -> list[Result]:
    """Process one message after another (``prowtrace replay``)."""
    return [pipeline.handle(delivery) for delivery in deliveries]


def handle_concurrently(
    pipeline: Pipeline,
    deliveries: Sequence[Delivery],
    threads: int = PULL_THREADS,
    outstanding: int = PULL_OUTSTANDING,
) -> list[Result]:
    """Process on a thread pool with at most ``outstanding`` messages in flight (``pull``)."""
    slots = threading.BoundedSemaphore(outstanding)

    def task(delivery: Delivery) -> Result:
        try:
            return pipeline.handle(delivery)
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bench-pull") as pool:
        futures = []
        for delivery in deliveries:
            slots.acquire()
            futures.append(pool.submit(task, delivery))
        return [future.result() for future in futures]


def _timed(
    run: Callable[[], list[Result]],
) -> tuple[float, float, Counter[Outcome]]:
    wall, cpu = time.perf_counter(), time.process_time()
    results = run()
    elapsed, used = time.perf_counter() - wall, time.process_time() - cpu
    return elapsed, used, Counter(result.outcome for result in results)


def _measure_pipeline(
    mode: str, mirror: Path, deliveries: Sequence[Delivery], *, test_spans: bool = True
) -> tuple[float, float, Counter[Outcome]]:
    settings = Settings(artifacts=str(mirror), grace=timedelta(0), log_level="WARNING")
    if not test_spans:
        settings = dataclasses.replace(settings, junit=None)
    if mode == "serial":
        pipeline = build_pipeline(settings)
        handle_serially(pipeline, deliveries[:WARMUP_MESSAGES])  # connect, fill caches
        timed = _timed(lambda: handle_serially(pipeline, deliveries))
        pipeline_exporter = None
    else:
        pipeline_exporter = service_exporter(os.environ)  # the services' exporter, as wired
        pipeline = build_pipeline(settings, exporter=pipeline_exporter)
        handle_concurrently(pipeline, deliveries[:WARMUP_MESSAGES])
        timed = _timed(lambda: handle_concurrently(pipeline, deliveries))
    if pipeline_exporter is not None:
        pipeline_exporter.shutdown()
    return timed


@dataclass(frozen=True)
class _Spec:
    corpus_path: Path
    mirror: Path
    endpoint: str
    cpus: frozenset[int]
    rounds: int


def _child(spec: _Spec, results: Any) -> None:  # noqa: ANN401 - a multiprocessing queue
    os.sched_setaffinity(0, spec.cpus)
    os.environ.update(otlp_environ(spec.endpoint))
    corpus_path, mirror, rounds = spec.corpus_path, spec.mirror, spec.rounds
    with Path(os.devnull).open("w", encoding="utf-8") as quiet:
        configure_logging("WARNING", "json", stream=quiet)
        deliveries = list(read_deliveries(corpus_path))
        planned = floor.plan(deliveries, mirror)
        planned_bare = floor.plan(deliveries, mirror, test_spans=False)
        resource = build_resource({})
        floor.run(planned[:WARMUP_MESSAGES], resource)
        measured: list[dict[str, Any]] = []
        for _ in range(rounds):
            row: dict[str, Any] = {}
            for suffix, plan in (("", planned), (BARE, planned_bare)):
                wall, cpu, size = floor.run(plan, resource)
                row[f"floor{suffix}"] = {"seconds": wall, "cpu_seconds": cpu, "bytes": size}
                modes = ("serial", "concurrent") if suffix == "" else ("concurrent",)
                for mode in modes:
                    elapsed, used, outcomes = _measure_pipeline(
                        mode, mirror, deliveries, test_spans=suffix == ""
                    )
                    row[f"{mode}{suffix}"] = {
                        "seconds": elapsed,
                        "cpu_seconds": used,
                        "outcomes": {str(k): v for k, v in outcomes.items()},
                    }
            measured.append(row)
        results.put(measured)


def summarise(rounds: Sequence[dict[str, Any]], messages: int) -> dict[str, Any]:
    """Turn per-round timings into rates, per-round ratios and their medians."""
    per_round = []
    for row in rounds:
        entry: dict[str, Any] = {}
        for mode in row:
            # Each pipeline against the floor of the same spans (test spans on or off).
            reference = row["floor" + (BARE if mode.endswith(BARE) else "")]
            rate = messages / row[mode]["seconds"]
            entry[f"{mode}_msgs_per_s"] = rate
            entry[f"{mode}_cpu_ms_per_msg"] = 1000 * row[mode]["cpu_seconds"] / messages
            if not mode.startswith("floor"):
                entry[f"{mode}_ratio"] = rate * reference["seconds"] / messages
                # The same ratio in CPU time: immune to the measured core being lent to another
                # tenant for a moment, which stretches wall time (seen on shared machines).
                entry[f"{mode}_cpu_ratio"] = reference["cpu_seconds"] / row[mode]["cpu_seconds"]
        per_round.append(entry)
    keys = per_round[0].keys() if per_round else []
    median = {key: statistics.median(entry[key] for entry in per_round) for key in keys}
    return {"messages": messages, "rounds": per_round, "median": median}


def measure(
    corpus: Corpus, mirror: Path, cores: tuple[frozenset[int], frozenset[int]], rounds: int
) -> dict[str, Any]:
    """Run the throughput benchmark; return rates, ratios and the receiver's counts."""
    measured_cpus, helper_cpus = cores
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with CountingReceiver(helper_cpus) as receiver:
        child = context.Process(
            target=_child,
            args=(_Spec(corpus.path, mirror, receiver.endpoint, measured_cpus, rounds), queue),
            name="bench-throughput",
        )
        child.start()
        rows = queue.get(timeout=1800)
        child.join()
        requests, spans = receiver.counts()
    if child.exitcode != 0:
        raise RuntimeError(f"throughput child exited with {child.exitcode}")
    summary = summarise(rows, corpus.messages)
    per_run = corpus.spans * 2 * rounds
    warmups = 2 * rounds
    summary["receiver"] = {"requests": requests, "spans": spans, "expected_at_least": per_run}
    summary["spans_ok"] = spans >= per_run
    summary["warmup_runs"] = warmups
    for row in rows:
        for mode in ("serial", "concurrent", f"concurrent{BARE}"):
            bad = set(row[mode]["outcomes"]) - {str(Outcome.EXPORTED), str(Outcome.SKIPPED)}
            if bad:
                raise RuntimeError(f"{mode} pipeline had outcomes {row[mode]['outcomes']}")
    return summary
