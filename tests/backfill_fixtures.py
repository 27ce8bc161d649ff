"""What the backfill tests share: one corpus, the spans it should give, and small helpers."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from support.oracle import RecordingExporter, SpanKey, expected_spans

from processor.artifacts import ArtifactStore, ListedFile
from processor.export.exporters import build_resource
from processor.export.otel import SpanConverter
from processor.export.otlp_json import DecodedSpan
from processor.pipeline import Pipeline, PipelineSettings
from processor.synthetic import Scenario, SyntheticJob, generate, write_mirror
from processor.tools.backfill import PipelineSink

CORPUS_SIZE = 300
BUCKET = "prow-artifacts"


@functools.cache
def corpus() -> tuple[SyntheticJob, ...]:
    """Return the corpus every backfill test runs on (the generator's default seed)."""
    return tuple(generate(CORPUS_SIZE))


@functools.cache
def expected() -> Mapping[SpanKey, DecodedSpan]:
    """Return the spans crier's terminal messages alone give: what backfill must export."""
    with TemporaryDirectory() as root:
        write_mirror(corpus(), Path(root))
        return expected_spans([job.messages[-1] for job in finished(corpus())], Path(root))


def pod_never_ran(job: SyntheticJob) -> bool:
    """Tell whether the job is the lifecycle whose pod was created but ran no container."""
    return job.scenario in {Scenario.ABORTED_WHILE_PENDING, Scenario.POD_PENDING_TIMEOUT}


def finished(jobs: Iterable[SyntheticJob]) -> list[SyntheticJob]:
    """Jobs whose terminal message names a folder and whose pod ran: the runs backfill traces."""
    return [job for job in jobs if job.url and not pod_never_ran(job)]


def folder_count(jobs: Iterable[SyntheticJob]) -> int:
    """Folders holding a prowjob.json: each job's own, plus a revived pod's abandoned one."""
    return sum(bool(job.gcs_path) + len(job.abandoned_artifacts) for job in jobs)


def trace_id(job: SyntheticJob) -> str:
    """Return the job's trace ID in uid mode: its ProwJob name as 32 hex digits."""
    return job.uid.replace("-", "")


def spans_of(
    spans: Mapping[SpanKey, DecodedSpan], jobs: Iterable[SyntheticJob]
) -> dict[SpanKey, DecodedSpan]:
    """Return the spans of ``jobs``' traces only."""
    wanted = {trace_id(job) for job in jobs}
    return {key: span for key, span in spans.items() if span.trace_id in wanted}


def recording_sink(store: ArtifactStore) -> tuple[PipelineSink, RecordingExporter]:
    """Return a pipeline sink as backfill builds one (grace 0), exporting to a recorder."""
    recorder = RecordingExporter()
    pipeline = Pipeline(
        store,
        recorder,
        SpanConverter(build_resource({})),
        PipelineSettings(grace=timedelta(0)),
    )
    return PipelineSink(pipeline), recorder


class CountingStore:
    """Wraps a store, counting the reads of each file name and the folders it listed."""

    def __init__(self, inner: ArtifactStore) -> None:
        """Count what goes through to ``inner``."""
        self._inner = inner
        self._lock = threading.Lock()
        self.reads: Counter[str] = Counter()
        self.read_folders: list[str] = []
        self.listed = 0

    def read(self, folder: str, name: str) -> bytes | None:
        """Count, then read."""
        with self._lock:
            self.reads[name] += 1
            self.read_folders.append(folder)
        return self._inner.read(folder, name)

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """List through the inner store."""
        return self._inner.list_files(folder, under, name_glob, limit)

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Count each folder as the listing yields it."""
        for folder in self._inner.find(prefix, name):
            with self._lock:
                self.listed += 1
            yield folder
