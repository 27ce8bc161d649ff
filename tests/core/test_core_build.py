"""The span builder: tree shape, timings, results and secrecy, from a handmade realistic run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from core_fixtures import (
    BUILD_ID,
    CLONE_OUTPUT,
    CLONEREFS_END,
    CLONEREFS_START,
    COMPLETION,
    EXTRA_COMMANDS,
    FINISHED_EPOCH,
    GCS_PATH,
    JOB,
    MAIN_COMMANDS,
    MAIN_SHA,
    MERGED_SHA,
    PENDING,
    PENDING_PUBLISH,
    POD_CREATED,
    POD_NODE,
    PUBLISH,
    PULL_SHA,
    SCENARIOS,
    SCHEDULED_EVENT,
    SIDECAR_END,
    SNOWFLAKE_INSTANT,
    START,
    STARTED_EPOCH,
    TEST_END,
    TEST_START,
    TOKEN,
    TOT_BUILD_ID,
    UID,
    URL,
    artifacts,
    clone_records_doc,
    finished_doc,
    full_artifacts,
    instant,
    podinfo_doc,
    prowjob_doc,
    started_doc,
    terminal_spans,
    traceable,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.core import semconv as sc
from processor.core.build import command_name, job_spans, to_ns
from processor.core.ids import SNOWFLAKE_EPOCH_MS
from processor.core.spans import SpanKind, SpanRecord

CLONEREFS = "pod/init/clonerefs"
MAIN_CLONE = f"{CLONEREFS}/clone/kubernetes/kubernetes"
EXTRA_CLONE = f"{CLONEREFS}/clone/kubernetes/test-infra"
TREE = [
    ("", "RUN pull-kubernetes-unit"),
    ("queue", "queue"),
    ("pod", "pod"),
    ("pod/schedule", "pod/schedule"),
    (CLONEREFS, "init/clonerefs"),
    (MAIN_CLONE, "clone/kubernetes/kubernetes"),
    (f"{MAIN_CLONE}/0", "git init"),
    (f"{MAIN_CLONE}/1", "git config"),
    (f"{MAIN_CLONE}/2", "git fetch"),
    (f"{MAIN_CLONE}/3", "git checkout"),
    (f"{MAIN_CLONE}/4", "git fetch"),
    (f"{MAIN_CLONE}/5", "git merge"),
    (EXTRA_CLONE, "clone/kubernetes/test-infra"),
    (f"{EXTRA_CLONE}/0", "git init"),
    (f"{EXTRA_CLONE}/1", "git fetch"),
    (f"{EXTRA_CLONE}/2", "git checkout"),
    ("pod/init/initupload", "init/initupload"),
    ("pod/init/place-entrypoint", "init/place-entrypoint"),
    ("pod/container/test", "container/test"),
    ("pod/container/sidecar", "container/sidecar"),
]
"""The failure run's tree, in emission order (parents first), as build.py's docstring lays out."""


def ns(text: str) -> int:
    """Nanoseconds since the epoch of one of the fixtures' timestamps."""
    return to_ns(instant(text))


def by_path(spans: Sequence[SpanRecord]) -> dict[str, SpanRecord]:
    """Index spans by their path."""
    return {span.path: span for span in spans}


def snowflake_for(moment: datetime) -> str:
    """Vend the snowflake build ID bwmarrin/snowflake would give at ``moment``."""
    return str((int(moment.timestamp() * 1000) - SNOWFLAKE_EPOCH_MS) << 22)


def strings_of(spans: Sequence[SpanRecord]) -> list[str]:
    """Every text a span carries: names, attribute and event values, status descriptions."""
    texts: list[str] = []
    for span in spans:
        texts.extend([span.name, span.path, span.error or ""])
        values: list[Any] = list(span.attributes.values())
        for event in span.events:
            texts.append(event.name)
            values.extend(event.attributes.values())
        for value in values:
            texts.extend(str(item) for item in (value if isinstance(value, tuple) else (value,)))
    return texts


def assert_nested(spans: Sequence[SpanRecord]) -> None:
    """Assert no span ends before it starts and every child (and event) lies inside its parent."""
    index = by_path(spans)
    for span in spans:
        assert span.start_ns <= span.end_ns, span.path
        for event in span.events:
            assert span.start_ns <= event.time_ns <= span.end_ns, (span.path, event.name)
        parent = index.get(span.parent) if span.parent is not None else None
        if parent is not None:
            assert parent.start_ns <= span.start_ns, span.path
            assert span.end_ns <= parent.end_ns, span.path


# --- tree shape ------------------------------------------------------------------------------


def test_terminal_tree_paths_and_names() -> None:
    """A terminal run yields build.py's documented tree, parents before children."""
    assert [(span.path, span.name) for span in terminal_spans()] == TREE


def test_every_span_hangs_under_its_path_parent() -> None:
    """Each span's parent is the documented one: root, pod, clonerefs, or its clone."""
    parents = {span.path: span.parent for span in terminal_spans()}
    assert parents[""] is None
    assert parents["queue"] == parents["pod"] == ""
    assert parents["pod/schedule"] == parents[CLONEREFS] == parents["pod/container/test"] == "pod"
    assert parents[MAIN_CLONE] == parents[EXTRA_CLONE] == CLONEREFS
    assert parents[f"{MAIN_CLONE}/4"] == MAIN_CLONE


@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - {"pending"}))
def test_terminal_trees_have_no_orphans_and_unique_paths(scenario: str) -> None:
    """Every terminal tree has one root, unique paths, and every parent present."""
    spans = SCENARIOS[scenario]()
    paths = [span.path for span in spans]
    assert len(paths) == len(set(paths))
    assert [span.path for span in spans if span.parent is None] == [""]
    assert all(span.parent in paths for span in spans if span.parent is not None)


def test_only_the_root_is_a_server_span() -> None:
    """The root is SERVER (a pipeline run); everything else is INTERNAL."""
    kinds = {span.path: span.kind for span in terminal_spans()}
    assert kinds.pop("") is SpanKind.SERVER
    assert set(kinds.values()) == {SpanKind.INTERNAL}


def test_building_twice_gives_identical_spans() -> None:
    """The builder is a pure function: the same inputs give equal records."""
    assert terminal_spans() == terminal_spans()


# --- root ------------------------------------------------------------------------------------


def test_root_is_run_job_from_start_to_completion() -> None:
    """The root is ``RUN <job>`` from prowjob startTime to completionTime exactly."""
    root = terminal_spans()[0]
    assert (root.name, root.start_ns, root.end_ns) == (
        f"RUN {JOB}",
        ns(START),
        ns(COMPLETION),
    )
    assert root.attributes[sc.PROW_TIMING_SOURCE] == "prowjob"


def test_root_identifies_the_run() -> None:
    """The root names the pipeline, run ID, URL, ProwJob UID and artifact folder."""
    attributes = terminal_spans()[0].attributes
    assert attributes[sc.CICD_PIPELINE_NAME] == JOB
    assert attributes[sc.CICD_PIPELINE_RUN_ID] == BUILD_ID
    assert attributes[sc.CICD_PIPELINE_RUN_URL_FULL] == URL
    assert attributes[sc.CICD_PIPELINE_ACTION_NAME] == "RUN"
    assert attributes[sc.PROW_JOB_ID] == UID
    assert attributes[sc.PROW_BUILD_ID] == BUILD_ID
    assert attributes[sc.PROW_ARTIFACTS_URL] == GCS_PATH
    assert attributes[sc.PROW_JOB_TYPE] == "presubmit"
    assert attributes[sc.PROW_CLUSTER] == "build01"


def test_root_describes_the_main_repository_and_pull() -> None:
    """VCS attributes describe the main refs and its one pull request."""
    attributes = terminal_spans()[0].attributes
    assert attributes[sc.VCS_REPOSITORY_URL_FULL] == "https://github.com/kubernetes/kubernetes"
    assert attributes[sc.VCS_PROVIDER_NAME] == "github"
    assert (attributes[sc.VCS_OWNER_NAME], attributes[sc.VCS_REPOSITORY_NAME]) == (
        "kubernetes",
        "kubernetes",
    )
    assert attributes[sc.VCS_REF_BASE_NAME] == "master"
    assert attributes[sc.VCS_REF_BASE_REVISION] == MAIN_SHA
    assert attributes[sc.VCS_CHANGE_ID] == "123"
    assert attributes[sc.VCS_CHANGE_TITLE] == "Fix the flaky scheduler test"
    assert attributes[sc.PROW_PULLS] == (123,)


def test_root_lists_extra_repositories() -> None:
    """Extra refs are listed as ``org/repo@base``."""
    assert terminal_spans()[0].attributes[sc.PROW_EXTRA_REPOS] == ("kubernetes/test-infra@master",)


def test_batch_names_no_single_change() -> None:
    """A batch lists its pulls but sets no vcs.change.id: no pull is *the* change."""
    attributes = SCENARIOS["batch"]()[0].attributes
    assert attributes[sc.PROW_PULLS] == (123, 124, 125)
    assert sc.VCS_CHANGE_ID not in attributes


def test_periodic_without_refs_has_no_vcs_attributes() -> None:
    """A periodic with no refs carries no vcs.* attribute on its root."""
    attributes = SCENARIOS["periodic without refs"]()[0].attributes
    assert not [key for key in attributes if key.startswith("vcs.")]


def test_long_description_is_capped_and_scrubbed() -> None:
    """A kilobytes-long description with a secret is capped and loses the secret."""
    description = f"Job failed: token={TOKEN} " + "x" * 5000
    root = terminal_spans(description=description)[0]
    attribute = root.attributes[sc.PROW_JOB_DESCRIPTION]
    assert isinstance(attribute, str)
    assert len(attribute) <= 1024
    assert root.error is not None
    assert len(root.error) <= 256
    assert TOKEN not in attribute + root.error


@pytest.mark.parametrize(
    ("scenario", "result", "error_type"),
    [
        ("success", "success", None),
        ("failure", "failure", "test_failed"),
        ("aborted", "cancellation", None),
        ("error", "error", "prow_error"),
        ("error timeout", "timeout", "timeout"),
        ("clone failure", "failure", "clone_failed"),
        ("oom killed", "failure", "oom_killed"),
        ("deadline exceeded", "timeout", "timeout"),
        ("missing podinfo", "failure", "test_failed"),
    ],
)
def test_result_and_error_type(scenario: str, result: str, error_type: str | None) -> None:
    """The job's end maps to cicd.pipeline.result and error.type per the conventions."""
    attributes = SCENARIOS[scenario]()[0].attributes
    assert attributes[sc.CICD_PIPELINE_RESULT] == result
    assert attributes.get(sc.ERROR_TYPE) == error_type


@pytest.mark.parametrize(
    ("scenario", "failed"),
    [
        ("success", False),
        ("aborted", False),
        ("failure", True),
        ("error", True),
        ("error timeout", True),
    ],
)
def test_root_status_is_error_for_failure_error_and_timeout(scenario: str, failed: bool) -> None:  # noqa: FBT001 - pytest parameter
    """Failure, error and timeout set the root's status to ERROR; success and aborted do not."""
    root = SCENARIOS[scenario]()[0]
    assert (root.error is not None) is failed


def test_root_error_description_is_the_prowjob_description() -> None:
    """The root's ERROR status carries Prow's description of what went wrong."""
    assert SCENARIOS["error"]()[0].error == "Pod got deleted unexpectedly"


def test_prowjob_terminal_state_wins_over_the_message() -> None:
    """When prowjob.json holds a terminal state, the result follows it (replays, retries)."""
    spans = job_spans(traceable("failure"), full_artifacts("success"), PUBLISH)
    assert spans[0].attributes[sc.CICD_PIPELINE_RESULT] == "success"


def test_stale_prowjob_past_grace_ends_the_root_at_publish_time() -> None:
    """A prowjob.json still pending (emitted after the grace period) ends the root at publish."""
    arts = artifacts(prowjob=prowjob_doc(state="pending", completion=None))
    root = job_spans(traceable("failure"), arts, PUBLISH)[0]
    assert (root.start_ns, root.end_ns) == (ns(START), to_ns(PUBLISH))
    assert root.attributes[sc.PROW_TIMING_SOURCE] == "publish_time"
    assert root.attributes[sc.CICD_PIPELINE_RESULT] == "failure"


def test_without_prowjob_the_root_starts_at_the_snowflake_instant() -> None:
    """With no artifacts at all (build-ID mode), the root runs from the build ID's instant."""
    spans = SCENARIOS["no prowjob.json"]()
    assert [(span.path, span.start_ns, span.end_ns) for span in spans] == [
        ("", to_ns(SNOWFLAKE_INSTANT), to_ns(PUBLISH))
    ]
    assert spans[0].attributes[sc.PROW_TIMING_SOURCE] == "publish_time"
    assert spans[0].attributes[sc.PROW_TIMING_ESTIMATED] is True


# --- queue -----------------------------------------------------------------------------------


def test_queue_runs_from_creation_to_the_snowflake_instant() -> None:
    """With a snowflake agreeing with pendingTime, the queue ends at its millisecond instant."""
    queue = by_path(terminal_spans())["queue"]
    assert (queue.start_ns, queue.end_ns) == (ns(START), to_ns(SNOWFLAKE_INSTANT))
    assert queue.attributes[sc.PROW_TIMING_SOURCE] == "snowflake"
    assert queue.attributes[sc.CICD_PIPELINE_RUN_STATE] == "pending"


def test_queue_ends_at_pending_time_when_the_snowflake_disagrees() -> None:
    """A snowflake 30 s before pendingTime is not trusted: the queue ends at pendingTime."""
    build_id = snowflake_for(instant(PENDING) - timedelta(seconds=30))
    queue = by_path(terminal_spans(build_id=build_id))["queue"]
    assert queue.end_ns == ns(PENDING)
    assert queue.attributes[sc.PROW_TIMING_SOURCE] == "prowjob"


def test_queue_ends_at_pending_time_when_the_snowflake_is_later() -> None:
    """A snowflake more than a second after the (truncated) pendingTime is not trusted."""
    build_id = snowflake_for(instant(PENDING) + timedelta(seconds=2))
    assert by_path(terminal_spans(build_id=build_id))["queue"].end_ns == ns(PENDING)


def test_tot_build_id_uses_prowjob_timing() -> None:
    """A tot build ID carries no time: the queue ends at pendingTime, sourced from prowjob."""
    queue = by_path(SCENARIOS["tot build ID"]())["queue"]
    assert queue.end_ns == ns(PENDING)
    assert queue.attributes[sc.PROW_TIMING_SOURCE] == "prowjob"
    assert queue.attributes[sc.CICD_PIPELINE_RUN_ID] == TOT_BUILD_ID


def test_pending_message_emits_only_the_queue_span() -> None:
    """The pending message yields the queue span alone, parented to the (future) root."""
    spans = SCENARIOS["pending"]()
    assert [(span.path, span.parent) for span in spans] == [("queue", "")]


def test_pending_queue_is_identical_to_the_terminal_queue() -> None:
    """The queue span from the pending message equals the one re-emitted with the terminal."""
    pending_queue = SCENARIOS["pending"]()[0]
    assert pending_queue == by_path(terminal_spans())["queue"]


def test_replayed_pending_message_with_final_prowjob_gives_the_same_queue() -> None:
    """A pending message replayed after completion (prowjob.json ahead) gives the same queue."""
    replayed = job_spans(traceable("pending"), full_artifacts(), PENDING_PUBLISH)
    assert replayed == [by_path(terminal_spans())["queue"]]


def test_pending_message_without_pending_time_or_snowflake_has_no_queue_span() -> None:
    """Without pendingTime or a snowflake the pending instant is unknown: no queue is invented."""
    arts = artifacts(
        prowjob=prowjob_doc(state="triggered", build_id=TOT_BUILD_ID, pending=None, completion=None)
    )
    assert job_spans(traceable("pending"), arts, PENDING_PUBLISH) == []


def test_snowflake_dates_the_queue_when_prowjob_lacks_pending_time() -> None:
    """A ProwJob from before pendingTime existed: the snowflake build ID ends the queue."""
    arts = artifacts(prowjob=prowjob_doc(pending=None))
    spans = by_path(job_spans(traceable("success"), arts, PUBLISH))
    assert spans["queue"].end_ns == to_ns(SNOWFLAKE_INSTANT)
    assert spans["queue"].attributes[sc.PROW_TIMING_SOURCE] == "snowflake"


def test_queue_is_the_same_from_the_pending_and_the_terminal_message() -> None:
    """The queue span depends on artifacts only, never on which message or publish time."""
    pending_arts = artifacts(prowjob=prowjob_doc(state="pending", pending=None, completion=None))
    (from_pending,) = job_spans(traceable("pending"), pending_arts, PENDING_PUBLISH)
    terminal = by_path(
        job_spans(traceable("success"), artifacts(prowjob=prowjob_doc(pending=None)), PUBLISH)
    )
    assert from_pending == terminal["queue"]


def test_pending_message_without_prowjob_emits_nothing() -> None:
    """Without prowjob.json there is no creation time, hence no queue span."""
    assert job_spans(traceable("pending"), artifacts(), PENDING_PUBLISH) == []


# --- pod -------------------------------------------------------------------------------------


def test_pod_runs_from_creation_to_the_last_container_end() -> None:
    """The pod span starts at pod creation and ends when its last container finished."""
    pod = by_path(terminal_spans())["pod"]
    assert (pod.start_ns, pod.end_ns) == (ns(POD_CREATED), ns(SIDECAR_END))
    assert pod.attributes[sc.PROW_POD_NODE] == POD_NODE
    assert pod.attributes[sc.CICD_WORKER_NAME] == POD_NODE
    assert pod.attributes[sc.PROW_POD_NAME] == UID


def test_schedule_runs_from_creation_to_pod_scheduled() -> None:
    """pod/schedule spans creation to the PodScheduled condition."""
    schedule = by_path(terminal_spans())["pod/schedule"]
    # the Scheduled event's MicroTime, inside the condition's (truncated) second
    assert (schedule.start_ns, schedule.end_ns) == (ns(POD_CREATED), ns(SCHEDULED_EVENT))


def test_container_spans_use_their_terminated_times() -> None:
    """Init containers and containers span their startedAt to finishedAt."""
    spans = by_path(terminal_spans())
    assert (spans[CLONEREFS].start_ns, spans[CLONEREFS].end_ns) == (
        ns(CLONEREFS_START),
        ns(CLONEREFS_END),
    )
    test = spans["pod/container/test"]
    assert (test.start_ns, test.end_ns) == (ns(TEST_START), ns(TEST_END))


def test_pod_events_become_span_events_in_time_order() -> None:
    """Pod events are span events on the pod, sorted by time, with message, type and count."""
    events = by_path(terminal_spans())["pod"].events
    assert [event.name for event in events] == ["Pulling", "Scheduled", "BackOff"]
    backoff = events[2]
    assert backoff.time_ns == ns("2020-05-07T00:52:40Z")
    assert dict(backoff.attributes) == {
        sc.PROW_EVENT_MESSAGE: "Back-off pulling image",
        sc.PROW_EVENT_TYPE: "Warning",
        sc.PROW_EVENT_COUNT: 3,
    }


def test_pod_revivals_are_visible() -> None:
    """A revived pod carries its revival count and a revival event at its start."""
    spans = by_path(SCENARIOS["revived"]())
    assert spans[""].attributes[sc.PROW_POD_REVIVAL_COUNT] == 2
    pod = spans["pod"]
    assert pod.attributes[sc.PROW_POD_REVIVAL_COUNT] == 2
    assert pod.events[0].name == "prow.pod.revived"
    assert pod.events[0].time_ns == pod.start_ns


def test_test_container_is_a_failed_task() -> None:
    """The test container is a CI/CD task with its result, error.type and ERROR status."""
    test = by_path(terminal_spans())["pod/container/test"]
    assert test.attributes[sc.CICD_PIPELINE_TASK_NAME] == "test"
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_ID] == f"{BUILD_ID}/test"
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_URL_FULL] == URL
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT] == "failure"
    assert test.attributes[sc.ERROR_TYPE] == "test_failed"
    assert test.attributes[sc.PROW_CONTAINER_EXIT_CODE] == 1
    assert test.error == "container test: Error"


def test_sidecar_is_not_a_task() -> None:
    """The sidecar is Prow's machinery, not a pipeline task."""
    sidecar = by_path(terminal_spans())["pod/container/sidecar"]
    assert sc.CICD_PIPELINE_TASK_NAME not in sidecar.attributes
    assert sidecar.error is None


def test_successful_test_container_is_a_successful_task() -> None:
    """In a passing run the test task succeeds, with no error.type and no ERROR status."""
    test = by_path(SCENARIOS["success"]())["pod/container/test"]
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT] == "success"
    assert sc.ERROR_TYPE not in test.attributes
    assert test.error is None


# --- clone -----------------------------------------------------------------------------------


def test_repositories_clone_concurrently_from_clonerefs_start() -> None:
    """Each repository's clone span starts when clonerefs started."""
    spans = by_path(terminal_spans())
    assert spans[MAIN_CLONE].start_ns == spans[EXTRA_CLONE].start_ns == ns(CLONEREFS_START)


@pytest.mark.parametrize(
    ("clone", "commands"), [(MAIN_CLONE, MAIN_COMMANDS), (EXTRA_CLONE, EXTRA_COMMANDS)]
)
def test_clone_commands_run_one_after_another(
    clone: str, commands: tuple[tuple[str, int], ...]
) -> None:
    """Command spans follow each other from clonerefs' start, each as long as its duration."""
    spans = by_path(terminal_spans())
    cursor = ns(CLONEREFS_START)
    for index, (_, duration) in enumerate(commands):
        command = spans[f"{clone}/{index}"]
        assert (command.start_ns, command.end_ns) == (cursor, cursor + duration)
        cursor += duration


def test_clone_span_lasts_the_recorded_duration() -> None:
    """A repository's clone span lasts its record's duration."""
    clone = by_path(terminal_spans())[MAIN_CLONE]
    assert clone.end_ns - clone.start_ns == sum(ns for _, ns in MAIN_COMMANDS) + 40_000_000


def test_clone_command_attribute_has_no_credentials() -> None:
    """The command line is kept for debugging, minus the token in its URL."""
    fetch = by_path(terminal_spans())[f"{MAIN_CLONE}/2"]
    assert fetch.attributes[sc.PROW_CLONE_COMMAND] == (
        "/usr/bin/git fetch https://github.com/kubernetes/kubernetes.git --tags --prune"
    )


def test_failed_clone_marks_repository_and_command() -> None:
    """A failed clone sets ERROR on its repository span and on the failing command."""
    spans = by_path(SCENARIOS["clone failure"]())
    assert spans[MAIN_CLONE].attributes[sc.PROW_CLONE_FAILED] is True
    assert spans[MAIN_CLONE].error is not None
    failing = spans[f"{MAIN_CLONE}/2"]
    assert failing.error is not None
    assert "502" in failing.error
    assert spans[EXTRA_CLONE].error is None


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_no_secret_from_clone_commands_reaches_any_span(scenario: str) -> None:
    """The token planted in clone URLs and errors appears in no name, attribute or status."""
    assert not [text for text in strings_of(SCENARIOS[scenario]()) if TOKEN in text]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_clone_command_output_reaches_no_span(scenario: str) -> None:
    """Clone command output is never exported."""
    assert not [text for text in strings_of(SCENARIOS[scenario]()) if CLONE_OUTPUT in text]


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/usr/bin/git fetch https://github.com/k/k.git", "git fetch"),
        (f"git fetch https://{TOKEN}@github.com/k/k.git", "git fetch"),
        ("git -c user.name=ci-robot commit -m merge", "git commit"),
        ("git -C /home/prow/go/src/k8s.io/kubernetes checkout FETCH_HEAD", "git checkout"),
        ("git --no-pager log -1", "git log"),
        ("git ls-remote origin", "git ls-remote"),
        (f"git https://{TOKEN}@github.com/k/k.git", "git"),
        ("", "command"),
        ("PWD=/home/prow/go/src/k8s.io/test-infra  git init", "git init"),
        (
            "PWD=/ GIT_CONFIG_VALUE_0=Authorization: Basic eC1hY2Nlc3M= mkdir -p /home/prow/go",
            "mkdir",
        ),
        ("GIT_CONFIG_VALUE_0=Authorization: Bearer T0KEN git fetch origin", "git fetch"),
    ],
)
def test_command_span_name_is_program_and_verb(command: str, name: str) -> None:
    """A command span is named by program and verb: low cardinality, nothing from arguments."""
    assert command_name(command) == name


def test_header_value_with_a_space_never_becomes_the_span_name() -> None:
    """``git -c http.extraheader=PRIVATE-TOKEN: <token> fetch`` is named ``git fetch``."""
    token = "glpat-" + "Xy7Kp2Qw9Rt5Zm3Vb8Ln"
    assert command_name(f"git -c http.extraheader=PRIVATE-TOKEN: {token} fetch") == "git fetch"


# --- estimated pod (no podinfo.json) ---------------------------------------------------------


def test_missing_podinfo_estimates_the_pod_and_says_so() -> None:
    """Without podinfo.json the pod, clonerefs and test spans are marked estimated."""
    spans = by_path(SCENARIOS["missing podinfo"]())
    for path in ("pod", CLONEREFS, "pod/container/test"):
        assert spans[path].attributes[sc.PROW_TIMING_ESTIMATED] is True, path


def test_estimated_pod_runs_from_pending_to_completion() -> None:
    """The estimated pod spans the pending instant to the job's completion."""
    pod = by_path(SCENARIOS["missing podinfo"]())["pod"]
    assert (pod.start_ns, pod.end_ns) == (to_ns(SNOWFLAKE_INSTANT), ns(COMPLETION))


def test_estimated_clonerefs_ends_when_started_json_was_written() -> None:
    """The clonerefs span ends at started.json's timestamp and lasts its longest clone."""
    clonerefs = by_path(SCENARIOS["missing podinfo"]())[CLONEREFS]
    longest = sum(ns for _, ns in MAIN_COMMANDS) + 40_000_000
    assert clonerefs.end_ns == STARTED_EPOCH * 10**9
    assert clonerefs.end_ns - clonerefs.start_ns == longest


def test_estimated_test_container_from_started_to_finished() -> None:
    """The test task spans started.json to finished.json and claims no exit code."""
    test = by_path(SCENARIOS["missing podinfo"]())["pod/container/test"]
    assert (test.start_ns, test.end_ns) == (STARTED_EPOCH * 10**9, FINISHED_EPOCH * 10**9)
    assert test.attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT] == "failure"
    assert sc.PROW_CONTAINER_EXIT_CODE not in test.attributes


def test_aborted_before_the_pod_ran_has_no_container_spans() -> None:
    """Aborted while pending: root, queue and an estimated pod, but no containers."""
    assert [span.path for span in SCENARIOS["aborted while pending"]()] == ["", "queue", "pod"]


# --- timing invariants -----------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_child_lies_inside_its_parent(scenario: str) -> None:
    """In every scenario no duration is negative and children lie within their parents."""
    assert_nested(SCENARIOS[scenario]())


def _at(base: datetime, seconds: int) -> str:
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


_OFFSET = st.integers(min_value=-120, max_value=4000)


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(_OFFSET, min_size=14, max_size=14),
    durations=st.lists(st.integers(min_value=0, max_value=20 * 10**9), min_size=9, max_size=9),
    podinfo=st.booleans(),
)
def test_children_lie_inside_parents_for_any_timestamps(
    times: list[int],
    durations: list[int],
    podinfo: bool,  # noqa: FBT001 - a hypothesis parameter
) -> None:
    """Whatever the (disordered, skewed) artifact times, the tree nests without negative spans."""
    base = instant(START)
    prowjob = prowjob_doc(
        start=_at(base, times[0]), pending=_at(base, times[1]), completion=_at(base, times[2])
    )
    pod = podinfo_doc()
    status = pod["pod"]["status"]
    pod["pod"]["metadata"]["creationTimestamp"] = _at(base, times[3])
    status["conditions"][0]["lastTransitionTime"] = _at(base, times[4])
    runs = [*status["initContainerStatuses"], *status["containerStatuses"]]
    for index, run in enumerate(runs):
        terminated = run["state"]["terminated"]
        terminated["startedAt"] = _at(base, times[5 + index])
        terminated["finishedAt"] = _at(base, times[5 + index] + times[(index + 10) % 14] // 4)
    pod["events"][2]["firstTimestamp"] = _at(base, times[13])
    clones = clone_records_doc()
    commands = [*clones[0]["commands"], *clones[1]["commands"]]
    for command, duration in zip(commands, durations, strict=True):
        command["duration"] = duration
    clones[1]["duration"] = durations[0]
    started = started_doc() | {"timestamp": base.timestamp() + times[10]}
    finished = finished_doc() | {"timestamp": base.timestamp() + times[11]}
    arts = artifacts(
        prowjob=prowjob,
        podinfo=pod if podinfo else None,
        clone_records=clones,
        started=started,
        finished=finished,
    )
    spans = job_spans(traceable("failure"), arts, PUBLISH)
    assert_nested(spans)
    assert spans[0].start_ns == ns(_at(base, times[0]))


def _queues(
    start: datetime, pending: datetime, completion: datetime, build_id: str
) -> tuple[SpanRecord, SpanRecord]:
    """Return the queue span of the pending message and that of the terminal one."""
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    first, running = start.strftime(stamp), pending.strftime(stamp)
    pending_doc = prowjob_doc(
        state="pending", build_id=build_id, start=first, pending=running, completion=None
    )
    final_doc = prowjob_doc(
        build_id=build_id, start=first, pending=running, completion=completion.strftime(stamp)
    )
    [pending_queue] = job_spans(traceable("pending"), artifacts(prowjob=pending_doc), pending)
    terminal = by_path(job_spans(traceable("failure"), artifacts(prowjob=final_doc), completion))
    return pending_queue, terminal["queue"]


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=600),
    queued=st.integers(min_value=0, max_value=600),
    ran=st.integers(min_value=1, max_value=4000),
    build_offset_ms=st.integers(min_value=-12_000, max_value=3_000),
)
def test_pending_queue_matches_terminal_queue_for_any_ordered_times(
    start: int, queued: int, ran: int, build_offset_ms: int
) -> None:
    """For Prow-ordered times (start ≤ pending < completion) both queue spans are equal."""
    base = datetime(2020, 5, 7, 0, 40, tzinfo=UTC)
    pending = base + timedelta(seconds=start + queued)
    build_id = snowflake_for(pending + timedelta(milliseconds=build_offset_ms))
    pending_queue, terminal_queue = _queues(
        base + timedelta(seconds=start), pending, pending + timedelta(seconds=ran), build_id
    )
    assert pending_queue == terminal_queue


def test_pending_queue_matches_terminal_queue_when_the_job_ends_within_a_second() -> None:
    """A job completing in the second it went pending still gets one identical queue span."""
    pending = datetime(2020, 5, 7, 0, 40, tzinfo=UTC)
    build_id = snowflake_for(pending + timedelta(milliseconds=875))
    pending_queue, terminal_queue = _queues(
        pending - timedelta(seconds=5), pending, pending, build_id
    )
    assert pending_queue == terminal_queue


# --- real-Prow shapes (issue 10) ---------------------------------------------------------------

CRIER = {"uploader": "crier"}


def _crier_started() -> dict[str, Any]:
    return {"timestamp": STARTED_EPOCH, "repo-commit": MERGED_SHA, "metadata": CRIER}


def _crier_finished(state: str) -> dict[str, Any]:
    return {"timestamp": FINISHED_EPOCH, "passed": False, "metadata": CRIER, "result": state}


def test_crier_written_started_and_finished_make_no_test_container() -> None:
    """Crier's stand-ins carry the ProwJob's times: no container span is made of them."""
    arts = artifacts(
        prowjob=prowjob_doc(state="error", description="Pod pending timeout."),
        started=_crier_started(),
        finished=_crier_finished("error"),
    )
    spans = by_path(job_spans(traceable("error"), arts, PUBLISH))
    assert set(spans) == {"", "queue", "pod"}
    assert spans["pod"].attributes[sc.PROW_TIMING_ESTIMATED] is True


def test_pod_pending_timeout_is_an_error_with_its_own_error_type() -> None:
    """Plank's "Pod pending timeout.": result error, error.type pod_pending_timeout."""
    arts = artifacts(prowjob=prowjob_doc(state="error", description="Pod pending timeout."))
    root = job_spans(traceable("error"), arts, PUBLISH)[0]
    assert root.attributes[sc.CICD_PIPELINE_RESULT] == sc.RESULT_ERROR
    assert root.attributes[sc.ERROR_TYPE] == sc.ERROR_POD_PENDING_TIMEOUT


def test_crier_finished_json_is_no_evidence_of_a_failed_test() -> None:
    """A failure whose finished.json is crier's says nothing of why: error.type _OTHER."""
    arts = artifacts(prowjob=prowjob_doc(), finished=_crier_finished("failure"))
    root = job_spans(traceable("failure"), arts, PUBLISH)[0]
    assert root.attributes[sc.ERROR_TYPE] == sc.ERROR_OTHER


@pytest.mark.parametrize("agent", ["tekton-pipeline", "jenkins"])
def test_jobs_of_agents_without_a_pod_get_no_pod_spans(agent: str) -> None:
    """Tekton and Jenkins jobs run no pod: root and queue only, whatever files exist."""
    doc = prowjob_doc(state="success")
    doc["spec"]["agent"] = agent
    arts = artifacts(prowjob=doc, started=_crier_started(), finished=_crier_finished("success"))
    assert set(by_path(job_spans(traceable("success"), arts, PUBLISH))) == {"", "queue"}


def test_untimed_clone_records_share_the_clonerefs_window_as_estimates() -> None:
    """Clone records without durations: commands spread over clonerefs' window, estimated."""
    records = clone_records_doc()
    for record in records:
        record.pop("duration")
        for command in record["commands"]:
            command.pop("duration")
    arts = artifacts(
        prowjob=prowjob_doc(), clone_records=records, started=started_doc(), finished=finished_doc()
    )
    spans = job_spans(traceable("failure"), arts, PUBLISH)
    clonerefs = by_path(spans)["pod/init/clonerefs"]
    commands = [span for span in spans if span.parent and span.parent.count("/clone/") == 1]
    assert clonerefs.end_ns == STARTED_EPOCH * 1_000_000_000
    assert clonerefs.start_ns == to_ns(SNOWFLAKE_INSTANT)  # the pod's (estimated) start
    assert all(span.end_ns > span.start_ns for span in commands)
    assert all(span.attributes[sc.PROW_TIMING_ESTIMATED] is True for span in commands)


def test_gcs_path_with_a_trailing_slash_gives_the_same_spans() -> None:
    """Crier's gcs_path ends in '/' when the URL template does; the spans do not change."""
    arts = artifacts(prowjob=prowjob_doc())
    plain = job_spans(traceable("success"), arts, PUBLISH)
    slashed = traceable("success")
    slashed = replace(
        slashed, message=replace(slashed.message, gcs_path=slashed.message.gcs_path + "/")
    )
    assert job_spans(slashed, arts, PUBLISH) == plain


def test_presubmit_head_revision_is_the_pulls_commit_on_root_and_clone() -> None:
    """vcs.ref.head.revision: the pull's SHA on the root and the clone span alike."""
    spans = by_path(terminal_spans())
    clone = next(
        span for path, span in spans.items() if path.endswith("clone/kubernetes/kubernetes")
    )
    assert spans[""].attributes[sc.VCS_REF_HEAD_REVISION] == PULL_SHA
    assert clone.attributes[sc.VCS_REF_HEAD_REVISION] == PULL_SHA
    assert clone.attributes[sc.PROW_CLONE_FINAL_SHA] == MERGED_SHA
