"""The benchmark's inputs: a corpus's artifacts in a local mirror and its messages as push bodies.

Jobs are generated and written one at a time (a job's artifacts are ~100 KiB), so preparing
10,000 jobs keeps only their messages in memory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processor.artifacts.mirror import MirrorArtifactStore
from processor.core.message import Delivery
from processor.export.exporters import build_resource
from processor.export.otel import SpanConverter
from processor.pipeline import Outcome, Pipeline, PipelineSettings
from processor.synthetic import Published, generate, write_jsonl, write_mirror
from processor.transports.envelope import delivery_from_push

SEED = 2026


@dataclass(frozen=True)
class Corpus:
    """One set of messages (a JSONL file of push bodies) over the shared mirror."""

    path: Path
    jobs: int
    messages: int
    spans: int
    """Spans the pipeline exports for these messages, processed once each in publish order."""
    exported: int
    """Messages that export spans (the others are skipped: nothing to trace yet)."""
    message_bytes: float
    """Mean size of crier's message (the Pub/Sub message data)."""


@dataclass(frozen=True)
class Workspace:
    """Everything the benchmarks read."""

    mirror: Path
    small: Corpus
    """The throughput/push/pull corpus."""
    large: Corpus
    """The memory corpus (a superset of ``small``'s jobs)."""


class CountingExporter(SpanExporter):
    """Counts the spans it is given (single-threaded use)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count and succeed."""
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def read_deliveries(path: Path) -> Iterator[Delivery]:
    """Yield the deliveries of a push-body JSONL file, decoded as the push endpoint does."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield delivery_from_push(line)


def read_bodies(path: Path) -> list[bytes]:
    """Return the push bodies of a JSONL file, one per line."""
    return [line.rstrip(b"\n") for line in path.read_bytes().splitlines() if line.strip()]


def _sorted(messages: list[Published]) -> list[Published]:
    return sorted(messages, key=lambda message: message.publish_time)


def _describe(path: Path, jobs: int, messages: list[Published], mirror: Path) -> Corpus:
    count = write_jsonl(messages, path, envelope=True)
    exporter = CountingExporter()
    pipeline = Pipeline(
        MirrorArtifactStore(mirror),
        exporter,
        SpanConverter(build_resource({})),
        PipelineSettings(grace=timedelta(0)),
    )
    outcomes: Counter[Outcome] = Counter(
        pipeline.handle(delivery).outcome for delivery in read_deliveries(path)
    )
    if set(outcomes) - {Outcome.EXPORTED, Outcome.SKIPPED}:
        raise RuntimeError(f"the corpus does not replay cleanly: {dict(outcomes)}")
    sizes = [len(json.dumps(message.data, separators=(",", ":"))) for message in messages]
    return Corpus(
        path=path,
        jobs=jobs,
        messages=count,
        spans=exporter.spans,
        exported=outcomes[Outcome.EXPORTED],
        message_bytes=sum(sizes) / max(1, len(sizes)),
    )


def prepare(root: Path, *, small_jobs: int, large_jobs: int, seed: int = SEED) -> Workspace:
    """Generate ``large_jobs`` jobs into ``root``; the first ``small_jobs`` form the small corpus.

    The large corpus is described (span count) without replaying it: only its size matters.
    """
    if not 0 < small_jobs <= large_jobs:
        raise ValueError("need 0 < small_jobs <= large_jobs")
    mirror = root / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)
    small: list[Published] = []
    large: list[Published] = []
    for index, job in enumerate(generate(large_jobs, seed=seed)):
        write_mirror([job], mirror)
        large.extend(job.messages)
        if index < small_jobs:
            small.extend(job.messages)
    small_corpus = _describe(root / "small.jsonl", small_jobs, _sorted(small), mirror)
    large_path = root / "large.jsonl"
    large_count = write_jsonl(_sorted(large), large_path, envelope=True)
    large_corpus = Corpus(
        path=large_path,
        jobs=large_jobs,
        messages=large_count,
        spans=0,
        exported=0,
        message_bytes=small_corpus.message_bytes,
    )
    return Workspace(mirror=mirror, small=small_corpus, large=large_corpus)
