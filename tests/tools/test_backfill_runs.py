"""Backfill's pure half: which folders are finished runs, and crier's message for each."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from processor.artifacts import UnsupportedLocation
from processor.core import facts
from processor.synthetic import Scenario, SyntheticJob, generate, message_bytes
from processor.tools.backfill_runs import (
    NEVER_RAN,
    RunMessage,
    RunOutcome,
    RunResult,
    Selection,
    assess,
    go_marshal,
    independent_prefixes,
    job_segment,
    never_ran,
    parse_moment,
    report_message,
)

FOLDER = "gs://bucket/logs/ci-foo/1700000000000000000"
URL = "https://prow.example.com/view/gs/bucket/logs/ci-foo/1700000000000000000"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def prowjob(
    *,
    state: str = "success",
    url: str = URL,
    build_id: str = "1700000000000000000",
    completion: str | None = "2026-11-01T10:00:00Z",
    **extra: Any,  # noqa: ANN401 - top-level sections to merge in, as JSON
) -> dict[str, Any]:
    """Return a small ProwJob document in prowjob.json's shape."""
    status: dict[str, Any] = {"startTime": "2026-11-01T09:00:00Z", "state": state}
    if completion:
        status["completionTime"] = completion
    status.update({"description": "Job succeeded.", "url": url, "build_id": build_id})
    document: dict[str, Any] = {
        "metadata": {"name": "3f1e0c9a-5b7d-4c1e-9a2b-8d6f4e2c1a0b"},
        "spec": {"type": "periodic", "job": "ci-foo"},
        "status": status,
    }
    for key, value in extra.items():
        document[key] = {**document.get(key, {}), **value}
    return document


def encode(document: dict[str, Any]) -> bytes:
    """Encode as crier's GCS reporter would (indentation does not matter to the reader)."""
    return json.dumps(document, indent="\t").encode()


def assessed(document: dict[str, Any], selection: Selection | None = None) -> RunMessage:
    """Assess ``document`` in FOLDER and insist it is a run to send."""
    result = assess(FOLDER, encode(document), selection or Selection())
    assert isinstance(result, RunMessage), result
    return result


def skipped(document: dict[str, Any], selection: Selection | None = None) -> str:
    """Assess ``document`` in FOLDER and return why it was skipped."""
    result = assess(FOLDER, encode(document), selection or Selection())
    assert isinstance(result, RunResult), result
    assert result.outcome is RunOutcome.SKIPPED, result
    return result.reason


@pytest.fixture(scope="module")
def corpus() -> tuple[SyntheticJob, ...]:
    """Return three hundred synthetic jobs of every lifecycle."""
    return tuple(generate(300))


def test_message_is_byte_for_byte_what_crier_published_for_every_finished_corpus_run(
    corpus: tuple[SyntheticJob, ...],
) -> None:
    """The synthesized message of each finished run equals crier's terminal message exactly."""
    compared = 0
    for job in corpus:
        if not job.url:  # never started: no folder a message points to
            continue
        result = assess(job.gcs_path, job.artifacts["prowjob.json"], Selection())
        assert isinstance(result, RunMessage), (job.scenario, result)
        assert result.data == message_bytes(job.messages[-1]), job.scenario
        compared += 1
    assert compared >= 280


def test_publish_time_is_the_completion_time() -> None:
    """The run's end, used as publish time and for the window, is status.completionTime."""
    assert assessed(prowjob()).ended == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_start_time_stands_in_for_a_missing_completion_time() -> None:
    """A terminal ProwJob without completionTime ends, for backfill, at its startTime."""
    assert assessed(prowjob(completion=None)).ended == datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def test_refs_and_message_are_omitted_when_empty_as_go_omitempty() -> None:
    """No refs and no description: the keys are absent; the other keys are always there."""
    document = prowjob()
    document["status"]["description"] = ""
    message = json.loads(assessed(document).data)
    assert list(message) == [
        "project",
        "topic",
        "runid",
        "status",
        "url",
        "gcs_path",
        "job_type",
        "job_name",
    ]
    assert message["project"] == message["topic"] == message["runid"] == ""


def test_refs_are_spec_refs_then_extra_refs() -> None:
    """Crier lists spec.refs first, then spec.extra_refs, each as prowjob.json holds it."""
    main = {"org": "acme", "repo": "widget", "base_ref": "main", "pulls": [{"number": 7}]}
    extra = [{"org": "acme", "repo": "tools", "base_ref": "dev"}]
    document = prowjob(spec={"refs": main, "extra_refs": extra})
    assert json.loads(assessed(document).data)["refs"] == [main, *extra]


def test_routing_comes_from_annotations_before_labels() -> None:
    """Project, topic and run ID: a non-empty annotation wins, else the label of the same name."""
    metadata = {
        "name": "x",
        "annotations": {"prow.k8s.io/pubsub.project": "from-annotation"},
        "labels": {
            "prow.k8s.io/pubsub.project": "from-label",
            "prow.k8s.io/pubsub.topic": "label-topic",
        },
    }
    message = report_message(prowjob(metadata=metadata), FOLDER)
    assert (message["project"], message["topic"], message["runid"]) == (
        "from-annotation",
        "label-topic",
        "",
    )


def test_go_marshal_escapes_html_characters_and_keeps_other_text() -> None:
    """Like Go's json.Marshal: <, >, & and U+2028/9 escaped; other non-ASCII text as is."""
    encoded = go_marshal({"m": "a<b>&c\u2028 café"})
    assert encoded == '{"m":"a\\u003cb\\u003e\\u0026c\\u2028 café"}'.encode()


@pytest.mark.parametrize("state", ["pending", "triggered", "scheduling", ""])
def test_unfinished_runs_are_skipped(state: str) -> None:
    """Only success, failure, aborted and error are finished."""
    assert skipped(prowjob(state=state)).startswith("not finished")


@pytest.mark.parametrize("state", ["success", "failure", "aborted", "error"])
def test_every_terminal_state_is_sent(state: str) -> None:
    """Each terminal state gives a message carrying that state."""
    assert json.loads(assessed(prowjob(state=state)).data)["status"] == state


def test_folder_of_another_build_is_superseded() -> None:
    """A folder whose name is not status.build_id is a revived pod's abandoned one."""
    assert skipped(prowjob(build_id="1700000000000000999")).startswith("superseded")


def test_folder_that_status_url_does_not_name_is_superseded() -> None:
    """status.url naming another build (no build_id recorded) also supersedes the folder."""
    document = prowjob(build_id="", url=URL.replace("000000000000", "000000000999"))
    assert skipped(document).startswith("superseded")


def test_run_without_url_never_started_and_is_skipped() -> None:
    """No status.url: crier's message has no gcs_path, the services would skip it too."""
    assert skipped(prowjob(state="error", url="")).startswith("never started")


@pytest.mark.parametrize(
    "data",
    [b"{not json", b"[]", b'{"status": {"state": 3}}'],
    ids=["not-json", "not-object", "wrong-type"],
)
def test_malformed_prowjob_fails_with_the_reason(data: bytes) -> None:
    """An unreadable prowjob.json is a failure, not a skip: someone should look at it."""
    result = assess(FOLDER, data, Selection())
    assert isinstance(result, RunResult)
    assert result.outcome is RunOutcome.FAILED
    assert result.reason.startswith("malformed prowjob.json")


def test_job_filter_searches_spec_job() -> None:
    """--job is a regular expression searched in spec.job."""
    assert skipped(prowjob(), Selection(job=re.compile("^ci-bar$"))).endswith("--job")
    assert assessed(prowjob(), Selection(job=re.compile("foo"))).job == "ci-foo"


def test_window_includes_since_and_excludes_until() -> None:
    """A run ending exactly at --since is in; exactly at --until is out."""
    end = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert assessed(prowjob(), Selection(since=end))
    assert skipped(prowjob(), Selection(until=end)) == "finished at or after --until"
    later = datetime(2026, 11, 1, 10, 0, 1, tzinfo=UTC)
    assert skipped(prowjob(), Selection(since=later)) == "finished before --since"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T12:30:00Z", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01T12:30", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01T14:30:00+02:00", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("90m", datetime(2026, 11, 2, 10, 30, tzinfo=UTC)),
        ("36h", datetime(2026, 11, 1, 0, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 10, 26, 12, 0, tzinfo=UTC)),
        ("2w", datetime(2026, 10, 19, 12, 0, tzinfo=UTC)),
    ],
)
def test_moments_are_dates_times_or_ages(text: str, expected: datetime) -> None:
    """--since/--until take a date, an ISO date-time (UTC without offset) or an age."""
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7y", "", "2026-13-01"])
def test_other_moments_are_refused_with_the_accepted_forms(text: str) -> None:
    """Anything else is a ValueError that says what would do."""
    with pytest.raises(ValueError, match="90m, 36h, 7d or 2w"):
        parse_moment(text, NOW)


def test_an_age_beyond_the_calendar_is_refused() -> None:
    """An age so large that the date would precede year 1 is a ValueError, not a crash."""
    with pytest.raises(ValueError, match="past the year 1"):
        parse_moment("99999999w", NOW)


def test_nested_and_repeated_prefixes_are_listed_once() -> None:
    """A prefix inside another (or repeated) is dropped; siblings sharing a text prefix stay."""
    prefixes = [
        "gs://b/logs/ci-foo/",
        "gs://b/logs",
        "gs://b/logs/",
        "gs://b/logs-archive",
        "gs://other/logs/ci-foo",
        "s3://b/logs/ci-foo",
    ]
    assert independent_prefixes(prefixes) == [
        "gs://b/logs",
        "gs://b/logs-archive",
        "gs://other/logs/ci-foo",
        "s3://b/logs/ci-foo",
    ]


def test_bucket_root_prefix_covers_the_bucket() -> None:
    """gs://b covers every prefix in bucket b."""
    assert independent_prefixes(["gs://b/pr-logs", "gs://b"]) == ["gs://b"]


def test_prefix_that_is_not_a_bucket_url_is_refused() -> None:
    """Prefixes are gs:// or s3:// URLs."""
    with pytest.raises(UnsupportedLocation):
        independent_prefixes(["logs/ci-foo"])


@pytest.mark.parametrize(
    ("folder", "segment"),
    [
        ("gs://b/logs/ci-foo/123", "ci-foo"),
        ("gs://b/pr-logs/pull/org_repo/12/pull-foo/456", "pull-foo"),
        ("gs://b/pr-logs/pull/batch/pull-foo/789", "pull-foo"),
        ("gs://b/123", ""),
    ],
)
def test_job_segment_is_the_folder_above_the_build(folder: str, segment: str) -> None:
    """Every Prow layout ends in JOB/BUILD; a folder right under the bucket has no job segment."""
    assert job_segment(folder) == segment


def test_corpus_lifecycles_without_a_started_pod_are_skipped(
    corpus: tuple[SyntheticJob, ...],
) -> None:
    """ERROR_BEFORE_PENDING leaves a folder with an error ProwJob and no URL: never started."""
    refused = [job for job in corpus if job.scenario is Scenario.ERROR_BEFORE_PENDING]
    assert refused
    for job in refused:
        result = assess(job.gcs_path, job.artifacts["prowjob.json"], Selection())
        assert isinstance(result, RunResult)
        assert result.reason.startswith("never started")


def _facts(document: dict[str, Any]) -> facts.ProwJob:
    return facts.parse_prowjob(json.dumps(document).encode())


CRIER_STARTED = facts.Started(timestamp=None, uploader=facts.CRIER_UPLOADER)
CRIER_FINISHED = facts.Finished(timestamp=None, passed=False, uploader=facts.CRIER_UPLOADER)


def test_a_pod_with_only_crier_files_never_ran() -> None:
    """Crier's started/finished.json and no podinfo: the pod's containers never ran."""
    assert never_ran(_facts(prowjob()), CRIER_STARTED, CRIER_FINISHED, None) == NEVER_RAN


def test_a_pod_utils_started_json_means_the_pod_ran() -> None:
    """A started.json of initupload's own replaces crier's: the pod ran."""
    started = facts.Started(timestamp=None, uploader="initupload")
    assert never_ran(_facts(prowjob()), started, CRIER_FINISHED, None) == ""


def test_a_started_container_in_podinfo_means_the_pod_ran() -> None:
    """podinfo.json showing a started init container: the pod ran, whatever crier wrote."""
    run = facts.ContainerRun("clonerefs", datetime(2026, 11, 1, tzinfo=UTC), None, None)
    podinfo = facts.PodInfo(init_containers=(run,))
    assert never_ran(_facts(prowjob()), CRIER_STARTED, CRIER_FINISHED, podinfo) == ""


def test_jobs_of_agents_without_a_pod_are_never_skipped_as_never_started() -> None:
    """A tekton-pipeline job has only crier's files by nature: it still ran."""
    document = prowjob(spec={"job": "ci-foo", "type": "periodic", "agent": "tekton-pipeline"})
    assert never_ran(_facts(document), CRIER_STARTED, CRIER_FINISHED, None) == ""


def test_message_keeps_the_trailing_slash_crier_cuts_out_of_status_url() -> None:
    """status.url ending in '/' (knative's template): crier's gcs_path ends in '/' too."""
    message = report_message(prowjob(url=URL + "/"), FOLDER)
    assert message["gcs_path"] == FOLDER + "/"
