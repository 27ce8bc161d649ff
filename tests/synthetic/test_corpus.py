"""The synthetic Prow corpus: deterministic, faithful to Prow's formats, internally consistent."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from processor.synthetic import (
    DEFAULT_SUBSCRIPTION,
    SECRET_SCENARIOS,
    Published,
    Scenario,
    SyntheticJob,
    generate,
    message_bytes,
    mirror_path,
    push_envelope,
    read_jsonl,
    snowflake_ms,
    stream,
    write_jsonl,
    write_mirror,
)
from processor.synthetic._encoding import go_json

EVERY = list(Scenario)
SNOWFLAKE_SANE_MS = (1_600_000_000_000, 2_000_000_000_000)
RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MESSAGE_KEYS = ["project", "topic", "runid", "status", "url", "gcs_path", "refs", "job_type"]


@pytest.fixture(scope="module")
def each() -> list[SyntheticJob]:
    """Generate three jobs of every scenario."""
    return list(generate(3 * len(EVERY), seed=11, scenarios=EVERY))


@pytest.fixture(scope="module")
def fleet() -> list[SyntheticJob]:
    """Generate a default mix, large enough to hold every scenario."""
    return list(generate(300, seed=2))


def of(jobs: list[SyntheticJob], scenario: Scenario) -> list[SyntheticJob]:
    """Return the jobs of one scenario (there must be some)."""
    found = [job for job in jobs if job.scenario is scenario]
    assert found, scenario
    return found


def load(job: SyntheticJob, name: str) -> Any:  # noqa: ANN401 - parsed JSON of any shape
    """Parse one artifact."""
    return json.loads(job.artifacts[name])


def seconds(stamp: str) -> int:
    """Epoch seconds of a Kubernetes RFC 3339 time."""
    assert RFC3339_SECONDS.match(stamp), stamp
    return int(datetime.fromisoformat(stamp).timestamp())


def pod_jobs(jobs: list[SyntheticJob]) -> Iterator[tuple[SyntheticJob, dict[str, Any]]]:
    """Jobs with a podinfo.json, with it parsed."""
    for job in jobs:
        if "podinfo.json" in job.artifacts:
            yield job, load(job, "podinfo.json")


def snapshot(job: SyntheticJob) -> bytes:
    """Every byte a job carries."""
    parts = [json.dumps([job.uid, job.build_id, job.gcs_path, job.url]).encode()]
    parts += [name.encode() + content for name, content in job.artifacts.items()]
    parts += [m.publish_time.isoformat().encode() + message_bytes(m) for m in job.messages]
    parts += list(job.prowjob_versions.values())
    return b"\n".join(parts)


# Determinism and laziness


def test_same_seed_gives_identical_bytes() -> None:
    """Two runs with the same seed produce byte-identical jobs."""
    first = [snapshot(job) for job in generate(40, seed=5)]
    second = [snapshot(job) for job in generate(40, seed=5)]
    assert first == second


def test_different_seeds_differ() -> None:
    """Another seed gives other jobs."""
    first = [snapshot(job) for job in generate(10, seed=5)]
    second = [snapshot(job) for job in generate(10, seed=6)]
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_a_job_does_not_depend_on_the_run_length() -> None:
    """With fixed scenarios, job i is the same in a short and a long run."""
    short = [snapshot(job) for job in generate(5, seed=1, scenarios=EVERY)]
    long = [snapshot(job) for job in generate(12, seed=1, scenarios=EVERY)]
    assert long[:5] == short


def test_generation_is_lazy() -> None:
    """Asking for a million jobs yields the first at once, without building the rest."""
    assert next(generate(1_000_000, seed=0)).uid


def test_two_thousand_jobs_stream() -> None:
    """2,000 jobs generate in one pass (fast: about a second) with artifacts for most."""
    with_files = sum(1 for job in generate(2000, seed=9) if job.artifacts)
    assert with_files > 1900


def test_generate_rejects_bad_arguments() -> None:
    """Negative counts, naive start times and empty scenario lists are refused."""
    with pytest.raises(ValueError, match="n_jobs"):
        next(generate(-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        next(generate(1, start=datetime(2026, 11, 1)))  # noqa: DTZ001 - the naive time under test
    with pytest.raises(ValueError, match="non-empty"):
        next(generate(1, scenarios=[]))


def test_given_scenarios_are_used_in_turn() -> None:
    """An explicit scenario list is cycled through."""
    jobs = list(generate(4, scenarios=[Scenario.TOT_BUILD_ID, Scenario.BATCH_SUCCESS]))
    assert [job.scenario for job in jobs] == [
        Scenario.TOT_BUILD_ID,
        Scenario.BATCH_SUCCESS,
        Scenario.TOT_BUILD_ID,
        Scenario.BATCH_SUCCESS,
    ]


def test_default_mix_covers_every_scenario() -> None:
    """Without a scenario list, a run as long as the scenario list holds each of them."""
    assert {job.scenario for job in generate(len(EVERY), seed=4)} == set(EVERY)


def test_default_mix_is_mostly_successes(fleet: list[SyntheticJob]) -> None:
    """Most jobs of the default mix succeed."""
    finals = Counter(job.messages[-1].data["status"] for job in fleet)
    assert finals["success"] > len(fleet) * 0.6


def test_jobs_overlap_like_a_fleet(fleet: list[SyntheticJob]) -> None:
    """Many jobs run at the same time."""
    spans = [
        (job.messages[0].publish_time, job.messages[-1].publish_time)
        for job in fleet
        if len(job.messages) > 1
    ]
    busiest = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert busiest >= 10


# Which files each lifecycle leaves

BASE = {"prowjob.json", "started.json", "finished.json"}
JUNIT = {"artifacts/junit_unit.xml"}
"""The test container's go-junit-report file, whenever it ran to its end."""
EXPECTED_FILES = {
    Scenario.PRESUBMIT_SUCCESS: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.PRESUBMIT_FAILURE: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.POSTSUBMIT_SUCCESS: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.POSTSUBMIT_FAILURE: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.PERIODIC_SUCCESS: BASE | JUNIT | {"podinfo.json"},
    Scenario.BATCH_SUCCESS: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.ABORTED_WHILE_PENDING: BASE,
    Scenario.ABORTED_WHILE_RUNNING: BASE | {"clone-records.json", "podinfo.json"},
    Scenario.ERROR_BEFORE_PENDING: {"prowjob.json", "finished.json"},
    Scenario.ERROR_EMPTY_JOB: set(),
    Scenario.CLONE_FAILURE: BASE | {"clone-records.json", "podinfo.json"},
    Scenario.MISSING_PODINFO: BASE | JUNIT | {"clone-records.json"},
    Scenario.TOT_BUILD_ID: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.POD_REVIVED: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.FLAKY_CLONE: BASE | JUNIT | {"clone-records.json", "podinfo.json"},
    Scenario.POD_PENDING_TIMEOUT: BASE,
    Scenario.IMAGE_PULL_BACKOFF: BASE | {"clone-records.json", "podinfo.json"},
    Scenario.TEKTON_PIPELINE: BASE,
    Scenario.LEGACY_ARTIFACTS: BASE | JUNIT | {"clone-records.json"},
}
EXPECTED_STATES = {
    Scenario.PRESUBMIT_FAILURE: ["triggered", "pending", "failure"],
    Scenario.POSTSUBMIT_FAILURE: ["triggered", "pending", "failure"],
    Scenario.CLONE_FAILURE: ["triggered", "pending", "failure"],
    Scenario.ABORTED_WHILE_PENDING: ["triggered", "pending", "aborted"],
    Scenario.ABORTED_WHILE_RUNNING: ["triggered", "pending", "aborted"],
    Scenario.ERROR_BEFORE_PENDING: ["triggered", "error"],
    Scenario.ERROR_EMPTY_JOB: ["error"],
    Scenario.POD_PENDING_TIMEOUT: ["triggered", "pending", "error"],
    Scenario.IMAGE_PULL_BACKOFF: ["triggered", "pending", "error"],
}


@pytest.mark.parametrize("scenario", EVERY, ids=lambda s: s.value)
def test_each_scenario_leaves_its_files(each: list[SyntheticJob], scenario: Scenario) -> None:
    """Each lifecycle leaves exactly the artifacts Prow would write for it."""
    for job in of(each, scenario):
        assert set(job.artifacts) == EXPECTED_FILES[scenario]


@pytest.mark.parametrize("scenario", EVERY, ids=lambda s: s.value)
def test_each_scenario_reports_its_states(each: list[SyntheticJob], scenario: Scenario) -> None:
    """Each lifecycle publishes the state sequence crier would."""
    expected = EXPECTED_STATES.get(scenario, ["triggered", "pending", "success"])
    for job in of(each, scenario):
        assert [m.data["status"] for m in job.messages] == expected


def test_presubmit_success_clones_two_repos(each: list[SyntheticJob]) -> None:
    """The extra_refs presubmit has the setup record plus one record per repository."""
    for job in of(each, Scenario.PRESUBMIT_SUCCESS):
        records = load(job, "clone-records.json")
        assert records[0] == {"refs": {"org": "", "repo": ""}}
        assert len(records) == 3
        assert {r["refs"]["repo"] for r in records[1:]} == {
            job.prowjob_at("success")["spec"]["refs"]["repo"],
            "test-fixtures",
        }


def test_clone_failure_record_is_failed_without_sha_or_duration(each: list[SyntheticJob]) -> None:
    """A failed clone record says failed, and has no final_sha or duration (omitempty)."""
    for job in of(each, Scenario.CLONE_FAILURE):
        record = load(job, "clone-records.json")[1]
        assert record["failed"] is True
        assert "final_sha" not in record
        assert "duration" not in record
        assert record["commands"][-1]["error"] == "exit status 128"


def test_clone_failure_stops_the_pod_in_initupload(each: list[SyntheticJob]) -> None:
    """Initupload fails with FAILURE in finished.json and the test container never starts."""
    for job in of(each, Scenario.CLONE_FAILURE):
        assert load(job, "finished.json") == {
            "timestamp": load(job, "finished.json")["timestamp"],
            "passed": False,
            "result": "FAILURE",
        }
        status = load(job, "podinfo.json")["pod"]["status"]
        initupload = status["initContainerStatuses"][1]
        assert initupload["state"]["terminated"]["exitCode"] == 1
        test = next(c for c in status["containerStatuses"] if c["name"] == "test")
        assert test["state"] == {"waiting": {"reason": "PodInitializing"}}
        assert status["phase"] == "Failed"


def test_flaky_clone_folds_the_retry_into_one_slow_fetch(each: list[SyntheticJob]) -> None:
    """Clonerefs records a retried fetch once: no error, duration past the 100 ms backoff."""
    for job in of(each, Scenario.FLAKY_CLONE):
        record = load(job, "clone-records.json")[1]
        fetches = [c for c in record["commands"] if " git fetch " in c["command"]]
        assert not any("error" in c for c in record["commands"])
        assert fetches[0]["duration"] > 2_100_000_000
        assert "failed" not in record


def test_tot_build_id_is_a_small_integer(each: list[SyntheticJob]) -> None:
    """A tot build ID is a small integer that does not decode to a sane time."""
    for job in of(each, Scenario.TOT_BUILD_ID):
        assert job.build_id.isdigit()
        assert int(job.build_id) < 100_000
        assert not SNOWFLAKE_SANE_MS[0] <= snowflake_ms(int(job.build_id)) <= SNOWFLAKE_SANE_MS[1]
        assert job.gcs_path.endswith(f"/{job.build_id}")


def test_tot_build_ids_increase_per_job() -> None:
    """Successive tot runs of one job get successive IDs."""
    jobs = list(generate(30, seed=3, scenarios=[Scenario.TOT_BUILD_ID]))
    by_name: dict[str, list[int]] = {}
    for job in jobs:
        by_name.setdefault(job.job_name, []).append(int(job.build_id))
    for ids in by_name.values():
        assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_revived_pod_moves_the_job_to_a_new_build(each: list[SyntheticJob]) -> None:
    """A revival changes build ID and folder; the first folder keeps the partial run."""
    for job in of(each, Scenario.POD_REVIVED):
        pending, final = job.messages[1].data, job.messages[-1].data
        assert pending["gcs_path"] != final["gcs_path"] == job.gcs_path
        assert list(job.abandoned_artifacts) == [pending["gcs_path"]]
        old = job.abandoned_artifacts[pending["gcs_path"]]
        assert set(old) == {"prowjob.json", "started.json", "clone-records.json", "finished.json"}
        assert json.loads(old["finished.json"])["result"] == "ABORTED"
        assert json.loads(old["prowjob.json"])["status"]["state"] == "pending"
        assert load(job, "prowjob.json")["status"]["pod_revival_count"] == 1


def test_pod_pending_timeout_is_a_2019_error_with_only_crier_files(
    each: list[SyntheticJob],
) -> None:
    """Plank's "Pod pending timeout.": no pendingTime (pre-Oct-2019), crier's files only."""
    for job in of(each, Scenario.POD_PENDING_TIMEOUT):
        status = load(job, "prowjob.json")["status"]
        assert (status["state"], status["description"]) == ("error", "Pod pending timeout.")
        assert "pendingTime" not in status
        assert load(job, "started.json")["metadata"] == {"uploader": "crier"}
        assert load(job, "finished.json")["metadata"] == {"uploader": "crier"}


def test_image_pull_backoff_leaves_a_pending_pod_with_a_waiting_test(
    each: list[SyntheticJob],
) -> None:
    """An unpullable test image: Pending pod, test in ImagePullBackOff, crier's finished.json."""
    for job in of(each, Scenario.IMAGE_PULL_BACKOFF):
        podinfo = load(job, "podinfo.json")
        status = podinfo["pod"]["status"]
        assert status["phase"] == "Pending"
        test = next(c for c in status["containerStatuses"] if c["name"] == "test")
        assert test["state"]["waiting"]["reason"] == "ImagePullBackOff"
        assert any(event["reason"] == "Failed" for event in podinfo["events"])
        assert "metadata" not in load(job, "started.json")
        assert load(job, "finished.json")["metadata"] == {"uploader": "crier"}
        assert load(job, "prowjob.json")["status"]["description"] == "Pod pending timeout."


def test_tekton_job_has_no_pod(each: list[SyntheticJob]) -> None:
    """A tekton-pipeline ProwJob: no pod_spec, no decoration, no pod_name; crier's files."""
    for job in of(each, Scenario.TEKTON_PIPELINE):
        document = load(job, "prowjob.json")
        assert document["spec"]["agent"] == "tekton-pipeline"
        assert not {"pod_spec", "decoration_config"} & set(document["spec"])
        assert "pod_name" not in document["status"]
        assert load(job, "started.json")["metadata"] == {"uploader": "crier"}


def test_legacy_artifacts_have_pre_2022_shapes(each: list[SyntheticJob]) -> None:
    """No pendingTime, clone records without durations, and URLs ending in '/'."""
    for job in of(each, Scenario.LEGACY_ARTIFACTS):
        assert "pendingTime" not in load(job, "prowjob.json")["status"]
        records = json.loads(job.artifacts["clone-records.json"])
        assert not any("duration" in record for record in records)
        assert not any("duration" in c for record in records for c in record.get("commands", ()))
        assert job.url.endswith("/")
        assert job.messages[-1].data["gcs_path"] == job.gcs_path + "/"


def test_aborted_while_pending_has_crier_written_files(each: list[SyntheticJob]) -> None:
    """No pod utility ran, so crier wrote started.json and finished.json (result = state)."""
    for job in of(each, Scenario.ABORTED_WHILE_PENDING):
        assert load(job, "started.json")["metadata"] == {"uploader": "crier"}
        finished = load(job, "finished.json")
        assert finished["result"] == "aborted"
        assert finished["metadata"] == {"uploader": "crier"}
        assert finished["passed"] is False


def test_aborted_while_running_kills_the_containers(each: list[SyntheticJob]) -> None:
    """The pod is deleted: Killing events, deletionTimestamp, the sidecar reports ABORTED."""
    for job in of(each, Scenario.ABORTED_WHILE_RUNNING):
        podinfo = load(job, "podinfo.json")
        assert {e["reason"] for e in podinfo["events"]} >= {"Killing"}
        assert "deletionTimestamp" in podinfo["pod"]["metadata"]
        assert load(job, "finished.json")["result"] == "ABORTED"
        assert job.messages[-1].data["message"] == "Job triggered."


def test_error_before_pending_has_no_url_but_a_folder(each: list[SyntheticJob]) -> None:
    """Plank's refused pod: empty url/gcs_path in messages; prowjob.json still has the build."""
    for job in of(each, Scenario.ERROR_BEFORE_PENDING):
        for message in job.messages:
            assert message.data["url"] == message.data["gcs_path"] == ""
        status = load(job, "prowjob.json")["status"]
        assert status["build_id"] == job.build_id
        assert "url" not in status
        assert "pendingTime" not in status
        assert job.url == ""
        assert status["description"].startswith("Pod can not be created: ")


def test_gangway_rejection_is_one_message_from_an_empty_spec(each: list[SyntheticJob]) -> None:
    """Gangway's error: empty job name and type, no refs, nothing stored."""
    for job in of(each, Scenario.ERROR_EMPTY_JOB):
        (message,) = job.messages
        assert message.data["job_name"] == message.data["job_type"] == ""
        assert "refs" not in message.data
        assert message.data["message"].startswith("Failed creating prowjob: ")
        assert job.gcs_path == job.build_id == ""
        assert not job.prowjob_versions


def test_periodic_has_no_refs_and_no_clonerefs(each: list[SyntheticJob]) -> None:
    """A periodic without refs: no refs key, no clonerefs init container, bare started.json."""
    for job in of(each, Scenario.PERIODIC_SUCCESS):
        assert all("refs" not in m.data for m in job.messages)
        names = [c["name"] for c in load(job, "podinfo.json")["pod"]["spec"]["initContainers"]]
        assert names == ["initupload", "place-entrypoint"]
        assert set(load(job, "started.json")) == {"timestamp"}


def test_batch_fetches_and_merges_every_pull(each: list[SyntheticJob]) -> None:
    """A batch job lists several pulls and merges each of them."""
    for job in of(each, Scenario.BATCH_SUCCESS):
        pulls = job.messages[0].data["refs"][0]["pulls"]
        assert len(pulls) >= 2
        commands = [c["command"] for c in load(job, "clone-records.json")[1]["commands"]]
        merges = [c for c in commands if "git merge --no-ff" in c]
        assert [m.rsplit(" ", 1)[1] for m in merges] == [p["sha"] for p in pulls]
        assert "GIT_AUTHOR_DATE=" in merges[0]


# Paths and links


def test_gcs_paths_follow_target_go(each: list[SyntheticJob]) -> None:
    """Folders are logs/, pr-logs/pull/<org_repo>/<pr>/ or pr-logs/pull/batch/ per job type."""
    patterns = {
        "periodic": r"gs://prow-artifacts/logs/{job}/{build}",
        "postsubmit": r"gs://prow-artifacts/logs/{job}/{build}",
        "presubmit": r"gs://prow-artifacts/pr-logs/pull/acme_[a-z-]+/\d+/{job}/{build}",
        "batch": r"gs://prow-artifacts/pr-logs/pull/batch/{job}/{build}",
    }
    for job in each:
        if job.gcs_path:
            pattern = patterns[job.job_type].format(job=job.job_name, build=job.build_id)
            assert re.fullmatch(pattern, job.gcs_path), job.gcs_path


def test_url_is_the_spyglass_view_of_the_folder(each: list[SyntheticJob]) -> None:
    """``url`` is the Deck prefix plus ``gs/`` plus the folder (legacy templates add a '/')."""
    for job in each:
        if job.url:
            view = "https://prow.example.com/view/gs/" + job.gcs_path[len("gs://") :]
            legacy = job.scenario in {Scenario.LEGACY_ARTIFACTS, Scenario.POD_PENDING_TIMEOUT}
            assert job.url == view + ("/" if legacy else "")
            assert job.messages[-1].data["url"] == job.url


def test_bucket_argument_sets_the_folder() -> None:
    """The bucket name appears in gcs_path and the decoration config."""
    job = next(generate(1, bucket="other-bucket", scenarios=[Scenario.POSTSUBMIT_SUCCESS]))
    assert job.gcs_path.startswith("gs://other-bucket/logs/")
    gcs = job.prowjob_at("success")["spec"]["decoration_config"]["gcs_configuration"]
    assert gcs["bucket"] == "other-bucket"


# Timestamps


def test_snowflake_decodes_to_pod_creation(fleet: list[SyntheticJob]) -> None:
    """The build ID's time is the final pod's creation instant (to the second in podinfo)."""
    checked = 0
    for job, podinfo in pod_jobs(fleet):
        if job.scenario is Scenario.TOT_BUILD_ID:
            continue
        vended_ms = snowflake_ms(int(job.build_id))
        assert vended_ms // 1000 == seconds(podinfo["pod"]["metadata"]["creationTimestamp"])
        checked += 1
    assert checked > 100


def test_pending_time_is_truncated_pod_creation(fleet: list[SyntheticJob]) -> None:
    """The pending time is the pod creation second: the build ID's millisecond truncated."""
    for job in fleet:
        if job.scenario in {Scenario.TOT_BUILD_ID, Scenario.POD_REVIVED} or not job.url:
            continue
        if job.scenario in {Scenario.LEGACY_ARTIFACTS, Scenario.POD_PENDING_TIMEOUT}:
            continue  # written before Prow recorded pendingTime
        pending_time = job.prowjob_at("pending")["status"]["pendingTime"]
        assert seconds(pending_time) == snowflake_ms(int(job.build_id)) // 1000


def test_prowjob_times_are_ordered(fleet: list[SyntheticJob]) -> None:
    """Start, pending and completion times are ordered RFC 3339 seconds."""
    for job in fleet:
        if not job.prowjob_versions:
            continue
        status = json.loads(list(job.prowjob_versions.values())[-1])["status"]
        times = [
            seconds(status[k])
            for k in ("startTime", "pendingTime", "completionTime")
            if k in status
        ]
        assert times == sorted(times)
        assert job.prowjob_at("triggered")["metadata"]["creationTimestamp"] == status["startTime"]


def _container_windows(podinfo: dict[str, Any]) -> list[tuple[str, int, int]]:
    status = podinfo["pod"]["status"]
    windows = []
    for entry in status["initContainerStatuses"] + status["containerStatuses"]:
        terminated = entry["state"].get("terminated")
        if terminated:
            windows.append(
                (entry["name"], seconds(terminated["startedAt"]), seconds(terminated["finishedAt"]))
            )
    return windows


def test_containers_run_inside_the_pod_and_job(fleet: list[SyntheticJob]) -> None:
    """Init containers run one after another; containers follow them; all within the job."""
    for job, podinfo in pod_jobs(fleet):
        pod_start = seconds(podinfo["pod"]["status"]["startTime"])
        created = seconds(podinfo["pod"]["metadata"]["creationTimestamp"])
        assert created <= pod_start
        windows = {n: (s, e) for n, s, e in _container_windows(podinfo)}
        inits = [
            windows[n] for n in ("clonerefs", "initupload", "place-entrypoint") if n in windows
        ]
        for (_, end), (start, _) in itertools.pairwise(inits):
            assert end <= start
        for start, end in windows.values():
            assert pod_start <= start <= end
        if "test" in windows and inits:
            assert inits[-1][1] <= windows["test"][0]
        if job.messages[-1].data["status"] != "aborted":
            completion = seconds(load(job, "prowjob.json")["status"]["completionTime"])
            assert all(end <= completion for _, end in windows.values())


def test_started_and_finished_fall_in_their_containers(fleet: list[SyntheticJob]) -> None:
    """started.json is written while initupload runs; finished.json while the sidecar uploads."""
    for job, podinfo in pod_jobs(fleet):
        windows = {n: (s, e) for n, s, e in _container_windows(podinfo)}
        start, end = windows["initupload"]
        assert start <= load(job, "started.json")["timestamp"] <= end
        if "sidecar" in windows and "test" in windows:
            finished = load(job, "finished.json")["timestamp"]
            assert windows["test"][1] <= finished <= windows["sidecar"][1]


def test_clone_records_fit_in_the_clonerefs_container(fleet: list[SyntheticJob]) -> None:
    """Every record (concurrent ones too) lasts no longer than the clonerefs container."""
    for job, podinfo in pod_jobs(fleet):
        windows = {n: (s, e) for n, s, e in _container_windows(podinfo)}
        if "clonerefs" not in windows:
            continue
        start, end = windows["clonerefs"]
        limit_ns = (end + 1 - start) * 1_000_000_000
        for record in load(job, "clone-records.json")[1:]:
            commands_ns = sum(c["duration"] for c in record["commands"])
            assert commands_ns <= record.get("duration", commands_ns) <= limit_ns


def test_command_durations_sum_to_just_under_the_record(fleet: list[SyntheticJob]) -> None:
    """Durations are integer nanoseconds; commands miss only two quick unrecorded git calls."""
    for job in fleet:
        if "clone-records.json" not in job.artifacts:
            continue
        if job.scenario is Scenario.LEGACY_ARTIFACTS:
            continue  # written before clonerefs recorded durations
        for record in load(job, "clone-records.json")[1:]:
            durations = [c["duration"] for c in record["commands"]]
            assert all(type(d) is int and d > 0 for d in durations)
            if "duration" in record:
                assert 0 < record["duration"] - sum(durations) < 20_000_000


def test_publish_times_follow_state_changes(fleet: list[SyntheticJob]) -> None:
    """Messages go out in order, in ms-precise UTC, shortly after each state change."""
    for job in fleet:
        times = [m.publish_time for m in job.messages]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        assert all(t.tzinfo == UTC and t.microsecond % 1000 == 0 for t in times)
        if not job.prowjob_versions:
            continue
        status = json.loads(list(job.prowjob_versions.values())[-1])["status"]
        start = seconds(status["startTime"])
        completion = seconds(status["completionTime"])
        assert start <= times[0].timestamp() < start + 3
        assert completion <= times[-1].timestamp() < completion + 1 + 2.0 + 0.5


# Crier's messages and the ProwJob


def test_message_keys_follow_report_message(fleet: list[SyntheticJob]) -> None:
    """Keys come in Go's field order; refs and message are omitted when empty."""
    for job in fleet:
        for message in job.messages:
            expected = [*MESSAGE_KEYS, "job_name", "message"]
            if not message.data.get("refs"):
                expected.remove("refs")
            if not message.data.get("message"):
                expected.remove("message")
            assert list(message.data) == expected


def test_triggered_message_has_no_url_and_no_description(fleet: list[SyntheticJob]) -> None:
    """``triggered`` has empty url/gcs_path and no message key (no description yet)."""
    for job in fleet:
        first = job.messages[0].data
        if first["status"] == "triggered":
            assert first["url"] == first["gcs_path"] == ""
            assert "message" not in first


def test_message_refs_are_spec_refs_then_extra_refs(each: list[SyntheticJob]) -> None:
    """A message's refs are spec.refs followed by spec.extra_refs."""
    for job in of(each, Scenario.PRESUBMIT_SUCCESS):
        spec = job.prowjob_at("pending")["spec"]
        assert job.messages[1].data["refs"] == [spec["refs"], *spec["extra_refs"]]


def test_message_bytes_are_compact_go_json(each: list[SyntheticJob]) -> None:
    """The body is compact JSON with Go's HTML-safe escaping."""
    message = of(each, Scenario.PRESUBMIT_SUCCESS)[0].messages[-1]
    body = message_bytes(message)
    assert json.loads(body) == message.data
    assert b": " not in body
    assert b", " not in body.replace(b"Job succeeded.", b"")


def test_prowjob_at_triggered_has_only_creation(each: list[SyntheticJob]) -> None:
    """Before pending the status holds startTime and state; no build labels yet."""
    job = of(each, Scenario.PRESUBMIT_FAILURE)[0]
    triggered = job.prowjob_at("triggered")
    assert triggered["status"] == {
        "startTime": triggered["metadata"]["creationTimestamp"],
        "state": "triggered",
    }
    assert "prow.k8s.io/build-id" not in triggered["metadata"]["labels"]


def test_prowjob_at_pending_sets_the_pod_fields(each: list[SyntheticJob]) -> None:
    """Pending sets pendingTime, pod_name, build_id and url together, plus the id labels."""
    job = of(each, Scenario.PRESUBMIT_FAILURE)[0]
    pending = job.prowjob_at("pending")
    status = pending["status"]
    assert status["pod_name"] == job.uid == pending["metadata"]["name"]
    assert status["build_id"] == job.build_id
    assert status["url"] == job.url
    assert RFC3339_SECONDS.match(status["pendingTime"])
    assert pending["metadata"]["labels"]["prow.k8s.io/build-id"] == job.build_id
    assert pending["metadata"]["labels"]["prow.k8s.io/id"] == job.uid
    assert status["prev_report_states"] == {
        "github-reporter": "triggered",
        "pubsub-reporter": "triggered",
    }


def test_prowjob_json_is_the_final_version(fleet: list[SyntheticJob]) -> None:
    """prowjob.json is what the GCS reporter wrote on the terminal state."""
    for job in fleet:
        if "prowjob.json" in job.artifacts:
            final = job.messages[-1].data["status"]
            assert job.artifacts["prowjob.json"] == job.prowjob_versions[final]
            assert job.prowjob_at(final)["status"]["state"] == final


def test_prowjob_name_is_the_uid_not_the_object_uid(each: list[SyntheticJob]) -> None:
    """metadata.name is the job's UUID; metadata.uid is the API server's, a different one."""
    job = each[0]
    metadata = job.prowjob_at("triggered")["metadata"]
    assert metadata["name"] == job.uid
    assert metadata["uid"] != job.uid
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", job.uid
    )


def test_prowjob_at_an_unreported_state_raises(each: list[SyntheticJob]) -> None:
    """Asking for a state the job never had is a KeyError naming the known states."""
    job = of(each, Scenario.PRESUBMIT_FAILURE)[0]
    with pytest.raises(KeyError, match="triggered, pending, failure"):
        job.prowjob_at("success")


# Encoding


def test_json_escapes_html_characters_like_go() -> None:
    """<, > and & are escaped as Go's encoding/json does; other text stays UTF-8."""
    assert go_json({"a": "<b> & é"}) == '{"a":"\\u003cb\\u003e \\u0026 é"}'.encode()


def test_indented_files_use_tabs_like_marshal_indent(each: list[SyntheticJob]) -> None:
    """prowjob.json and podinfo.json are tab-indented; pod-written files are compact."""
    job = of(each, Scenario.PRESUBMIT_FAILURE)[0]
    assert job.artifacts["prowjob.json"].startswith(b'{\n\t"kind": "ProwJob",\n\t"apiVersion"')
    assert job.artifacts["podinfo.json"].startswith(b'{\n\t"pod": {\n\t\t"metadata"')
    assert job.artifacts["started.json"].startswith(b'{"timestamp":')
    assert job.artifacts["clone-records.json"].startswith(b'[{"refs":{"org":"","repo":""}},')


def test_indented_encoding_matches_the_standard_library() -> None:
    """The fast indenting encoder gives json.dumps' bytes (plus Go's escapes)."""
    value = {"a": [1, {"b": None, "c": True}, [], {}], "d": "x\ny\t\u00e9", "e": False}
    expected = json.dumps(value, ensure_ascii=False, indent="\t", separators=(",", ": "))
    assert go_json(value, indent=True) == expected.encode()


# podinfo.json


def test_podinfo_holds_pod_events_and_node(each: list[SyntheticJob]) -> None:
    """podinfo.json is {pod, events, node} of typed objects (no kind/apiVersion)."""
    job = of(each, Scenario.PRESUBMIT_FAILURE)[0]
    podinfo = load(job, "podinfo.json")
    assert list(podinfo) == ["pod", "events", "node"]
    pod = podinfo["pod"]
    assert "kind" not in pod
    assert pod["metadata"]["name"] == job.uid
    assert pod["metadata"]["labels"]["prow.k8s.io/build-id"] == job.build_id
    assert pod["spec"]["nodeName"] == podinfo["node"]["metadata"]["name"]
    types = [c["type"] for c in pod["status"]["conditions"]]
    assert {"PodScheduled", "Initialized", "ContainersReady", "Ready"} <= set(types)
    test = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "test")
    assert test["state"]["terminated"]["exitCode"] == 1
    assert test["state"]["terminated"]["reason"] == "Error"


def test_events_come_in_both_api_shapes(fleet: list[SyntheticJob]) -> None:
    """The scheduler's events use eventTime; kubelet's use first/lastTimestamp and count."""
    for _, podinfo in pod_jobs(fleet):
        for event in podinfo["events"]:
            if event["reportingComponent"] == "default-scheduler":
                assert event["firstTimestamp"] is None
                assert "count" not in event
                assert re.fullmatch(r".*T.*\.\d{6}Z", event["eventTime"])
            else:
                assert event["count"] == 1
                assert event["eventTime"] is None
                assert event["firstTimestamp"] == event["lastTimestamp"]


def test_events_are_in_time_order(fleet: list[SyntheticJob]) -> None:
    """Events are listed by name, which encodes their time, so they are chronological."""
    for _, podinfo in pod_jobs(fleet):
        names = [event["metadata"]["name"] for event in podinfo["events"]]
        assert names == sorted(names)
        assert podinfo["events"][0]["reason"] in {"Scheduled", "FailedScheduling"}


def test_started_json_names_the_merged_commit(each: list[SyntheticJob]) -> None:
    """started.json's repo-commit is clonerefs' final SHA of the main repository."""
    for job in of(each, Scenario.PRESUBMIT_FAILURE):
        started = load(job, "started.json")
        record = next(r for r in load(job, "clone-records.json")[1:] if r["refs"].get("pulls"))
        assert started["repo-commit"] == record["final_sha"] == started["repo-version"]
        assert started["pull"] == str(record["refs"]["pulls"][0]["number"])


def test_finished_json_matches_the_outcome(each: list[SyntheticJob]) -> None:
    """finished.json says SUCCESS or FAILURE and names the tested revision."""
    for scenario, result in (
        (Scenario.POSTSUBMIT_SUCCESS, "SUCCESS"),
        (Scenario.PRESUBMIT_FAILURE, "FAILURE"),
    ):
        for job in of(each, scenario):
            finished = load(job, "finished.json")
            assert finished["result"] == result
            assert finished["passed"] is (result == "SUCCESS")
            refs = job.messages[0].data["refs"][0]
            assert finished["revision"] == (
                refs["pulls"][0]["sha"] if "pulls" in refs else refs["base_sha"]
            )


# Secrets for redaction tests


def test_secret_scenarios_plant_their_secrets(each: list[SyntheticJob]) -> None:
    """Credential scenarios carry each planted secret in their raw clone records."""
    for scenario in SECRET_SCENARIOS:
        for job in of(each, scenario):
            assert job.planted_secrets
            records = job.artifacts["clone-records.json"].decode()
            for secret in job.planted_secrets:
                assert secret in records


def test_clone_uri_credentials_reach_commands_and_output(each: list[SyntheticJob]) -> None:
    """A user-info clone URL shows in the commands and in git's output."""
    for scenario in (Scenario.PRESUBMIT_SUCCESS, Scenario.CLONE_FAILURE):
        for job in of(each, scenario):
            commands = [c for r in load(job, "clone-records.json") for c in r.get("commands", [])]
            token = job.planted_secrets[0]
            assert any(f"x-access-token:{token}@github.com" in c["command"] for c in commands)
            assert any(
                f"x-access-token:{token}@github.com" in c.get("output", "") for c in commands
            )


def test_flaky_clone_commands_carry_an_authorization_header(each: list[SyntheticJob]) -> None:
    """The flaky clone's environment (logged in every command) has an Authorization header."""
    for job in of(each, Scenario.FLAKY_CLONE):
        commands = load(job, "clone-records.json")[1]["commands"]
        assert all(
            f"Authorization: Basic {job.planted_secrets[0]}" in c["command"] for c in commands
        )


def test_other_scenarios_carry_no_credentials(each: list[SyntheticJob]) -> None:
    """Jobs outside the credential scenarios have no planted secrets and no token URLs."""
    for job in each:
        if job.scenario in SECRET_SCENARIOS:
            continue
        assert job.planted_secrets == ()
        assert not any(b"x-access-token:" in content for content in job.artifacts.values())


# Mirror and replay


def test_write_mirror_maps_gs_urls_to_paths(each: list[SyntheticJob], tmp_path: Path) -> None:
    """gs://BUCKET/PATH/NAME lands at root/BUCKET/PATH/NAME with the same bytes."""
    jobs = of(each, Scenario.PRESUBMIT_FAILURE)
    written = write_mirror(jobs, tmp_path)
    assert written == sum(len(job.artifacts) for job in jobs)
    for job in jobs:
        folder = tmp_path.joinpath(
            "prow-artifacts", *job.gcs_path[len("gs://prow-artifacts/") :].split("/")
        )
        for name, content in job.artifacts.items():
            assert (folder / name).read_bytes() == content


def test_write_mirror_includes_abandoned_folders(each: list[SyntheticJob], tmp_path: Path) -> None:
    """A revived job's first build folder is mirrored too."""
    job = of(each, Scenario.POD_REVIVED)[0]
    write_mirror([job], tmp_path)
    (old,) = job.abandoned_artifacts
    assert (mirror_path(tmp_path, old) / "clone-records.json").is_file()


@pytest.mark.parametrize("url", ["s3://bucket/x", "gs://", "gs://bucket/../etc", "gs://b//x"])
def test_mirror_path_refuses_odd_urls(url: str, tmp_path: Path) -> None:
    """Only plain gs:// paths are mirrored; traversal and empty segments are refused."""
    with pytest.raises(ValueError, match=r"gs://|unsafe"):
        mirror_path(tmp_path, url)


def test_stream_merges_all_messages_in_publish_order(fleet: list[SyntheticJob]) -> None:
    """stream() returns every message of every job, ordered by publish time."""
    merged = stream(fleet)
    assert len(merged) == sum(len(job.messages) for job in fleet)
    assert [m.publish_time for m in merged] == sorted(m.publish_time for m in merged)


def test_push_envelope_is_a_pubsub_push_body(each: list[SyntheticJob]) -> None:
    """The body has Pub/Sub's keys, base64 data of crier's bytes and an RFC 3339 publishTime."""
    message = each[0].messages[0]
    body = push_envelope(message, message_id="42")
    assert set(body) == {"message", "subscription"}
    assert body["subscription"] == DEFAULT_SUBSCRIPTION
    inner = body["message"]
    assert base64.b64decode(inner["data"]) == message_bytes(message)
    assert inner["messageId"] == inner["message_id"] == "42"
    assert inner["attributes"] == {}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", inner["publishTime"])
    assert datetime.fromisoformat(inner["publishTime"]) == message.publish_time


def test_push_envelope_carries_delivery_attempt_when_given(each: list[SyntheticJob]) -> None:
    """The delivery attempt appears only when given (a dead-letter policy sets it)."""
    body = push_envelope(
        each[0].messages[0], "projects/p/subscriptions/s", message_id="1", delivery_attempt=3
    )
    assert body["deliveryAttempt"] == 3
    assert body["subscription"] == "projects/p/subscriptions/s"


def test_publish_time_of_a_whole_second_has_no_fraction() -> None:
    """Like protobuf's JSON timestamps, an exact second is written without a fraction."""
    message = Published(datetime(2026, 11, 1, 0, 0, 5, tzinfo=UTC), {"status": "pending"})
    assert (
        push_envelope(message, message_id="1")["message"]["publishTime"] == "2026-11-01T00:00:05Z"
    )


@pytest.mark.parametrize("envelope", [True, False])
def test_jsonl_round_trips(fleet: list[SyntheticJob], tmp_path: Path, envelope: bool) -> None:  # noqa: FBT001 - pytest parameter
    """A replay file reads back to the same messages, one JSON object per line."""
    messages = stream(fleet[:40])
    path = tmp_path / "replay.jsonl"
    assert write_jsonl(messages, path, envelope=envelope) == len(messages)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(messages)
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert read_jsonl(path) == messages


def test_jsonl_envelopes_have_unique_message_ids(fleet: list[SyntheticJob], tmp_path: Path) -> None:
    """Each push body in a replay file has its own message ID."""
    path = tmp_path / "replay.jsonl"
    write_jsonl(stream(fleet[:40]), path, envelope=True)
    ids = [json.loads(line)["message"]["messageId"] for line in path.read_text().splitlines()]
    assert len(set(ids)) == len(ids)
