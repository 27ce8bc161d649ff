"""Backfill over a local mirror of the corpus: counts, spans against the oracle, reruns, limits."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from backfill_fixtures import (
    BUCKET,
    CountingStore,
    corpus,
    expected,
    finished,
    folder_count,
    pod_never_ran,
    recording_sink,
    spans_of,
)
from support.oracle import SpanKey, assert_traces_complete
from support.otlp_receiver import unique_spans_of

from processor.artifacts import ArtifactStore, ArtifactUnavailable, ListedFile
from processor.artifacts.mirror import MirrorArtifactStore
from processor.core.jsonshape import parse_rfc3339
from processor.exit_codes import ExitCode
from processor.export.otlp_json import DecodedSpan
from processor.synthetic import SyntheticJob, mirror_path, write_mirror
from processor.tools.backfill import (
    LOOKAHEAD_PER_WORKER,
    ReadAheadStore,
    StopBackfill,
    run_backfill,
)
from processor.tools.backfill_progress import Tally
from processor.tools.backfill_runs import RunMessage, RunOutcome, RunResult, Selection

ROOT_PREFIX = f"gs://{BUCKET}/"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the corpus as a bucket mirror."""
    root = tmp_path_factory.mktemp("mirror")
    write_mirror(corpus(), root)
    return root


@pytest.fixture(scope="module")
def full_run(mirror: Path) -> tuple[Tally, dict[SpanKey, DecodedSpan]]:
    """One backfill of the whole mirror, shared by the tests that only look at its results."""
    return backfill(mirror)


def backfill(
    root: Path,
    selection: Selection | None = None,
    prefixes: tuple[str, ...] = (ROOT_PREFIX,),
    tally: Tally | None = None,
) -> tuple[Tally, dict[SpanKey, DecodedSpan]]:
    """Backfill the mirror at ``root`` through a recording pipeline; return tally and spans."""
    store = ReadAheadStore(MirrorArtifactStore(root))
    sink, recorder = recording_sink(store)
    done = run_backfill(store, prefixes, selection or Selection(), sink, tally=tally)
    return done, dict(unique_spans_of(recorder.spans()))


def ended(job: SyntheticJob) -> datetime:
    """Return the job's completionTime, from its final prowjob.json."""
    return parse_rfc3339(json.loads(job.artifacts["prowjob.json"])["status"]["completionTime"])


class SentSink:
    """Accepts every message and keeps it; optionally blocks until released."""

    def __init__(self, *, blocked: bool = False) -> None:
        """Start open, or blocked until ``release()``."""
        self.messages: list[RunMessage] = []
        self.active = 0
        self.most_active = 0
        self.release_event = threading.Event()
        if not blocked:
            self.release_event.set()
        self._lock = threading.Lock()

    def __call__(self, run: RunMessage) -> RunResult:
        """Count the call as active until it is released."""
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.messages.append(run)
        self.release_event.wait(10)
        with self._lock:
            self.active -= 1
        return RunResult(RunOutcome.SENT)


def test_summary_counts_every_folder_once(
    full_run: tuple[Tally, dict[SpanKey, DecodedSpan]],
) -> None:
    """Every folder is found once and ends traced or skipped, with reasons grouped."""
    tally, _ = full_run
    summary = tally.summary("traced")
    jobs = corpus()
    revived = [job for job in jobs if job.abandoned_artifacts]
    never_started = [job for job in jobs if job.gcs_path and (not job.url or pod_never_ran(job))]
    assert revived
    assert never_started
    assert summary.counts.found == folder_count(jobs)
    assert summary.counts.sent == len(finished(jobs))
    assert summary.counts.failed == 0
    kinds: Counter[str] = Counter()
    for group in summary.skipped:
        kinds[group.reason.split(":")[0]] += group.count
    assert dict(kinds) == {
        "not finished": len(revived),
        "never started": len(never_started),
    }
    assert summary.exit_code == ExitCode.OK


def test_exported_spans_are_the_oracles_terminal_state_spans(
    full_run: tuple[Tally, dict[SpanKey, DecodedSpan]],
) -> None:
    """Backfill exports exactly what crier's terminal messages would have given."""
    _, spans = full_run
    assert_traces_complete(spans, expected())


def test_backfill_exports_test_spans(
    full_run: tuple[Tally, dict[SpanKey, DecodedSpan]],
) -> None:
    """Finished runs whose test container left JUnit results get their test case spans."""
    _, spans = full_run
    cases = [span for span in spans.values() if "test.case.name" in span.attributes]
    failing = [span for span in cases if span.attributes["test.case.result.status"] == "fail"]
    assert cases
    assert failing


def test_rerun_exports_the_identical_span_set(
    mirror: Path, full_run: tuple[Tally, dict[SpanKey, DecodedSpan]]
) -> None:
    """A second backfill over the same runs gives the same spans under the same IDs."""
    _, first = full_run
    _, second = backfill(mirror)
    assert first == second
    assert len(first) == len(expected())


def test_job_filter_traces_only_matching_jobs(mirror: Path) -> None:
    """--job keeps the runs whose job name matches, and exactly their spans."""
    pattern = re.compile("^pull-widget-")
    tally, spans = backfill(mirror, Selection(job=pattern))
    matching = [job for job in finished(corpus()) if pattern.search(job.job_name)]
    assert matching
    assert tally.snapshot().sent == len(matching)
    assert_traces_complete(spans, spans_of(expected(), matching))


def test_job_filter_does_not_read_folders_of_other_jobs(mirror: Path) -> None:
    """Folders whose job segment does not match are skipped without a read."""
    counting = CountingStore(MirrorArtifactStore(mirror))
    tally = run_backfill(
        counting, (ROOT_PREFIX,), Selection(job=re.compile("^ci-")), SentSink(), tally=Tally()
    )
    assert counting.read_folders
    assert all("/ci-" in folder for folder in counting.read_folders)
    skipped = {group.reason: group.count for group in tally.groups(RunOutcome.SKIPPED)}
    read = set(counting.read_folders)  # a run that is read may be read more than once
    assert skipped["job name does not match --job"] == counting.listed - len(read)


def test_window_keeps_runs_that_finished_inside_it(mirror: Path) -> None:
    """--since (inclusive) and --until (exclusive) select on completionTime."""
    jobs = sorted(finished(corpus()), key=ended)
    since, until = ended(jobs[len(jobs) // 4]), ended(jobs[len(jobs) // 2])
    inside = [job for job in jobs if since <= ended(job) < until]
    tally, spans = backfill(mirror, Selection(since=since, until=until))
    assert 0 < len(inside) < len(jobs)
    assert tally.snapshot().sent == len(inside)
    assert_traces_complete(spans, spans_of(expected(), inside))


def test_window_in_the_future_traces_nothing(mirror: Path) -> None:
    """No run finished after --since: all are skipped, none fails."""
    tally, spans = backfill(mirror, Selection(since=datetime(2100, 1, 1, tzinfo=UTC)))
    assert spans == {}
    assert tally.snapshot().failed == 0


def test_interrupted_backfill_has_a_consistent_summary_and_a_rerun_completes_it(
    mirror: Path, full_run: tuple[Tally, dict[SpanKey, DecodedSpan]]
) -> None:
    """After a stop every run found has an outcome; exit 130; what it exported a rerun repeats."""
    store = ReadAheadStore(MirrorArtifactStore(mirror))
    sink, recorder = recording_sink(store)
    stop = threading.Event()
    calls = 0

    def stopping_sink(run: RunMessage) -> RunResult:
        nonlocal calls
        calls += 1  # from several threads; only the order of magnitude matters here
        if calls >= 20:
            stop.set()
        return sink(run)

    tally = run_backfill(store, (ROOT_PREFIX,), Selection(), stopping_sink, tally=Tally(stop))
    summary = tally.summary("traced")
    counts = summary.counts
    assert 20 <= counts.found < folder_count(corpus())
    assert counts.found == counts.sent + counts.skipped + counts.failed
    assert summary.interrupted
    assert summary.exit_code == ExitCode.INTERRUPTED
    partial = unique_spans_of(recorder.spans())
    _, complete = full_run
    assert partial
    assert partial.items() <= complete.items()


def test_concurrency_and_lookahead_are_bounded(mirror: Path) -> None:
    """At most N runs at once; discovery stays at most LOOKAHEAD_PER_WORKER * N runs ahead."""
    workers = 3
    counting = CountingStore(MirrorArtifactStore(mirror))
    sink = SentSink(blocked=True)
    tally = Tally()
    runner = threading.Thread(
        target=run_backfill,
        args=(counting, (ROOT_PREFIX,), Selection(), sink),
        kwargs={"concurrency": workers, "tally": tally},
    )
    runner.start()
    try:
        deadline = threading.Event()
        while sink.active < workers and not deadline.wait(0.01):
            pass
        deadline.wait(0.2)  # give discovery time to run ahead as far as it can
        counts = tally.snapshot()
        assert sink.active == workers
        assert counts.found - counts.done == workers * (1 + LOOKAHEAD_PER_WORKER)
        assert counting.listed <= counts.found + 1  # one more may wait for room
    finally:
        sink.release_event.set()
        runner.join()
    assert sink.most_active == workers
    assert tally.snapshot().found == folder_count(corpus())


def test_pipeline_reads_prowjob_json_once_per_run(mirror: Path) -> None:
    """The pipeline is served the prowjob.json the worker already read."""
    counting = CountingStore(MirrorArtifactStore(mirror))
    store = ReadAheadStore(counting)
    sink, _ = recording_sink(store)
    tally = run_backfill(store, (f"gs://{BUCKET}/logs/",), Selection(), sink)
    assert counting.reads["prowjob.json"] == tally.snapshot().found
    assert counting.reads["podinfo.json"] >= tally.snapshot().sent


def test_superseded_folder_gives_no_second_trace(tmp_path: Path) -> None:
    """A revived pod's first folder holding the final ProwJob is skipped as superseded."""
    revived = [job for job in corpus() if job.abandoned_artifacts]
    write_mirror(revived, tmp_path)
    for job in revived:
        for folder in job.abandoned_artifacts:
            target = mirror_path(tmp_path, folder) / "prowjob.json"
            target.write_bytes(job.artifacts["prowjob.json"])
    tally, spans = backfill(tmp_path)
    skipped = tally.groups(RunOutcome.SKIPPED)
    assert [group.count for group in skipped if group.reason.startswith("superseded")] == [
        len(revived)
    ]
    assert_traces_complete(spans, spans_of(expected(), revived))


def test_malformed_prowjob_fails_the_run_and_the_command(tmp_path: Path) -> None:
    """An unparsable prowjob.json is a failure with its reason and an example folder."""
    folder = tmp_path / BUCKET / "logs" / "ci-broken" / "1"
    folder.mkdir(parents=True)
    (folder / "prowjob.json").write_bytes(b"{")
    summary = backfill(tmp_path)[0].summary("traced")
    assert summary.counts.failed == 1
    assert summary.failed[0].reason.startswith("malformed prowjob.json")
    assert summary.failed[0].example == f"gs://{BUCKET}/logs/ci-broken/1"
    assert summary.exit_code == ExitCode.NOT_ALL_TRACED


def test_pipeline_failure_is_a_failed_run(tmp_path: Path) -> None:
    """A finished run the pipeline cannot trace (no ProwJob name in uid mode) fails."""
    job = finished(corpus())[0]
    write_mirror([job], tmp_path)
    document = json.loads(job.artifacts["prowjob.json"])
    del document["metadata"]["name"]
    (mirror_path(tmp_path, job.gcs_path) / "prowjob.json").write_text(json.dumps(document))
    summary = backfill(tmp_path)[0].summary("traced")
    assert [group.reason.split(":")[0] for group in summary.failed] == ["failed"]
    assert "metadata.name" in summary.failed[0].reason


class UnreadableStore:
    """A store that lists like its inner one but cannot read anything."""

    def __init__(self, inner: ArtifactStore) -> None:
        """List through ``inner``."""
        self._inner = inner

    def read(self, folder: str, name: str) -> bytes | None:
        """Fail as a storage outage would."""
        raise ArtifactUnavailable(f"{folder}/{name}: HTTP 503: backend unavailable")

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """Fail as a storage outage would."""
        del name_glob, limit
        raise ArtifactUnavailable(f"{folder}/{under}: HTTP 503: backend unavailable")

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """List through the inner store."""
        return self._inner.find(prefix, name)


def test_unreadable_prowjob_fails_with_grouped_reason(mirror: Path) -> None:
    """Read failures are failures, grouped into one reason with the folder taken out."""
    tally = run_backfill(
        UnreadableStore(MirrorArtifactStore(mirror)),
        (f"gs://{BUCKET}/logs/",),
        Selection(),
        SentSink(),
    )
    groups = tally.groups(RunOutcome.FAILED)
    assert len(groups) == 1
    assert groups[0].reason == (
        "cannot read prowjob.json: <run>/prowjob.json: HTTP 503: backend unavailable"
    )
    assert groups[0].count == tally.snapshot().found > 1


def test_prefix_that_cannot_be_listed_is_reported_and_fails_the_command(mirror: Path) -> None:
    """A missing bucket is a listing error; the other prefixes are still backfilled."""
    tally, _ = backfill(mirror, prefixes=("gs://no-such-bucket/logs", f"gs://{BUCKET}/logs"))
    summary = tally.summary("traced")
    assert summary.listing_errors[0].startswith("gs://no-such-bucket/logs: ")
    assert summary.counts.sent > 0
    assert summary.exit_code == ExitCode.NOT_ALL_TRACED
    assert "could not list gs://no-such-bucket/logs" in summary.render()


def test_a_sink_that_cannot_go_on_stops_the_backfill(mirror: Path) -> None:
    """StopBackfill (e.g. a missing topic) stops discovery and is reported, exit 1."""

    def refusing(run: RunMessage) -> RunResult:
        raise StopBackfill(f"cannot publish {run.job}: topic not found")

    tally = run_backfill(
        MirrorArtifactStore(mirror), (ROOT_PREFIX,), Selection(), refusing, concurrency=2
    )
    summary = tally.summary("published")
    assert summary.counts.found < folder_count(corpus())
    assert summary.fatal.endswith("topic not found")
    assert not summary.interrupted
    assert summary.exit_code == ExitCode.NOT_ALL_TRACED


def test_several_prefixes_together_find_every_folder_once(mirror: Path) -> None:
    """Prefixes are listed one after the other; disjoint ones cover the bucket exactly once."""
    sink = SentSink()
    prefixes = (f"gs://{BUCKET}/logs", f"gs://{BUCKET}/pr-logs")
    tally = run_backfill(MirrorArtifactStore(mirror), prefixes, Selection(), sink)
    assert tally.snapshot().found == folder_count(corpus())
    assert len({run.folder for run in sink.messages}) == len(finished(corpus()))


def test_mirror_can_be_removed_between_runs(tmp_path: Path) -> None:
    """A bucket that disappears between two runs is a listing error, not a crash."""
    job = finished(corpus())[0]
    write_mirror([job], tmp_path)
    assert backfill(tmp_path)[0].snapshot().sent == 1
    shutil.rmtree(tmp_path / BUCKET)
    assert backfill(tmp_path)[0].summary("traced").listing_errors
