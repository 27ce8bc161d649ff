"""The real-Prow corpus (tests/data/real-prow, provenance in its SOURCES.md), replayed whole.

Every job (J1-J8) and variant (1-5) goes through the same pipeline as the services, and every
trace must keep the invariants: inside its parents and its run, no zero-length root, no pod for a
job that had none, and the same spans whichever path produced them (live stream, a replay at
another time, backfill's rebuilt messages). Then one test per defect the corpus showed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.oracle import (
    RecordingExporter,
    SpanKey,
    assert_traces_complete,
    orphans,
    shape_problems,
    traces_of,
)
from support.otlp_receiver import unique_spans_of

from processor.artifacts.mirror import MirrorArtifactStore
from processor.cli import main
from processor.core import semconv as sc
from processor.core.ids import IdMode, snowflake_time
from processor.export.exporters import build_resource
from processor.export.otel import SpanConverter
from processor.export.otlp_json import DecodedSpan, read_otlp_json
from processor.pipeline import Outcome, Pipeline, PipelineSettings
from processor.tools.backfill import PipelineSink, ReadAheadStore, run_backfill
from processor.tools.backfill_progress import Tally
from processor.tools.backfill_runs import NEVER_RAN, RunOutcome, Selection
from processor.tools.replay import ReplaySummary, replay
from processor.tools.waterfall import build_trace_views

CORPUS = Path(__file__).parents[1] / "data" / "real-prow"
JOBS = (CORPUS / "messages.jsonl", CORPUS / "mirror")
VARIANTS = (CORPUS / "variants" / "messages.jsonl", CORPUS / "variants" / "mirror")
READ_AT = datetime(2026, 12, 1, tzinfo=UTC)
"""Bare lines carry no publish time: replay stands the time of reading in for it."""

J1 = "b71fa0370d8c11edab622ace146f4dd8"  # knative periodic, pre-2022 clone records, no podinfo
J2 = "5b0d8a6ecac911eaa18b9e4f6c3f1a27"  # kubernetes PR 93264, full pod-utils run
J4 = "0790211ccacb11eaa4b94a19d9b965b2"  # bootstrap job aborted, crier's finished.json
J5 = "3d47a9d47ae611e886b50a58ac10127e"  # 2018: tot build ID 136, no pendingTime
J6 = "0d3c4b8e8bb911e98d2f2a3f6e1b7c90"  # 2019: pod stuck initializing, "Pod pending timeout."
J8 = "8e2f1a346b5c4d7e9f0123456789abcd"  # tekton-pipeline agent: no pod at all
J1_FOLDER = JOBS[1] / "knative-prow/logs/nightly_serving_main_periodic/1552221225705541632"


@dataclass(frozen=True)
class Replayed:
    """What one replay of a messages file gave."""

    summary: ReplaySummary
    spans: dict[SpanKey, DecodedSpan]


def replayed(
    corpus: tuple[Path, Path], mode: IdMode = IdMode.UID, read_at: datetime = READ_AT
) -> Replayed:
    """Replay ``corpus`` (messages, mirror) in-process, as ``prowtrace replay`` does."""
    messages, mirror = corpus
    recorder = RecordingExporter()
    pipeline = Pipeline(
        MirrorArtifactStore(mirror),
        recorder,
        SpanConverter(build_resource({})),
        PipelineSettings(id_mode=mode, grace=timedelta(0)),
        clock=lambda: read_at,
    )
    with messages.open(encoding="utf-8") as lines:
        summary = replay(lines, pipeline.handle, clock=lambda: read_at)
    return Replayed(summary, unique_spans_of(recorder.spans()))


@pytest.fixture(scope="module")
def jobs() -> Replayed:
    """J1-J8 replayed in uid mode."""
    return replayed(JOBS)


@pytest.fixture(scope="module")
def variants() -> Replayed:
    """Variants 1-5 replayed in build-id mode (variant 5 has no prowjob.json)."""
    return replayed(VARIANTS, IdMode.BUILD_ID)


@pytest.fixture(scope="module")
def everything(jobs: Replayed, variants: Replayed) -> dict[SpanKey, DecodedSpan]:
    """Every span of the corpus: jobs in uid mode, variants in build-id mode."""
    return {**jobs.spans, **variants.spans}


def trace(spans: dict[SpanKey, DecodedSpan], trace_id: str) -> dict[str, DecodedSpan]:
    """Return one trace's spans by name (names are unique where these tests look)."""
    return {span.name: span for span in traces_of(spans)[trace_id]}


def root_of(spans: dict[str, DecodedSpan]) -> DecodedSpan:
    """Return the trace's root span."""
    (root,) = [span for span in spans.values() if not span.parent_span_id]
    return root


def backfilled(mirror: Path) -> tuple[Tally, dict[SpanKey, DecodedSpan]]:
    """Backfill every bucket of ``mirror`` through a recording pipeline (uid mode, grace 0)."""
    store = ReadAheadStore(MirrorArtifactStore(mirror))
    recorder = RecordingExporter()
    pipeline = Pipeline(
        store, recorder, SpanConverter(build_resource({})), PipelineSettings(grace=timedelta(0))
    )
    prefixes = [f"gs://{bucket.name}/" for bucket in sorted(mirror.iterdir())]
    tally = run_backfill(store, prefixes, Selection(), PipelineSink(pipeline), tally=Tally())
    return tally, unique_spans_of(recorder.spans())


# --- the invariants, on the whole corpus ------------------------------------------------------


def test_every_line_is_traced_or_says_why_not(jobs: Replayed) -> None:
    """Only the Prow unit test's bucket-only gcs_path (J7) is refused; nothing fails."""
    assert jobs.summary.outcomes[Outcome.FAILED] == 0
    assert jobs.summary.outcomes[Outcome.RETRY] == 0
    assert [problem.split(":", 1)[0] for problem in jobs.summary.problems] == [
        "line 14",
        "line 15",
        "line 17",
    ]
    assert all("gs://test1" in problem for problem in jobs.summary.problems)
    assert len(jobs.summary.traces) == 7  # J1-J6 and J8


def test_every_variant_is_traced_in_build_id_mode(variants: Replayed) -> None:
    """All five variants, variant 5 without prowjob.json included, end as complete traces."""
    assert variants.summary.ok
    assert len(variants.summary.traces) == 5


def test_every_span_lies_inside_its_parent_and_its_run(
    everything: dict[SpanKey, DecodedSpan],
) -> None:
    """No span outlasts its run or leaves its parent; no root is zero-length."""
    assert shape_problems(everything) == []


def test_no_trace_has_orphans(everything: dict[SpanKey, DecodedSpan]) -> None:
    """Every parent a span names was exported too."""
    assert orphans(everything) == []


def test_the_whole_corpus_in_build_id_mode_keeps_the_invariants() -> None:
    """The same jobs traced in build-id mode keep every invariant too."""
    result = replayed(JOBS, IdMode.BUILD_ID)
    assert len(result.summary.traces) == 7
    assert shape_problems(result.spans) == []


def test_a_replay_at_another_time_gives_byte_identical_spans(jobs: Replayed) -> None:
    """Bare lines get the time of reading as publish time; no span may depend on it."""
    later = replayed(JOBS, read_at=READ_AT + timedelta(days=400))
    assert_traces_complete(later.spans, jobs.spans)


def test_reprocessing_the_stream_gives_the_same_spans(jobs: Replayed) -> None:
    """Processing every message twice (redelivery) yields the same span set, no conflict."""
    messages, mirror = JOBS
    doubled = messages.read_text(encoding="utf-8") * 2
    recorder = RecordingExporter()
    pipeline = Pipeline(
        MirrorArtifactStore(mirror),
        recorder,
        SpanConverter(build_resource({})),
        PipelineSettings(grace=timedelta(0)),
    )
    replay(doubled.splitlines(), pipeline.handle, clock=lambda: READ_AT)
    assert_traces_complete(unique_spans_of(recorder.spans()), jobs.spans)


def test_backfill_gives_the_live_streams_spans(jobs: Replayed) -> None:
    """Every span backfill rebuilds from the folders equals the live stream's, byte for byte."""
    tally, spans = backfilled(JOBS[1])
    sent = {span.trace_id for span in spans.values()}
    assert sent == {J1, J2, J4, J5, "1f6a2c54d80111eab3c9be0a3e1f2d5c", J8}
    live = {key: span for key, span in jobs.spans.items() if span.trace_id in sent}
    assert_traces_complete(spans, live)
    assert tally.snapshot().failed == 0


def test_backfill_skips_the_run_whose_pod_never_started() -> None:
    """J6's pod never left PodInitializing (crier's started.json only): skipped, as --help says."""
    tally, _ = backfilled(JOBS[1])
    skipped = {group.reason: group.count for group in tally.groups(RunOutcome.SKIPPED)}
    assert skipped == {NEVER_RAN: 1}


def test_backfill_of_the_variants_matches_their_live_traces() -> None:
    """Variants 1-4 are backfilled as replayed (variant 4's init containers ran: sent)."""
    live = replayed(VARIANTS)  # uid mode, as backfill derives IDs from prowjob.json
    tally, spans = backfilled(VARIANTS[1])
    assert len({span.trace_id for span in spans.values()}) == 4
    assert_traces_complete(spans, live.spans)
    assert tally.snapshot().skipped == 0


# --- one test per defect the corpus showed ----------------------------------------------------


def test_no_pendingtime_and_a_tot_build_id_gives_no_queue_span(jobs: Replayed) -> None:
    """J5 (2018): nothing dates the pending instant, so no queue span is invented (defect 1)."""
    spans = trace(jobs.spans, J5)
    assert "queue" not in spans
    root = root_of(spans)
    assert timedelta(microseconds=(root.end_ns - root.start_ns) // 1000) < timedelta(minutes=19)


def test_snowflake_dates_the_queue_when_pendingtime_is_missing(jobs: Replayed) -> None:
    """J6 (2019) lacks pendingTime: its snowflake build ID ends the queue (defect 2)."""
    queue = trace(jobs.spans, J6)["queue"]
    assert queue.attributes[sc.PROW_TIMING_SOURCE] == "snowflake"
    instant = snowflake_time("1138214580447621120")
    assert instant is not None
    assert queue.end_ns == int(instant.timestamp() * 1000) * 1_000_000


def test_crier_written_started_and_finished_make_no_container(jobs: Replayed) -> None:
    """J6: crier's stand-in files are the ProwJob's times, not a test container's (defect 3)."""
    spans = trace(jobs.spans, J6)
    assert not [name for name in spans if name.startswith(("container/", "init/"))]
    assert spans["pod"].attributes[sc.PROW_TIMING_ESTIMATED] is True


def test_a_tekton_job_gets_no_pod(jobs: Replayed) -> None:
    """J8 (agent tekton-pipeline, no pod_spec, no pod_name): root and queue only (defect 3)."""
    assert sorted(trace(jobs.spans, J8)) == ["RUN ci-tekton-plumbing-nightly", "queue"]


def test_crier_finished_json_is_not_a_test_failure(jobs: Replayed) -> None:
    """J8 failed, but crier's finished.json (passed: false) says nothing of a test's exit."""
    root = root_of(trace(jobs.spans, J8))
    assert root.attributes[sc.ERROR_TYPE] != sc.ERROR_TEST_FAILED


def test_a_bootstrap_test_aborted_runs_until_the_job_ended(jobs: Replayed) -> None:
    """J4: bootstrap's own started.json starts the test; crier's finished.json does not end it."""
    spans = trace(jobs.spans, J4)
    test = spans["container/test"]
    assert test.end_ns == root_of(spans).end_ns
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT] == sc.RESULT_CANCELLATION


def test_pre_2022_clone_records_are_estimated_over_the_clonerefs_window(jobs: Replayed) -> None:
    """J1: no durations, no podinfo: clonerefs spans pod start to started.json (defect 4)."""
    spans = traces_of(jobs.spans)[J1]
    clonerefs = next(span for span in spans if span.name == "init/clonerefs")
    commands = [span for span in spans if span.parent_span_id and span.name.startswith("git")]
    started = json.loads((J1_FOLDER / "started.json").read_text())["timestamp"]
    assert clonerefs.end_ns == started * 1_000_000_000
    assert clonerefs.end_ns - clonerefs.start_ns > 30 * 1_000_000_000
    assert commands
    assert all(span.end_ns > span.start_ns for span in commands)
    assert all(span.attributes[sc.PROW_TIMING_ESTIMATED] is True for span in commands)


def test_build_id_mode_without_prowjob_spans_the_run(variants: Replayed) -> None:
    """Variant 5: root from the snowflake to finished.json, the pod inside it (defect 5)."""
    (trace_id,) = [
        span.trace_id for span in variants.spans.values() if span.name == "RUN variant-5"
    ]
    spans = trace(variants.spans, trace_id)
    root = root_of(spans)
    assert root.end_ns - root.start_ns > 30 * 60 * 1_000_000_000
    assert {"pod", "init/clonerefs", "container/test"} <= set(spans)


def test_uid_mode_without_prowjob_tells_the_user_which_mode_to_use() -> None:
    """Variant 5 in uid mode fails with a reason that names build-id mode (defect 5)."""
    result = replayed(VARIANTS)
    (problem,) = result.summary.problems
    assert "line 5" in problem
    assert "PROWTRACE_ID_MODE=build-id" in problem


def test_artifacts_url_has_no_trailing_slash(jobs: Replayed) -> None:
    """J1's gcs_path ends in '/' (knative's URL template); the attribute does not (defect 6)."""
    root = root_of(trace(jobs.spans, J1))
    assert root.attributes[sc.PROW_ARTIFACTS_URL] == (
        "gs://knative-prow/logs/nightly_serving_main_periodic/1552221225705541632"
    )
    assert not str(root.attributes[sc.CICD_PIPELINE_RUN_URL_FULL]).endswith("/")


def test_a_periodic_root_names_the_commit_clonerefs_resolved(jobs: Replayed) -> None:
    """J1: the head revision is the clone record's final_sha, the branch its head (defect 7)."""
    root = root_of(trace(jobs.spans, J1))
    records = json.loads((J1_FOLDER / "clone-records.json").read_text())
    assert root.attributes[sc.VCS_REF_HEAD_REVISION] == records[-1]["final_sha"]
    assert root.attributes[sc.VCS_REF_HEAD_NAME] == "main"


def test_a_presubmits_head_revision_is_the_pulls_commit_everywhere(jobs: Replayed) -> None:
    """J2: root and clone span both name the pull's head; the merge commit is final_sha."""
    spans = trace(jobs.spans, J2)
    root, clone = root_of(spans), spans["clone/kubernetes/kubernetes"]
    pull_sha = root.attributes[sc.VCS_REF_HEAD_REVISION]
    assert clone.attributes[sc.VCS_REF_HEAD_REVISION] == pull_sha
    assert clone.attributes[sc.PROW_CLONE_FINAL_SHA] != pull_sha


def test_show_keeps_artifact_order_where_starts_tie(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prowtrace replay --otlp-json` then the waterfall: mkdir first, queue before pod (8)."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    out = tmp_path / "out.jsonl"
    messages, mirror = JOBS
    argv = ["replay", "--artifacts-mirror", str(mirror), "--otlp-json", str(out), str(messages)]
    assert main(argv) == 1  # J7's three bucket-only paths are invalid
    with out.open(encoding="utf-8") as lines:
        views = {view.trace_id: view for view in build_trace_views(read_otlp_json(lines))}
    names = [row.span.name for row in views[J1].rows]
    assert names[:4] == ["RUN nightly_serving_main_periodic", "queue", "pod", "init/clonerefs"]
    assert names[5:7] == ["mkdir", "git init"]
    assert names[-1] == "container/test"


def test_estimated_test_container_names_its_image(jobs: Replayed) -> None:
    """J1 has no podinfo.json: the test container's image comes from pod_spec (defect 9)."""
    test = trace(jobs.spans, J1)["container/test"]
    assert test.attributes[sc.PROW_CONTAINER_IMAGE]


def test_a_container_that_never_started_shows_why(variants: Replayed) -> None:
    """Variant 4's test container waited in ImagePullBackOff: the pod says so (defect 9)."""
    (trace_id,) = [
        span.trace_id for span in variants.spans.values() if span.name == "RUN variant-4"
    ]
    pod = trace(variants.spans, trace_id)["pod"]
    assert pod.attributes[sc.PROW_POD_WAITING] == ("container/test: ImagePullBackOff",)
    assert "ImagePullBackOff" in pod.status_message


def test_pod_schedule_ends_at_the_scheduled_events_microseconds(jobs: Replayed) -> None:
    """J2's Scheduled event carries microseconds; pod/schedule ends there (defect 9)."""
    schedule = trace(jobs.spans, J2)["pod/schedule"]
    assert schedule.end_ns % 1_000_000_000 != 0


def test_the_root_carries_the_prowjobs_labels(jobs: Replayed) -> None:
    """J1's ProwJob labels are on its root, so traces can be filtered by them (defect 10)."""
    root = root_of(trace(jobs.spans, J1))
    assert root.attributes[sc.PROW_JOB_LABEL_PREFIX + "prow.k8s.io/job"] == (
        "nightly_serving_main_periodic"
    )


@pytest.mark.parametrize("name", ["RUN pull-test-infra-bazel", "RUN variant-4"])
def test_pod_pending_timeout_is_an_error_that_names_itself(
    everything: dict[SpanKey, DecodedSpan], name: str
) -> None:
    """Plank's pod pending timeout: result error (it never ran), error.type says so (11)."""
    (root,) = [span for span in everything.values() if span.name == name]
    assert root.attributes[sc.CICD_PIPELINE_RESULT] == sc.RESULT_ERROR
    assert root.attributes[sc.ERROR_TYPE] == sc.ERROR_POD_PENDING_TIMEOUT


def _decoded(line: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(line)
    message = document.get("message")
    if isinstance(message, dict):
        decoded: dict[str, object] = json.loads(base64.b64decode(message["data"]))
        return decoded
    return document


def test_the_corpus_holds_what_sources_md_says() -> None:
    """The corpus is the one SOURCES.md describes: 19 job lines and 5 variant lines."""

    def read(path: Path) -> list[dict[str, object]]:
        return [_decoded(line) for line in path.read_text(encoding="utf-8").splitlines()]

    assert len(read(JOBS[0])) == 19
    assert [message["job_name"] for message in read(VARIANTS[0])] == [
        f"variant-{number}" for number in range(1, 6)
    ]
