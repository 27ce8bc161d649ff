"""Test spans: what one terminal message costs with a Kubernetes-e2e-sized JUnit file, and more.

One synthetic job's folder is written four times: without JUnit, with a 7,000-spec Ginkgo v2
``junit_01.xml`` (most specs skipped, four parallel nodes, a few failures), with a hostile 50 MiB
file (over the per-file limit), and with a hostile file just under the limit (tens of thousands
of failing cases, the worst a file the limits let through can be). For each, a fresh child process
on the measured core builds the pipeline, warms it up on the job without JUnit, then handles the
terminal message: CPU time per message (median of repeats) and the process's peak RSS (VmHWM)
before and after. Spans are encoded to OTLP protobuf as the real exporter does, then dropped.

The throughput part replays the benchmark corpus (whose jobs carry go-junit-report files, as the
synthetic fleet writes them) serially with test spans on and off in one child, alternating every
250 messages so that the shared machine's drift falls on both; ratios are on / off.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bench.proc import own_memory_kib
from bench.workspace import Corpus, read_deliveries
from processor.app import build_pipeline
from processor.config import Settings
from processor.core.message import Delivery
from processor.export.otlp_encode import encode_spans
from processor.junit_gather import DEFAULT_MAX_JUNIT_BYTES
from processor.logs import configure_logging
from processor.synthetic import generate, message_bytes, mirror_path, write_mirror
from processor.synthetic.junit import kubernetes_e2e_junit

E2E_CASES = 7000
CHUNK = 250
REPEATS = 5
VARIANTS = ("no JUnit", "7,000-case e2e", "hostile 50 MiB", "hostile at the limit")
_JUNIT = "artifacts/junit_01.xml"


class EncodingExporter(SpanExporter):
    """Encodes spans to an OTLP request as prowtrace's OTLP exporters do, serialises it; no I/O."""

    def __init__(self) -> None:
        """Start at zero."""
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode, serialise, count."""
        encode_spans(spans).SerializeToString()
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def _hostile_at_limit(limit: int) -> bytes:
    """Return well-formed JUnit just under ``limit`` bytes: only failing cases, long messages."""
    head, tail = b'<testsuite name="hostile">', b"</testsuite>"
    case = (
        b'<testcase name="c" time="1"><failure message="' + b"m" * 200 + b'">x</failure></testcase>'
    )
    count = (limit - len(head) - len(tail)) // len(case)
    return head + case * count + tail


def prepare(root: Path) -> tuple[dict[str, Path], Delivery, Delivery]:
    """Write one job's folder once per variant; return the mirrors and its terminal message.

    Also returns a second job's terminal message (no JUnit) for warming up.
    """
    jobs = [
        job
        for job in generate(40, seed=13)
        if {"artifacts/junit_unit.xml", "podinfo.json"} <= set(job.artifacts)
    ]
    job, warm = jobs[0], jobs[1]
    mirrors: dict[str, Path] = {}
    for index, variant in enumerate(VARIANTS):
        mirror = root / f"junit-{index}"
        write_mirror([job, warm], mirror)
        folder = mirror_path(mirror, job.gcs_path)
        for path in folder.glob("artifacts/*"):
            path.unlink()
        for path in mirror_path(mirror, warm.gcs_path).glob("artifacts/*"):
            path.unlink()
        target = folder / _JUNIT
        if variant == "7,000-case e2e":
            start, seconds = _test_container(job.artifacts["podinfo.json"])
            target.write_bytes(
                kubernetes_e2e_junit("bench", cases=E2E_CASES, start=start, seconds=seconds)
            )
        elif variant == "hostile 50 MiB":
            with target.open("wb") as out:
                out.write(b"<testsuite>")
                for _ in range(50):
                    out.write(b"<testcase/>" * (1024 * 1024 // 11))
                out.write(b"</testsuite>")
        elif variant == "hostile at the limit":
            target.write_bytes(_hostile_at_limit(DEFAULT_MAX_JUNIT_BYTES))
        mirrors[variant] = mirror
    final = job.messages[-1]
    warm_final = warm.messages[-1]
    return (
        mirrors,
        Delivery(data=message_bytes(final), publish_time=final.publish_time),
        Delivery(data=message_bytes(warm_final), publish_time=warm_final.publish_time),
    )


def _test_container(podinfo: bytes) -> tuple[datetime, float]:
    """Return when the pod's test container started and how long it ran."""
    doc = json.loads(podinfo)
    for status in doc["pod"]["status"]["containerStatuses"]:
        if status["name"] == "test":
            terminated = status["state"]["terminated"]
            start = datetime.fromisoformat(terminated["startedAt"])
            end = datetime.fromisoformat(terminated["finishedAt"])
            return start, (end - start).total_seconds()
    return datetime(2026, 1, 1, tzinfo=UTC), 600.0


def _one_message_child(
    mirror: Path,
    message: Delivery,
    warm: Delivery,
    cpus: frozenset[int],
    out: Any,  # noqa: ANN401 - a multiprocessing queue
) -> None:
    os.sched_setaffinity(0, cpus)
    with Path(os.devnull).open("w", encoding="utf-8") as quiet:
        configure_logging("WARNING", "json", stream=quiet)
        exporter = EncodingExporter()
        pipeline = build_pipeline(
            Settings(artifacts=str(mirror), grace=timedelta(0), log_level="WARNING"),
            exporter=exporter,
        )
        for _ in range(3):
            pipeline.handle(warm)
        before = own_memory_kib()
        spans_before = exporter.spans
        cpu: list[float] = []
        for _ in range(REPEATS):
            began = time.process_time()
            result = pipeline.handle(message)
            cpu.append(time.process_time() - began)
        after = own_memory_kib()
    out.put(
        {
            "outcome": str(result.outcome),
            "spans": (exporter.spans - spans_before) // REPEATS,
            "cpu_ms": 1000 * statistics.median(cpu),
            "peak_before_mib": before["VmHWM"] / 1024,
            "peak_after_mib": after["VmHWM"] / 1024,
        }
    )


def _throughput_child(
    corpus: Corpus,
    mirror: Path,
    rounds: int,
    cpus: frozenset[int],
    out: Any,  # noqa: ANN401 - a multiprocessing queue
) -> None:
    os.sched_setaffinity(0, cpus)
    deliveries = list(read_deliveries(corpus.path))
    wall: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    with Path(os.devnull).open("w", encoding="utf-8") as quiet:
        configure_logging("WARNING", "json", stream=quiet)
        pipelines = {
            "on": build_pipeline(
                Settings(artifacts=str(mirror), grace=timedelta(0)), exporter=EncodingExporter()
            ),
            "off": build_pipeline(
                Settings(artifacts=str(mirror), grace=timedelta(0), junit=None),
                exporter=EncodingExporter(),
            ),
        }
        for pipeline in pipelines.values():
            for delivery in deliveries[:100]:
                pipeline.handle(delivery)
        # Short alternating chunks: the shared machine's drift hits both settings alike.
        for _ in range(rounds):
            spent = {name: [0.0, 0.0] for name in pipelines}
            for index, first in enumerate(range(0, len(deliveries), CHUNK)):
                chunk = deliveries[first : first + CHUNK]
                order = ("on", "off") if index % 2 == 0 else ("off", "on")
                for name in order:
                    began_wall, began_cpu = time.perf_counter(), time.process_time()
                    for delivery in chunk:
                        pipelines[name].handle(delivery)
                    spent[name][0] += time.perf_counter() - began_wall
                    spent[name][1] += time.process_time() - began_cpu
            for name, (wall_s, cpu_s) in spent.items():
                wall[name].append(len(deliveries) / wall_s)
                cpu[name].append(1000 * cpu_s / len(deliveries))
    out.put({"wall": wall, "cpu": cpu})


def measure(
    root: Path,
    corpus: Corpus,
    mirror: Path,
    cores: tuple[frozenset[int], frozenset[int]],
    rounds: int = 3,
) -> dict[str, Any]:
    """Run both parts and return their figures."""
    measured_cpus, _ = cores
    mirrors, message, warm = prepare(root)
    context = multiprocessing.get_context("spawn")
    per_message: dict[str, Any] = {}
    for variant, variant_mirror in mirrors.items():
        queue = context.Queue()
        child = context.Process(
            target=_one_message_child,
            args=(variant_mirror, message, warm, measured_cpus, queue),
            name="bench-junit",
        )
        child.start()
        per_message[variant] = queue.get(timeout=600)
        child.join()
    for variant_mirror in mirrors.values():
        shutil.rmtree(variant_mirror, ignore_errors=True)
    queue = context.Queue()
    child = context.Process(
        target=_throughput_child, args=(corpus, mirror, rounds, measured_cpus, queue)
    )
    child.start()
    measured: dict[str, dict[str, list[float]]] = queue.get(timeout=3600)
    child.join()
    wall, cpu = measured["wall"], measured["cpu"]
    return {
        "per_message": per_message,
        "throughput": {
            "on_msgs_per_s": statistics.median(wall["on"]),
            "off_msgs_per_s": statistics.median(wall["off"]),
            "ratio": statistics.median(
                on / off for on, off in zip(wall["on"], wall["off"], strict=True)
            ),
            "on_cpu_ms_per_msg": statistics.median(cpu["on"]),
            "off_cpu_ms_per_msg": statistics.median(cpu["off"]),
            "cpu_ratio": statistics.median(
                off / on for on, off in zip(cpu["on"], cpu["off"], strict=True)
            ),
            "rounds": rounds,
            "messages": corpus.messages,
        },
    }


def render(result: dict[str, Any]) -> list[str]:
    """Return the report's lines."""
    lines = ["", "test spans (one terminal message, its own process; MiB of peak RSS = VmHWM)"]
    lines.append(
        f"  {'JUnit in the job folder':<24}{'outcome':>10}{'spans':>7}{'CPU ms':>9}"
        f"{'peak before':>13}{'peak after':>12}"
    )
    for variant, row in result["per_message"].items():
        lines.append(
            f"  {variant:<24}{row['outcome']:>10}{row['spans']:>7}{row['cpu_ms']:>9.1f}"
            f"{row['peak_before_mib']:>13.1f}{row['peak_after_mib']:>12.1f}"
        )
    through = result["throughput"]
    lines.append(
        f"  corpus replay, serial, test spans on / off (median of {through['rounds']}): "
        f"{through['on_msgs_per_s']:,.0f} / {through['off_msgs_per_s']:,.0f} msg/s, "
        f"ratio {100 * through['ratio']:.1f} %; CPU {through['on_cpu_ms_per_msg']:.3f} / "
        f"{through['off_cpu_ms_per_msg']:.3f} ms/msg, CPU ratio {100 * through['cpu_ratio']:.1f} %"
    )
    return lines
