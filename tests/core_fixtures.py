"""One handmade, realistic Prow presubmit run (crier message + artifact files) for the core's tests.

The documents follow reference sections 1-3: a ProwJob with refs and extra_refs, started/finished
with epoch seconds, a podinfo.json with conditions, init containers, containers and events, and
clone records with nanosecond durations. Builders take keyword arguments so a test changes only
the fact it is about. ``SCENARIOS`` lists every path the span builder has, for tests that must
cover them all (the semantic-convention registry check).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from processor.core import facts
from processor.core.build import job_spans
from processor.core.junit import JunitResults, parse_junit
from processor.core.message import Traceable, classify
from processor.core.spans import SpanRecord

UID = "8d6e3f2a-1b4c-4d5e-9f60-7a8b9c0d1e2f"
BUILD_ID = "1258197944759226371"
"""A snowflake: decodes to 2020-05-07T00:52:20.875Z (reference section 4)."""
SNOWFLAKE_INSTANT = datetime(2020, 5, 7, 0, 52, 20, 875000, tzinfo=UTC)
TOT_BUILD_ID = "4242"
JOB = "pull-kubernetes-unit"
BUCKET_PATH = f"kubernetes-jenkins/pr-logs/pull/kubernetes_kubernetes/123/{JOB}"
GCS_PATH = f"gs://{BUCKET_PATH}/{BUILD_ID}"
URL = f"https://prow.k8s.io/view/gs/{BUCKET_PATH}/{BUILD_ID}"
POD_NODE = "gke-prow-build-pool-5-8f2a1c3d-x7k2"
TOKEN = "ghp_" + "Zq8Xw2Lk5Pn7Rt4Vb9Mc3Hd6Jf1Gs0Ya2Ue5"  # a fake token to trace leaks
"""A GitHub-token-shaped secret planted in clone commands; it must never reach a span."""
CLONE_OUTPUT = "remote: Enumerating objects: CLONE-OUTPUT-MARKER"
"""Planted in every clone command's output, which must never be kept."""

START = "2020-05-07T00:52:15Z"
PENDING = "2020-05-07T00:52:21Z"
POD_CREATED = "2020-05-07T00:52:21Z"
POD_SCHEDULED = "2020-05-07T00:52:22Z"
SCHEDULED_EVENT = "2020-05-07T00:52:22.123456Z"
CLONEREFS_START = "2020-05-07T00:52:23Z"
CLONEREFS_END = "2020-05-07T00:52:35Z"
INITUPLOAD_START = "2020-05-07T00:52:36Z"
INITUPLOAD_END = "2020-05-07T00:52:37Z"
ENTRYPOINT_START = "2020-05-07T00:52:38Z"
ENTRYPOINT_END = "2020-05-07T00:52:39Z"
POD_INITIALIZED = "2020-05-07T00:52:40Z"
TEST_START = "2020-05-07T00:52:41Z"
TEST_END = "2020-05-07T01:05:30Z"
SIDECAR_END = "2020-05-07T01:05:35Z"
COMPLETION = "2020-05-07T01:05:40Z"
STARTED_EPOCH = 1588812756  # 2020-05-07T00:52:36Z: initupload, right after clonerefs
FINISHED_EPOCH = 1588813535  # 2020-05-07T01:05:35Z
PUBLISH = datetime(2020, 5, 7, 1, 5, 41, 250000, tzinfo=UTC)
PENDING_PUBLISH = datetime(2020, 5, 7, 0, 52, 22, 500000, tzinfo=UTC)

MAIN_SHA = "a36820b10cde020818b8dd437e285d0e2e7d5e98"
PULL_SHA = "2b58234a8aee0d55918b158a3b38c292d6a95ef7"
TEST_INFRA_SHA = "5f1e3c9d2b7a4e6f8a0c1d3e5f7a9b1c3d5e7f90"
MERGED_SHA = "9c4e2a7f1b3d5e7a9c1e3f5a7b9d1f3a5c7e9b2d"


def instant(text: str) -> datetime:
    """Parse one of this module's ``Z`` timestamps."""
    return datetime.fromisoformat(text)


def main_refs(*, pulls: int = 1) -> dict[str, Any]:
    """Return the presubmit's main refs: kubernetes/kubernetes at master, with ``pulls`` PRs."""
    return {
        "org": "kubernetes",
        "repo": "kubernetes",
        "repo_link": "https://github.com/kubernetes/kubernetes",
        "base_ref": "master",
        "base_sha": MAIN_SHA,
        "base_link": f"https://github.com/kubernetes/kubernetes/commit/{MAIN_SHA}",
        "pulls": [
            {
                "number": 123 + index,
                "author": "smarterclayton",
                "sha": PULL_SHA,
                "title": "Fix the flaky scheduler test",
                "ref": f"refs/pull/{123 + index}/head",
                "head_ref": "fix-flake",
                "link": f"https://github.com/kubernetes/kubernetes/pull/{123 + index}",
                "commit_link": f"https://github.com/kubernetes/kubernetes/pull/123/commits/{PULL_SHA}",
                "author_link": "https://github.com/smarterclayton",
            }
            for index in range(pulls)
        ],
        "path_alias": "k8s.io/kubernetes",
    }


def extra_refs() -> dict[str, Any]:
    """Return the extra repository the job checks out: kubernetes/test-infra at master."""
    return {
        "org": "kubernetes",
        "repo": "test-infra",
        "repo_link": "https://github.com/kubernetes/test-infra",
        "base_ref": "master",
        "path_alias": "k8s.io/test-infra",
        "workdir": False,
    }


def prowjob_doc(  # noqa: PLR0913 - one keyword per fact a test may vary
    *,
    state: str = "failure",
    job_type: str = "presubmit",
    build_id: str = BUILD_ID,
    start: str | None = START,
    pending: str | None = PENDING,
    completion: str | None = COMPLETION,
    description: str = "Job failed.",
    revival_count: int = 0,
    refs: dict[str, Any] | None = None,
    extra: list[dict[str, Any]] | None = None,
    pod_name: str = UID,
) -> dict[str, Any]:
    """Return prowjob.json as crier's GCS reporter writes it (``None`` times are omitted)."""
    status: dict[str, Any] = {
        "startTime": start,
        "pendingTime": pending,
        "completionTime": completion,
        "state": state,
        "description": description,
        "url": URL,
        "pod_name": pod_name,
        "build_id": build_id,
        "prev_report_states": {"gcsk8sreporter": state, "pubsub-reporter": "pending"},
    }
    if revival_count:
        status["pod_revival_count"] = revival_count
    spec: dict[str, Any] = {
        "type": job_type,
        "agent": "kubernetes",
        "cluster": "build01",
        "namespace": "test-pods",
        "job": JOB,
        "refs": main_refs() if refs is None else refs,
        "extra_refs": [extra_refs()] if extra is None else extra,
        "report": True,
        "context": JOB,
        "rerun_command": f"/test {JOB}",
        "job_queue_name": "",
        "pod_spec": {"containers": [{"image": "gcr.io/k8s-staging-test-infra/kubekins-e2e"}]},
        "decoration_config": {"timeout": "2h0m0s", "grace_period": "15m0s"},
    }
    if spec["refs"] == {}:
        del spec["refs"]
    return {
        "kind": "ProwJob",
        "apiVersion": "prow.k8s.io/v1",
        "metadata": {
            "name": UID,
            "namespace": "default",
            "creationTimestamp": start,
            "labels": {
                "created-by-prow": "true",
                "prow.k8s.io/build-id": build_id,
                "prow.k8s.io/id": UID,
                "prow.k8s.io/job": JOB,
                "prow.k8s.io/refs.pull": "123",
                "prow.k8s.io/type": job_type,
            },
            "annotations": {
                "prow.k8s.io/pubsub.project": "k8s-prow",
                "prow.k8s.io/pubsub.topic": "t",
            },
        },
        "spec": spec,
        "status": {key: value for key, value in status.items() if value is not None},
    }


def started_doc() -> dict[str, Any]:
    """Return started.json as initupload writes it."""
    return {
        "timestamp": STARTED_EPOCH,
        "node": POD_NODE,
        "pull": "123",
        "repos": {
            "kubernetes/kubernetes": f"master:{MAIN_SHA},123:{PULL_SHA}",
            "kubernetes/test-infra": "master",
        },
        "repo-commit": MERGED_SHA,
        "metadata": {"uploader": "initupload"},
    }


def finished_doc(*, passed: bool = False) -> dict[str, Any]:
    """Return finished.json as the sidecar writes it."""
    return {
        "timestamp": FINISHED_EPOCH,
        "passed": passed,
        "result": "SUCCESS" if passed else "FAILURE",
        "revision": MERGED_SHA,
        "metadata": {"work-namespace": "test-pods"},
    }


def _terminated(start: str, end: str, exit_code: int, reason: str = "Completed") -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": start,
            "finishedAt": end,
            "containerID": "containerd://4f3c2a1b",
        }
    }


def _status(name: str, state: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "state": state,
        "lastState": {},
        "ready": False,
        "restartCount": restarts,
        "image": f"gcr.io/k8s-prow/{name}:v20200506",
        "imageID": f"gcr.io/k8s-prow/{name}@sha256:0123",
        "containerID": "containerd://4f3c2a1b",
    }


def _condition(kind: str, time: str) -> dict[str, Any]:
    return {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": time}


def podinfo_doc(
    *, test_exit: int = 1, test_reason: str = "Error", test_end: str = TEST_END
) -> dict[str, Any]:
    """Return podinfo.json as crier's Kubernetes GCS reporter writes it (Pod, Events, Node)."""
    init = [
        _status("clonerefs", _terminated(CLONEREFS_START, CLONEREFS_END, 0)),
        _status("initupload", _terminated(INITUPLOAD_START, INITUPLOAD_END, 0)),
        _status("place-entrypoint", _terminated(ENTRYPOINT_START, ENTRYPOINT_END, 0)),
    ]
    containers = [
        _status("test", _terminated(TEST_START, test_end, test_exit, test_reason), restarts=0),
        _status("sidecar", _terminated(TEST_START, SIDECAR_END, 0)),
    ]
    images = {
        name: f"gcr.io/k8s-prow/{name}:v20200506"
        for name in ("clonerefs", "initupload", "place-entrypoint", "sidecar")
    }
    images["test"] = "gcr.io/k8s-staging-test-infra/kubekins-e2e:v20200428-master"
    return {
        "pod": {
            "metadata": {
                "name": UID,
                "namespace": "test-pods",
                "creationTimestamp": POD_CREATED,
                "labels": {"prow.k8s.io/id": UID, "prow.k8s.io/build-id": BUILD_ID},
            },
            "spec": {
                "initContainers": [
                    {"name": name, "image": images[name]}
                    for name in ("clonerefs", "initupload", "place-entrypoint")
                ],
                "containers": [
                    {"name": "test", "image": images["test"], "command": ["/tools/entrypoint"]},
                    {"name": "sidecar", "image": images["sidecar"]},
                ],
                "nodeName": POD_NODE,
                "restartPolicy": "Never",
            },
            "status": {
                "phase": "Failed" if test_exit else "Succeeded",
                "conditions": [
                    _condition("PodScheduled", POD_SCHEDULED),
                    _condition("Initialized", POD_INITIALIZED),
                    {"type": "Ready", "status": "False", "lastTransitionTime": TEST_END},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": TEST_END},
                ],
                "hostIP": "10.128.0.12",
                "podIP": "10.4.7.21",
                "startTime": POD_CREATED,
                "initContainerStatuses": init,
                "containerStatuses": containers,
                "qosClass": "Burstable",
            },
        },
        "events": [
            {
                "metadata": {"name": f"{UID}.1", "creationTimestamp": POD_SCHEDULED},
                "reason": "Scheduled",
                "message": f"Successfully assigned test-pods/{UID} to {POD_NODE}",
                "type": "Normal",
                "firstTimestamp": None,
                "lastTimestamp": None,
                "eventTime": SCHEDULED_EVENT,
            },
            {
                "metadata": {"name": f"{UID}.2"},
                "reason": "Pulling",
                "message": 'Pulling image "gcr.io/k8s-prow/clonerefs:v20200506"',
                "type": "Normal",
                "firstTimestamp": "2020-05-07T00:52:22Z",
                "lastTimestamp": "2020-05-07T00:52:22Z",
                "count": 1,
            },
            {
                "metadata": {"name": f"{UID}.3"},
                "reason": "BackOff",
                "message": "Back-off pulling image",
                "type": "Warning",
                "firstTimestamp": "2020-05-07T00:52:40Z",
                "lastTimestamp": "2020-05-07T00:52:41Z",
                "count": 3,
            },
        ],
        "node": {"metadata": {"name": POD_NODE}, "status": {"capacity": {"cpu": "8"}}},
    }


MAIN_COMMANDS: tuple[tuple[str, int], ...] = (
    ("/usr/bin/git init", 3_000_000),
    ("/usr/bin/git config user.name ci-robot", 1_000_000),
    (
        (
            f"/usr/bin/git fetch https://x-access-token:{TOKEN}@github.com/kubernetes/"
            "kubernetes.git --tags --prune"
        ),
        6_500_000_000,
    ),
    (f"/usr/bin/git checkout {MAIN_SHA}", 900_000_000),
    (
        f"/usr/bin/git fetch https://{TOKEN}@github.com/kubernetes/kubernetes.git pull/123/head",
        1_200_000_000,
    ),
    (f"/usr/bin/git merge --no-ff {PULL_SHA}", 300_000_000),
)
"""kubernetes/kubernetes's clone: (command, duration ns), run one after another."""
EXTRA_COMMANDS: tuple[tuple[str, int], ...] = (
    ("/usr/bin/git init", 2_000_000),
    (
        f"/usr/bin/git fetch https://oauth2:{TOKEN}@github.com/kubernetes/test-infra.git master",
        3_000_000_000,
    ),
    ("/usr/bin/git checkout FETCH_HEAD", 500_000_000),
)
"""kubernetes/test-infra's clone."""


def clone_records_doc(*, failed: bool = False) -> list[dict[str, Any]]:
    """Return clone-records.json for the two repositories (``failed``: the main fetch failed)."""
    main_commands = [
        {"command": command, "output": f"{CLONE_OUTPUT} {index}", "error": "", "duration": ns}
        for index, (command, ns) in enumerate(MAIN_COMMANDS)
    ]
    if failed:
        main_commands = main_commands[:3]
        main_commands[2]["error"] = (
            f"fatal: unable to access 'https://x-access-token:{TOKEN}@github.com/kubernetes/"
            "kubernetes.git/': The requested URL returned error: 502"
        )
    extra = [
        {"command": command, "output": CLONE_OUTPUT, "error": "", "duration": ns}
        for command, ns in EXTRA_COMMANDS
    ]
    return [
        {
            "refs": main_refs(),
            "commands": main_commands,
            "failed": failed,
            "final_sha": "" if failed else MERGED_SHA,
            "duration": sum(ns for _, ns in MAIN_COMMANDS) + 40_000_000,
        },
        {
            "refs": extra_refs(),
            "commands": extra,
            "failed": False,
            "final_sha": TEST_INFRA_SHA,
            "duration": sum(ns for _, ns in EXTRA_COMMANDS) + 10_000_000,
        },
    ]


def encode(doc: object) -> bytes:
    """Serialize a document the way Go's encoding/json would (compact UTF-8)."""
    return json.dumps(doc, separators=(",", ":")).encode()


def crier_message(  # noqa: PLR0913 - one keyword per field a test may vary
    status: str,
    *,
    gcs_path: str = GCS_PATH,
    url: str = URL,
    job_name: str = JOB,
    job_type: str = "presubmit",
    refs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return crier's ReportMessage for this run in ``status`` (Go omits empty fields)."""
    doc: dict[str, Any] = {
        "project": "k8s-prow",
        "topic": "prowjobs",
        "runid": "ci",
        "status": status,
        "url": url,
        "gcs_path": gcs_path,
        "refs": [main_refs(), extra_refs()] if refs is None else refs,
        "job_type": job_type,
        "job_name": job_name,
        "message": "Job failed." if status == "failure" else "",
    }
    return {key: value for key, value in doc.items() if value not in ("", [])}


def traceable(
    status: str, *, job_type: str = "presubmit", refs: list[dict[str, Any]] | None = None
) -> Traceable:
    """Classify crier's message for this run; it must be traceable."""
    classified = classify(encode(crier_message(status, job_type=job_type, refs=refs)))
    assert isinstance(classified, Traceable), classified
    return classified


def artifacts(
    *,
    prowjob: dict[str, Any] | None = None,
    podinfo: dict[str, Any] | None = None,
    clone_records: list[dict[str, Any]] | None = None,
    started: dict[str, Any] | None = None,
    finished: dict[str, Any] | None = None,
) -> facts.JobArtifacts:
    """Parse the given documents through the real parsers (``None``: that file is absent)."""
    return facts.JobArtifacts(
        prowjob=facts.parse_prowjob(encode(prowjob)) if prowjob is not None else None,
        podinfo=facts.parse_podinfo(encode(podinfo)) if podinfo is not None else None,
        clone_records=(
            facts.parse_clone_records(encode(clone_records)) if clone_records is not None else None
        ),
        started=facts.parse_started(encode(started)) if started is not None else None,
        finished=facts.parse_finished(encode(finished)) if finished is not None else None,
    )


def full_artifacts(
    state: str = "failure",
    *,
    build_id: str = BUILD_ID,
    description: str = "Job failed.",
    revival_count: int = 0,
) -> facts.JobArtifacts:
    """Return every artifact of the terminal run, with prowjob.json saying ``state``."""
    passed = state == "success"
    return artifacts(
        prowjob=prowjob_doc(
            state=state, build_id=build_id, description=description, revival_count=revival_count
        ),
        podinfo=podinfo_doc(
            test_exit=0 if passed else 1, test_reason="Completed" if passed else "Error"
        ),
        clone_records=clone_records_doc(),
        started=started_doc(),
        finished=finished_doc(passed=passed),
    )


def terminal_spans(
    state: str = "failure",
    *,
    build_id: str = BUILD_ID,
    description: str = "Job failed.",
    revival_count: int = 0,
) -> list[SpanRecord]:
    """Return the spans of the terminal message in ``state``, every artifact present."""
    arts = full_artifacts(
        state, build_id=build_id, description=description, revival_count=revival_count
    )
    return job_spans(traceable(state), arts, PUBLISH)


def _no_podinfo() -> list[SpanRecord]:
    arts = artifacts(
        prowjob=prowjob_doc(),
        clone_records=clone_records_doc(),
        started=started_doc(),
        finished=finished_doc(),
    )
    return job_spans(traceable("failure"), arts, PUBLISH)


def _periodic_without_refs() -> list[SpanRecord]:
    arts = artifacts(
        prowjob=prowjob_doc(state="success", job_type="periodic", refs={}, extra=[]),
        podinfo=podinfo_doc(test_exit=0, test_reason="Completed"),
        started=started_doc(),
        finished=finished_doc(passed=True),
    )
    return job_spans(traceable("success", job_type="periodic", refs=[]), arts, PUBLISH)


def _batch() -> list[SpanRecord]:
    arts = artifacts(
        prowjob=prowjob_doc(state="success", job_type="batch", refs=main_refs(pulls=3)),
        podinfo=podinfo_doc(test_exit=0, test_reason="Completed"),
        clone_records=clone_records_doc(),
        started=started_doc(),
        finished=finished_doc(passed=True),
    )
    return job_spans(traceable("success", job_type="batch"), arts, PUBLISH)


def _clone_failure() -> list[SpanRecord]:
    arts = artifacts(
        prowjob=prowjob_doc(),
        podinfo=podinfo_doc(),
        clone_records=clone_records_doc(failed=True),
        started=started_doc(),
        finished=finished_doc(),
    )
    return job_spans(traceable("failure"), arts, PUBLISH)


def _container_end(reason: str) -> Callable[[], list[SpanRecord]]:
    def spans() -> list[SpanRecord]:
        arts = artifacts(
            prowjob=prowjob_doc(),
            podinfo=podinfo_doc(test_exit=137, test_reason=reason),
            clone_records=clone_records_doc(),
            started=started_doc(),
            finished=finished_doc(),
        )
        return job_spans(traceable("failure"), arts, PUBLISH)

    return spans


def _aborted_while_pending() -> list[SpanRecord]:
    arts = artifacts(prowjob=prowjob_doc(state="aborted", description="Job aborted."))
    return job_spans(traceable("aborted"), arts, PUBLISH)


def _without_prowjob() -> list[SpanRecord]:
    return job_spans(traceable("failure"), facts.JobArtifacts(), PUBLISH)


JUNIT_WITH_A_FAILURE = (
    b'<testsuites><testsuite name="pkg" time="3" timestamp="2020-05-07T00:53:00Z">'
    b'<testcase name="TestOK" classname="pkg" time="1"/>'
    b'<testcase name="TestBad" classname="pkg" time="2"><failure message="Failed">bad</failure>'
    b'</testcase><testcase name="TestSkip" time="0"><skipped/></testcase></testsuite></testsuites>'
)
"""A go-junit-report file: one passing, one failing and one skipped case."""


def _with_junit() -> list[SpanRecord]:
    junit = JunitResults(files=(parse_junit(JUNIT_WITH_A_FAILURE, "artifacts/junit.xml"),))
    return job_spans(traceable("failure"), replace(full_artifacts(), junit=junit), PUBLISH)


SCENARIOS: dict[str, Callable[[], list[SpanRecord]]] = {
    "pending": lambda: job_spans(
        traceable("pending"),
        artifacts(prowjob=prowjob_doc(state="pending", completion=None)),
        PENDING_PUBLISH,
    ),
    "failure": lambda: terminal_spans("failure"),
    "success": lambda: terminal_spans("success", description="Job succeeded."),
    "aborted": lambda: terminal_spans("aborted", description="Job aborted."),
    "error": lambda: terminal_spans("error", description="Pod got deleted unexpectedly"),
    "error timeout": lambda: terminal_spans(
        "error", description="Pod pending timeout: the pod was not scheduled"
    ),
    "revived": lambda: terminal_spans("failure", revival_count=2),
    "tot build ID": lambda: terminal_spans("failure", build_id=TOT_BUILD_ID),
    "missing podinfo": _no_podinfo,
    "periodic without refs": _periodic_without_refs,
    "batch": _batch,
    "clone failure": _clone_failure,
    "oom killed": _container_end("OOMKilled"),
    "deadline exceeded": _container_end("DeadlineExceeded"),
    "aborted while pending": _aborted_while_pending,
    "no prowjob.json": _without_prowjob,
    "junit": _with_junit,
}
"""Every path through the span builder: name → the spans it emits."""
