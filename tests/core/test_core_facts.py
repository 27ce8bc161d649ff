"""Artifact files decode into the facts the span builder uses; malformed ones name the field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from core_fixtures import (
    BUILD_ID,
    CLONE_OUTPUT,
    COMPLETION,
    FINISHED_EPOCH,
    JOB,
    MAIN_COMMANDS,
    MAIN_SHA,
    MERGED_SHA,
    PENDING,
    POD_CREATED,
    POD_INITIALIZED,
    POD_NODE,
    POD_SCHEDULED,
    PULL_SHA,
    SCHEDULED_EVENT,
    START,
    STARTED_EPOCH,
    TEST_INFRA_SHA,
    UID,
    URL,
    clone_records_doc,
    encode,
    finished_doc,
    instant,
    podinfo_doc,
    prowjob_doc,
    started_doc,
)

from processor.core import facts
from processor.core.jsonshape import ShapeError

JsonT = TypeVar("JsonT", dict[str, Any], list[dict[str, Any]])


def put(doc: JsonT, path: tuple[str | int, ...], value: object) -> JsonT:
    """Set ``doc[path...] = value`` in place and return ``doc``."""
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


# --- prowjob.json ----------------------------------------------------------------------------


def test_prowjob_identity_fields() -> None:
    """The UID, job, type, state, agent, cluster, namespace and context are read."""
    job = facts.parse_prowjob(encode(prowjob_doc()))
    assert (job.uid, job.job, job.job_type, job.state) == (UID, JOB, "presubmit", "failure")
    assert (job.agent, job.cluster, job.namespace, job.context) == (
        "kubernetes",
        "build01",
        "test-pods",
        JOB,
    )


def test_prowjob_status_fields() -> None:
    """Description, URL, pod name and build ID come from status."""
    job = facts.parse_prowjob(encode(prowjob_doc()))
    assert (job.description, job.url, job.pod_name, job.build_id) == (
        "Job failed.",
        URL,
        UID,
        BUILD_ID,
    )


def test_prowjob_times_are_utc_datetimes() -> None:
    """startTime, pendingTime and completionTime parse to aware UTC datetimes."""
    job = facts.parse_prowjob(encode(prowjob_doc()))
    assert (job.start, job.pending, job.completion) == (
        instant(START),
        instant(PENDING),
        instant(COMPLETION),
    )
    assert job.start is not None
    assert job.start.tzinfo is UTC


def test_prowjob_absent_times_are_none() -> None:
    """A pending job has no completionTime: None, not an error."""
    job = facts.parse_prowjob(encode(prowjob_doc(state="pending", completion=None)))
    assert job.completion is None


def test_prowjob_go_zero_time_is_none() -> None:
    """Go's zero time (0001-01-01T00:00:00Z) means 'not set'."""
    doc = put(prowjob_doc(), ("status", "completionTime"), "0001-01-01T00:00:00Z")
    assert facts.parse_prowjob(encode(doc)).completion is None


def test_prowjob_refs_then_extra_refs() -> None:
    """spec.refs comes first, then spec.extra_refs, with their pulls."""
    job = facts.parse_prowjob(encode(prowjob_doc()))
    assert [refs.full_name for refs in job.refs] == [
        "kubernetes/kubernetes",
        "kubernetes/test-infra",
    ]
    main = job.refs[0]
    assert (main.base_ref, main.base_sha, main.path_alias) == (
        "master",
        MAIN_SHA,
        "k8s.io/kubernetes",
    )
    assert [(pull.number, pull.sha, pull.head_ref) for pull in main.pulls] == [
        (123, PULL_SHA, "fix-flake")
    ]


def test_prowjob_without_refs_has_only_extra_refs() -> None:
    """A periodic with only extra_refs has those refs and no main one."""
    job = facts.parse_prowjob(encode(prowjob_doc(refs={})))
    assert [refs.full_name for refs in job.refs] == ["kubernetes/test-infra"]


def test_prowjob_pod_revival_count() -> None:
    """status.pod_revival_count is read; absent means 0."""
    assert facts.parse_prowjob(encode(prowjob_doc(revival_count=2))).revival_count == 2
    assert facts.parse_prowjob(encode(prowjob_doc())).revival_count == 0


def test_prowjob_string_labels_are_kept() -> None:
    """Labels are read as a string mapping."""
    labels = facts.parse_prowjob(encode(prowjob_doc())).labels
    assert labels is not None
    assert labels["prow.k8s.io/build-id"] == BUILD_ID


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        pytest.param(("status", "startTime"), 1588812735, "status.startTime", id="time number"),
        pytest.param(("status", "startTime"), "yesterday", "status.startTime", id="time text"),
        pytest.param(("status", "state"), ["failure"], "status.state", id="state"),
        pytest.param(("status", "pod_revival_count"), "2", "status.pod_revival_count", id="n"),
        pytest.param(("status", "build_id"), 1258197944759226371, "status.build_id", id="build"),
        pytest.param(("spec", "refs", "pulls", 0, "number"), "123", "spec.refs.pulls[0].number"),
        pytest.param(("spec", "extra_refs", 0, "org"), 7, "spec.extra_refs[0].org", id="extra"),
        pytest.param(("spec", "extra_refs"), {"org": "k"}, "spec.extra_refs", id="extra obj"),
        pytest.param(("metadata", "name"), 42, "metadata.name", id="uid"),
        pytest.param(("metadata", "labels"), ["a"], "metadata.labels", id="labels"),
        pytest.param(("spec",), "presubmit", "spec", id="spec"),
    ],
)
def test_malformed_prowjob_names_the_field(
    path: tuple[str | int, ...], value: object, field: str
) -> None:
    """A prowjob.json field of the wrong type raises ShapeError naming that field."""
    doc = put(prowjob_doc(), path, value)
    with pytest.raises(ShapeError) as raised:
        facts.parse_prowjob(encode(doc))
    assert raised.value.path.endswith(field)
    assert str(raised.value).startswith(raised.value.path + ": expected ")


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[]", b'"prowjob"', b"[" * 100_000],
    ids=["empty", "truncated", "array", "string", "deeply nested"],
)
def test_prowjob_that_is_not_a_json_object_is_refused(data: bytes) -> None:
    """Non-JSON, non-object and absurdly nested files raise ValueError naming the file."""
    with pytest.raises(ValueError, match=r"prowjob\.json"):
        facts.parse_prowjob(data)


def test_prowjob_time_out_of_range_is_a_shape_error() -> None:
    """A time that parses but cannot be represented in UTC raises ShapeError naming it."""
    doc = put(prowjob_doc(), ("status", "completionTime"), "9999-12-31T23:59:59-01:00")
    with pytest.raises(ShapeError) as raised:
        facts.parse_prowjob(encode(doc))
    assert raised.value.path == "status.completionTime"


# --- started.json / finished.json ------------------------------------------------------------


def test_started_epoch_seconds_node_and_commit() -> None:
    """started.json's epoch-seconds timestamp, node and repo-commit are read."""
    started = facts.parse_started(encode(started_doc()))
    assert started.timestamp == datetime.fromtimestamp(STARTED_EPOCH, UTC)
    assert (started.node, started.repo_commit) == (POD_NODE, MERGED_SHA)


def test_started_fractional_epoch_seconds() -> None:
    """A fractional epoch timestamp keeps its fraction."""
    started = facts.parse_started(b'{"timestamp": 1588812756.25}')
    assert started.timestamp == datetime(2020, 5, 7, 0, 52, 36, 250000, tzinfo=UTC)


def test_started_without_timestamp_has_none() -> None:
    """A missing or zero timestamp is None."""
    assert facts.parse_started(b"{}").timestamp is None
    assert facts.parse_started(b'{"timestamp": 0}').timestamp is None


def test_finished_fields() -> None:
    """finished.json's timestamp, passed, result and revision are read."""
    finished = facts.parse_finished(encode(finished_doc(passed=False)))
    assert finished.timestamp == datetime.fromtimestamp(FINISHED_EPOCH, UTC)
    assert (finished.passed, finished.result, finished.revision) == (False, "FAILURE", MERGED_SHA)


def test_finished_without_passed_says_unknown() -> None:
    """When finished.json does not say whether the job passed, ``passed`` is None."""
    assert facts.parse_finished(b'{"timestamp": 1588813535}').passed is None


@pytest.mark.parametrize(
    ("parse", "data", "field"),
    [
        pytest.param(facts.parse_started, b'{"timestamp": "1588812756"}', "timestamp", id="s"),
        pytest.param(facts.parse_started, b'{"timestamp": true}', "timestamp", id="s-bool"),
        pytest.param(facts.parse_started, b'{"timestamp": 1e300}', "timestamp", id="s-huge"),
        pytest.param(facts.parse_started, b'{"node": 3}', "node", id="s-node"),
        pytest.param(facts.parse_finished, b'{"passed": "true"}', "passed", id="f-passed"),
        pytest.param(facts.parse_finished, b'{"timestamp": [1]}', "timestamp", id="f-time"),
        pytest.param(facts.parse_finished, b'{"result": 0}', "result", id="f-result"),
    ],
)
def test_malformed_started_or_finished_names_the_field(
    parse: Callable[[bytes], object],
    data: bytes,
    field: str,
) -> None:
    """A started/finished field of the wrong type raises ShapeError naming file and field."""
    with pytest.raises(ShapeError) as raised:
        parse(data)
    assert raised.value.path.endswith(f".json.{field}")


# --- podinfo.json ----------------------------------------------------------------------------


def test_podinfo_pod_identity_and_phase() -> None:
    """The pod's name, node and phase are read."""
    info = facts.parse_podinfo(encode(podinfo_doc()))
    assert (info.name, info.node, info.phase) == (UID, POD_NODE, "Failed")


def test_podinfo_creation_and_true_conditions() -> None:
    """Creation time and the transition times of conditions that are True are read."""
    doc = podinfo_doc()
    doc["events"] = []
    info = facts.parse_podinfo(encode(doc))
    assert (info.created, info.scheduled, info.initialized) == (
        instant(POD_CREATED),
        instant(POD_SCHEDULED),
        instant(POD_INITIALIZED),
    )


def test_podinfo_scheduled_takes_the_scheduled_events_microseconds() -> None:
    """The Scheduled event (a MicroTime) refines PodScheduled's second-truncated time."""
    info = facts.parse_podinfo(encode(podinfo_doc()))
    assert info.scheduled == instant(SCHEDULED_EVENT)


def test_podinfo_false_condition_is_ignored() -> None:
    """A condition with status False (Ready at the end of a job) gives no time."""
    assert facts.parse_podinfo(encode(podinfo_doc())).ready is None


def test_podinfo_init_containers_in_order_with_terminated_state() -> None:
    """Init containers keep their order, start/finish times, exit code, reason and image."""
    info = facts.parse_podinfo(encode(podinfo_doc()))
    assert [run.name for run in info.init_containers] == [
        "clonerefs",
        "initupload",
        "place-entrypoint",
    ]
    clonerefs = info.init_containers[0]
    assert (clonerefs.started, clonerefs.finished) == (
        instant("2020-05-07T00:52:23Z"),
        instant("2020-05-07T00:52:35Z"),
    )
    assert (clonerefs.exit_code, clonerefs.reason) == (0, "Completed")
    assert clonerefs.image == "gcr.io/k8s-prow/clonerefs:v20200506"


def test_podinfo_containers_with_exit_codes() -> None:
    """Containers carry their exit codes and reasons."""
    info = facts.parse_podinfo(encode(podinfo_doc()))
    assert [(run.name, run.exit_code, run.reason) for run in info.containers] == [
        ("test", 1, "Error"),
        ("sidecar", 0, "Completed"),
    ]


def test_podinfo_running_container_has_start_but_no_end() -> None:
    """A container still running has its start time, no finish and no exit code."""
    doc = podinfo_doc()
    put(doc, ("pod", "status", "containerStatuses", 0, "state"), {"running": {"startedAt": START}})
    run = facts.parse_podinfo(encode(doc)).containers[0]
    assert (run.started, run.finished, run.exit_code) == (instant(START), None, None)


def test_podinfo_restart_count() -> None:
    """A container's restartCount is read."""
    doc = put(podinfo_doc(), ("pod", "status", "containerStatuses", 0, "restartCount"), 2)
    assert facts.parse_podinfo(encode(doc)).containers[0].restart_count == 2


def test_podinfo_events_with_best_time_type_and_count() -> None:
    """Events take eventTime, else firstTimestamp; type and count default sensibly."""
    events = facts.parse_podinfo(encode(podinfo_doc())).events
    assert [(e.reason, e.time, e.kind, e.count) for e in events] == [
        ("Scheduled", datetime(2020, 5, 7, 0, 52, 22, 123456, tzinfo=UTC), "Normal", 1),
        ("Pulling", instant("2020-05-07T00:52:22Z"), "Normal", 1),
        ("BackOff", instant("2020-05-07T00:52:40Z"), "Warning", 3),
    ]


def test_podinfo_event_falls_back_to_creation_timestamp() -> None:
    """An event with no timestamps of its own uses its metadata.creationTimestamp."""
    doc = {"events": [{"reason": "Killing", "metadata": {"creationTimestamp": COMPLETION}}]}
    assert facts.parse_podinfo(encode(doc)).events[0].time == instant(COMPLETION)


def test_podinfo_without_pod_keeps_events() -> None:
    """podinfo.json may lack the pod; its events are still read."""
    doc = podinfo_doc()
    del doc["pod"]
    info = facts.parse_podinfo(encode(doc))
    assert info.created is None
    assert len(info.events) == 3


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        pytest.param(
            ("pod", "status", "containerStatuses", 0, "state", "terminated", "exitCode"),
            "1",
            "pod.status.containerStatuses[0].state.terminated.exitCode",
            id="exitCode",
        ),
        pytest.param(
            ("pod", "status", "initContainerStatuses", 1, "state", "terminated", "startedAt"),
            "not a time",
            "pod.status.initContainerStatuses[1].state.terminated.startedAt",
            id="startedAt",
        ),
        pytest.param(
            ("pod", "status", "conditions", 0, "lastTransitionTime"),
            17,
            "pod.status.conditions[0].lastTransitionTime",
            id="condition time",
        ),
        pytest.param(
            ("pod", "status", "containerStatuses", 1),
            "sidecar",
            "pod.status.containerStatuses[1]",
            id="status entry",
        ),
        pytest.param(
            ("pod", "metadata", "creationTimestamp"),
            False,
            "pod.metadata.creationTimestamp",
            id="created",
        ),
        pytest.param(("pod", "spec", "nodeName"), 5, "pod.spec.nodeName", id="node"),
        pytest.param(("events", 2, "count"), "3", "events[2].count", id="event count"),
        pytest.param(("events", 0, "eventTime"), "soon", "events[0].eventTime", id="event time"),
        pytest.param(("events",), {"a": 1}, "events", id="events"),
        pytest.param(("pod",), [], "pod", id="pod"),
    ],
)
def test_malformed_podinfo_names_the_field(
    path: tuple[str | int, ...], value: object, field: str
) -> None:
    """A podinfo.json field of the wrong type raises ShapeError naming that field."""
    doc = put(podinfo_doc(), path, value)
    with pytest.raises(ShapeError) as raised:
        facts.parse_podinfo(encode(doc))
    assert raised.value.path == field


def test_malformed_container_spec_name_names_the_full_field() -> None:
    """A pod spec container whose name is not a string is reported with its full path."""
    doc = put(podinfo_doc(), ("pod", "spec", "initContainers", 0, "name"), 5)
    with pytest.raises(ShapeError) as raised:
        facts.parse_podinfo(encode(doc))
    assert raised.value.path == "pod.spec.initContainers[0].name"


# --- clone-records.json ----------------------------------------------------------------------


def test_clone_records_one_per_repository() -> None:
    """Each record names its repository, outcome and final SHA."""
    records = facts.parse_clone_records(encode(clone_records_doc()))
    assert [(r.refs.full_name, r.failed, r.final_sha) for r in records] == [
        ("kubernetes/kubernetes", False, MERGED_SHA),
        ("kubernetes/test-infra", False, TEST_INFRA_SHA),
    ]


def test_clone_record_durations_are_integer_nanoseconds() -> None:
    """Go time.Duration values are kept as integer nanoseconds, per command and per record."""
    record = facts.parse_clone_records(encode(clone_records_doc()))[0]
    assert [command.duration_ns for command in record.commands] == [ns for _, ns in MAIN_COMMANDS]
    assert record.duration_ns == sum(ns for _, ns in MAIN_COMMANDS) + 40_000_000


def test_clone_commands_keep_command_and_error() -> None:
    """Each command's text and error are kept, in order."""
    record = facts.parse_clone_records(encode(clone_records_doc(failed=True)))[0]
    assert [command.command for command in record.commands] == [c for c, _ in MAIN_COMMANDS[:3]]
    assert record.commands[2].error.startswith("fatal: unable to access")
    assert record.failed


def test_clone_command_output_is_never_kept() -> None:
    """The parsed records hold no command output: not as a field, not anywhere in their values."""
    records = facts.parse_clone_records(encode(clone_records_doc(failed=True)))
    assert "output" not in {field.name for field in fields(facts.CloneCommand)}
    assert CLONE_OUTPUT not in repr(records)


def test_clone_records_null_is_empty() -> None:
    """A ``null`` clone-records.json holds no records."""
    assert facts.parse_clone_records(b"null") == ()


def test_negative_durations_are_clamped_to_zero() -> None:
    """A negative duration (clock trouble) becomes 0 rather than a negative span."""
    doc = put(clone_records_doc(), (0, "commands", 0, "duration"), -5)
    assert facts.parse_clone_records(encode(doc))[0].commands[0].duration_ns == 0


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        pytest.param((0, "commands", 1, "duration"), 1.5, "[0].commands[1].duration", id="float"),
        pytest.param((0, "commands", 1, "duration"), "1s", "[0].commands[1].duration", id="text"),
        pytest.param((0, "commands", 0, "command"), ["git"], "[0].commands[0].command", id="cmd"),
        pytest.param((1, "failed"), "false", "[1].failed", id="failed"),
        pytest.param((1, "refs", "repo"), 3, "[1].refs.repo", id="refs.repo"),
        pytest.param((0, "commands"), {"command": "git"}, "[0].commands", id="commands"),
        pytest.param((1,), "kubernetes/test-infra", "[1]", id="record"),
    ],
)
def test_malformed_clone_records_name_the_field(
    path: tuple[str | int, ...], value: object, field: str
) -> None:
    """A clone-records.json field of the wrong type raises ShapeError naming that field."""
    doc = put(clone_records_doc(), path, value)
    with pytest.raises(ShapeError) as raised:
        facts.parse_clone_records(encode(doc))
    assert raised.value.path == f"clone-records.json{field}"


def test_clone_records_that_are_not_an_array_are_refused() -> None:
    """An object where the array of records belongs raises ShapeError for the file."""
    with pytest.raises(ShapeError) as raised:
        facts.parse_clone_records(b'{"refs": {}}')
    assert raised.value.path == "clone-records.json"


def test_clone_record_refs_of_wrong_falsy_type_is_refused() -> None:
    """Refs given as an empty array (not an object) raise ShapeError naming the field."""
    doc = put(clone_records_doc(), (0, "refs"), [])
    with pytest.raises(ShapeError) as raised:
        facts.parse_clone_records(encode(doc))
    assert raised.value.path == "clone-records.json[0].refs"


@pytest.mark.parametrize(
    "parse",
    [facts.parse_started, facts.parse_finished, facts.parse_podinfo, facts.parse_clone_records],
)
def test_non_json_artifact_is_refused_naming_the_file(parse: Callable[[bytes], object]) -> None:
    """Every parser refuses bytes that are not JSON with a ValueError naming its file."""
    with pytest.raises(ValueError, match=r"\.json: not JSON"):
        parse(b"<html>503</html>")
