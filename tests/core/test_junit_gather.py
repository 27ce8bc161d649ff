"""Finding and reading a job's JUnit files; what the pipeline does with them and their faults."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from core_fixtures import (
    GCS_PATH,
    PUBLISH,
    clone_records_doc,
    crier_message,
    encode,
    finished_doc,
    podinfo_doc,
    prowjob_doc,
    started_doc,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.memory_store import MemoryArtifactStore

from processor.artifacts import (
    ArtifactStore,
    ArtifactUnavailable,
    ListedFile,
)
from processor.artifacts.mirror import MirrorArtifactStore
from processor.config import ConfigError, load_settings
from processor.core import facts
from processor.core import semconv as sc
from processor.core.message import Delivery
from processor.export.otel import SpanConverter
from processor.junit_gather import JunitLimits, gather_junit
from processor.pipeline import Outcome, Pipeline, PipelineSettings

REAL = Path(__file__).parents[1] / "data" / "real-junit" / "files"
GOOD = (REAL / "go-junit-report-v2_pass-fail-skip.xml").read_bytes()
FOLDER = "gs://bucket/logs/job/1"
IN_GRACE = PUBLISH + timedelta(seconds=30)


def full_store() -> MemoryArtifactStore:
    """Return a store holding every artifact of the core fixtures' failed run."""
    store = MemoryArtifactStore()
    documents = {
        facts.PROWJOB: prowjob_doc(),
        facts.PODINFO: podinfo_doc(),
        facts.CLONE_RECORDS: clone_records_doc(),
        facts.STARTED: started_doc(),
        facts.FINISHED: finished_doc(),
    }
    for name, doc in documents.items():
        store.put(GCS_PATH, name, encode(doc))
    return store


def delivery() -> Delivery:
    """Return crier's terminal message for that run."""
    return Delivery(data=encode(crier_message("failure")), publish_time=PUBLISH, message_id="42")


class ReadCountingStore:
    """Passes everything to ``inner`` and remembers which files were read."""

    def __init__(self, inner: ArtifactStore) -> None:
        """Wrap ``inner``."""
        self._inner = inner
        self.read_names: list[str] = []

    def read(self, folder: str, name: str) -> bytes | None:
        """Note the name, then read."""
        self.read_names.append(name)
        return self._inner.read(folder, name)

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """List through ``inner``."""
        return self._inner.list_files(folder, under, name_glob, limit)

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Find through ``inner``."""
        return self._inner.find(prefix, name)


class ListingOutageStore(MemoryArtifactStore):
    """Reads work; listing fails as Cloud Storage does during an outage."""

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """Fail transiently."""
        del name_glob, limit
        raise ArtifactUnavailable(f"{folder}/{under}: HTTP 503: backend unavailable")


def mirror_with(tmp_path: Path, files: dict[str, bytes]) -> MirrorArtifactStore:
    """Return a mirror whose job folder FOLDER holds ``files``."""
    for name, data in files.items():
        path = tmp_path / "bucket" / "logs" / "job" / "1" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return MirrorArtifactStore(tmp_path)


def run(
    store: MemoryArtifactStore, settings: PipelineSettings
) -> tuple[Outcome, list[ReadableSpan]]:
    """Handle the failed run's terminal message; return the outcome and the exported spans."""
    exporter = InMemorySpanExporter()
    pipeline = Pipeline(
        store,
        exporter,
        SpanConverter(Resource.create({"service.name": "prowtrace-test"})),
        settings,
        clock=lambda: IN_GRACE,
    )
    result = pipeline.handle(delivery())
    return result.outcome, list(exporter.get_finished_spans())


def test_the_lens_and_starter_config_files_are_read(tmp_path: Path) -> None:
    """artifacts/junit*.xml at any depth is read; other XML and files outside artifacts/ are not."""
    store = mirror_with(
        tmp_path,
        {
            "artifacts/junit_01.xml": GOOD,
            "artifacts/e2e/junit_runner.xml": GOOD,
            "artifacts/report.xml": GOOD,
            "junit.xml": GOOD,
        },
    )
    results = gather_junit(store, FOLDER, JunitLimits())
    assert [file.name for file in results.files] == [
        "artifacts/e2e/junit_runner.xml",
        "artifacts/junit_01.xml",
    ]


def test_a_hostile_50_mib_file_is_never_read(tmp_path: Path) -> None:
    """A file over the per-file limit is counted as too large without a read or its memory."""
    big = tmp_path / "bucket" / "logs" / "job" / "1" / "artifacts" / "junit_big.xml"
    big.parent.mkdir(parents=True)
    with big.open("wb") as out:
        out.write(b"<testsuite>")
        for _ in range(50):
            out.write(b"<testcase/>" * (1024 * 1024 // 11))
        out.write(b"</testsuite>")
    store = ReadCountingStore(MirrorArtifactStore(tmp_path))
    tracemalloc.start()
    try:
        results = gather_junit(store, FOLDER, JunitLimits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert results.too_large == ("artifacts/junit_big.xml",)
    assert store.read_names == []
    assert peak < 1024 * 1024


def test_the_job_total_bounds_what_is_read(tmp_path: Path) -> None:
    """Once the per-job total is spent, further files are counted as too large, not read."""
    store = mirror_with(tmp_path, {f"artifacts/junit_{i}.xml": GOOD for i in range(3)})
    results = gather_junit(store, FOLDER, JunitLimits(max_job_bytes=len(GOOD) * 2 + 10))
    assert [file.name for file in results.files] == [
        "artifacts/junit_0.xml",
        "artifacts/junit_1.xml",
    ]
    assert results.too_large == ("artifacts/junit_2.xml",)


def test_malformed_files_are_named_not_fatal(tmp_path: Path) -> None:
    """Truncated and hostile files are unreadable; the good one is still read."""
    store = mirror_with(
        tmp_path,
        {
            "artifacts/junit_a.xml": GOOD[:100],
            "artifacts/junit_b.xml": b'<!DOCTYPE t [<!ENTITY x "y">]><testsuite name="&x;"/>',
            "artifacts/junit_c.xml": GOOD,
        },
    )
    results = gather_junit(store, FOLDER, JunitLimits())
    assert results.unreadable == ("artifacts/junit_a.xml", "artifacts/junit_b.xml")
    assert [file.name for file in results.files] == ["artifacts/junit_c.xml"]


def test_pipeline_exports_the_trace_and_counts_unreadable_files() -> None:
    """A malformed JUnit file never fails the message: test spans and the root's count go out."""
    store = full_store()
    store.put(GCS_PATH, "artifacts/junit_bad.xml", b"<testsuite><testcase")
    store.put(GCS_PATH, "artifacts/junit_good.xml", GOOD)
    outcome, spans = run(store, PipelineSettings())
    root = next(span for span in spans if span.parent is None)
    assert root.attributes is not None
    names = {span.name for span in spans}
    assert outcome is Outcome.EXPORTED
    assert root.attributes[sc.PROW_JUNIT_UNREADABLE] == 1
    assert {"package/fail", "TestOne"} <= names


def test_a_listing_outage_retries_the_message() -> None:
    """When the listing fails transiently the message is retried, like any other read."""
    store = ListingOutageStore()
    for (folder, name), data in full_store()._files.items():
        store.put(folder, name, data)
    outcome, spans = run(store, PipelineSettings())
    assert (outcome, spans) == (Outcome.RETRY, [])


def test_test_spans_off_lists_nothing() -> None:
    """With test spans off, the store is never listed (a listing outage does not matter)."""
    store = ListingOutageStore()
    for (folder, name), data in full_store()._files.items():
        store.put(folder, name, data)
    outcome, _ = run(store, PipelineSettings(junit=None))
    assert outcome is Outcome.EXPORTED


def test_test_spans_setting_turns_them_off() -> None:
    """PROWTRACE_TEST_SPANS=off gives no JUnit limits; by default they are on, as documented."""
    assert load_settings({"PROWTRACE_TEST_SPANS": "off"}).junit is None
    assert load_settings({}).junit == JunitLimits()


def test_junit_limits_are_read_from_the_environment() -> None:
    """The three limits come from their variables."""
    settings = load_settings(
        {
            "PROWTRACE_MAX_JUNIT_BYTES": "1000",
            "PROWTRACE_MAX_JUNIT_JOB_BYTES": "5000",
            "PROWTRACE_MAX_TEST_SPANS": "20",
        }
    )
    assert settings.junit == JunitLimits(max_file_bytes=1000, max_job_bytes=5000, max_spans=20)


def test_a_bad_test_spans_value_is_refused() -> None:
    """A value other than on/off is a configuration error naming the variable."""
    with pytest.raises(ConfigError, match="PROWTRACE_TEST_SPANS"):
        load_settings({"PROWTRACE_TEST_SPANS": "maybe"})


def test_the_case_budget_is_shared_by_the_job_files(tmp_path: Path) -> None:
    """Cases kept across all files stop at the job's budget; the rest are counted as dropped."""
    many = b"<testsuite>" + b'<testcase name="c" time="1"/>' * 30 + b"</testsuite>"
    store = mirror_with(tmp_path, {"artifacts/junit_1.xml": many, "artifacts/junit_2.xml": many})
    results = gather_junit(store, FOLDER, JunitLimits(max_cases=40))
    kept = [len(file.suites[0].cases) for file in results.files]
    dropped = [file.suites[0].dropped for file in results.files]
    assert (kept, dropped) == ([30, 10], [0, 20])
