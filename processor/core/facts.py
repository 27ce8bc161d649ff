"""Typed facts decoded from a job's artifact files (reference sections 2 and 3).

Each ``parse_*`` function takes a file's bytes and returns a frozen dataclass holding only what the
span builder uses; everything else (logs, clone command output, the Node object, ...) is dropped
here, at the border, so it can never leak into a span. Malformed files raise :class:`ShapeError`
or ``ValueError`` naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from processor.core.jsonshape import (
    JsonObject,
    ShapeError,
    get_bool,
    get_int,
    get_list,
    get_number,
    get_object,
    get_str,
    get_time,
    require_object,
)
from processor.core.junit import JunitResults
from processor.core.refs import Refs, parse_refs

PROWJOB = "prowjob.json"
STARTED = "started.json"
FINISHED = "finished.json"
PODINFO = "podinfo.json"
CLONE_RECORDS = "clone-records.json"
ARTIFACT_FILES = (PROWJOB, STARTED, FINISHED, PODINFO, CLONE_RECORDS)
KUBERNETES_AGENT = "kubernetes"
CRIER_UPLOADER = "crier"
"""``metadata.uploader`` of the started.json/finished.json crier's GCS reporter writes when the
pod's own (initupload's, the sidecar's) is missing: their timestamps are the ProwJob's startTime
and completionTime, not the test container's (pkg/crier/reporters/gcs/reporter.go)."""


@dataclass(frozen=True, slots=True)
class ProwJob:
    """What prowjob.json says about a run."""

    uid: str
    job: str
    job_type: str
    state: str
    agent: str = ""
    cluster: str = ""
    namespace: str = ""
    context: str = ""
    refs: tuple[Refs, ...] = ()
    start: datetime | None = None
    pending: datetime | None = None
    completion: datetime | None = None
    description: str = ""
    url: str = ""
    pod_name: str = ""
    build_id: str = ""
    revival_count: int = 0
    job_queue_name: str = ""
    labels: Mapping[str, str] | None = None
    test_image: str = ""
    """``spec.pod_spec.containers[0].image``: the test container's image (decorated jobs name
    that container ``test``); ``""`` for agents without a pod spec (tekton-pipeline, jenkins)."""

    @property
    def runs_in_a_pod(self) -> bool:
        """True for the ``kubernetes`` agent (the default): plank runs the job as one pod.

        Other agents (``tekton-pipeline``, ``jenkins``) have no pod, so no pod spans exist.
        """
        return self.agent in {"", KUBERNETES_AGENT}


@dataclass(frozen=True, slots=True)
class Started:
    """started.json, written by initupload when the pod's init containers are done."""

    timestamp: datetime | None
    node: str = ""
    repo_commit: str = ""
    uploader: str = ""

    @property
    def by_crier(self) -> bool:
        """True when crier wrote it: its timestamp is the ProwJob's startTime, not the pod's."""
        return self.uploader == CRIER_UPLOADER


@dataclass(frozen=True, slots=True)
class Finished:
    """finished.json, written by the sidecar (or crier) when the test container ended."""

    timestamp: datetime | None
    passed: bool | None
    result: str = ""
    revision: str = ""
    uploader: str = ""

    @property
    def by_crier(self) -> bool:
        """True when crier wrote it: its timestamp is completionTime, ``passed`` the job state's."""
        return self.uploader == CRIER_UPLOADER


@dataclass(frozen=True, slots=True)
class ContainerRun:
    """One container's terminated state from the Pod status."""

    name: str
    started: datetime | None
    finished: datetime | None
    exit_code: int | None
    reason: str = ""
    restart_count: int = 0
    image: str = ""
    waiting_reason: str = ""
    """``state.waiting.reason`` of a container that had not started (``ImagePullBackOff``)."""


@dataclass(frozen=True, slots=True)
class PodEvent:
    """A Kubernetes Event about the pod."""

    reason: str
    message: str
    time: datetime | None
    kind: str = "Normal"
    count: int = 1


@dataclass(frozen=True, slots=True)
class PodInfo:
    """The parts of podinfo.json's Pod and Events the trace uses."""

    name: str = ""
    created: datetime | None = None
    scheduled: datetime | None = None
    """The PodScheduled condition's time (seconds), or the Scheduled event's (microseconds)."""
    initialized: datetime | None = None
    ready: datetime | None = None
    node: str = ""
    phase: str = ""
    init_containers: tuple[ContainerRun, ...] = ()
    containers: tuple[ContainerRun, ...] = ()
    events: tuple[PodEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class CloneCommand:
    """One git command clonerefs ran; its output is deliberately not kept."""

    command: str
    error: str
    duration_ns: int


@dataclass(frozen=True, slots=True)
class CloneRecord:
    """The clone of one repository by clonerefs."""

    refs: Refs
    commands: tuple[CloneCommand, ...]
    failed: bool
    final_sha: str
    duration_ns: int
    timed: bool = True
    """False for records written before clonerefs recorded durations (before Aug 2022)."""


@dataclass(frozen=True, slots=True)
class JobArtifacts:
    """Everything read from a run's artifact folder; ``None`` where a file was absent."""

    prowjob: ProwJob | None = None
    started: Started | None = None
    finished: Finished | None = None
    podinfo: PodInfo | None = None
    clone_records: tuple[CloneRecord, ...] | None = None
    junit: JunitResults | None = None
    """The JUnit results found under ``artifacts/``; ``None`` when test spans are off."""


def _decode(data: bytes, name: str) -> JsonObject:
    try:
        return require_object(json.loads(data), name)
    except RecursionError:
        raise ValueError(f"{name}: JSON nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{name}: not JSON ({error.msg} at byte {error.pos})") from None


def parse_prowjob(data: bytes) -> ProwJob:
    """Decode prowjob.json."""
    doc = _decode(data, PROWJOB)
    metadata = get_object(doc, "metadata", PROWJOB)
    spec = get_object(doc, "spec", PROWJOB)
    status = get_object(doc, "status", PROWJOB)
    labels = get_object(metadata, "labels", "metadata")
    refs: list[Refs] = []
    main_refs = spec.get("refs")
    if main_refs is not None:
        refs.append(parse_refs(main_refs, "spec.refs"))
    refs.extend(
        parse_refs(item, f"spec.extra_refs[{index}]")
        for index, item in enumerate(get_list(spec, "extra_refs", "spec"))
    )
    return ProwJob(
        uid=get_str(metadata, "name", "metadata"),
        job=get_str(spec, "job", "spec"),
        job_type=get_str(spec, "type", "spec"),
        state=get_str(status, "state", "status"),
        agent=get_str(spec, "agent", "spec"),
        cluster=get_str(spec, "cluster", "spec"),
        namespace=get_str(spec, "namespace", "spec"),
        context=get_str(spec, "context", "spec"),
        refs=tuple(refs),
        start=get_time(status, "startTime", "status"),
        pending=get_time(status, "pendingTime", "status"),
        completion=get_time(status, "completionTime", "status"),
        description=get_str(status, "description", "status"),
        url=get_str(status, "url", "status"),
        pod_name=get_str(status, "pod_name", "status"),
        build_id=get_str(status, "build_id", "status"),
        revival_count=get_int(status, "pod_revival_count", "status"),
        job_queue_name=get_str(spec, "job_queue_name", "spec"),
        labels={str(key): str(value) for key, value in labels.items() if isinstance(value, str)},
        test_image=_first_image(get_object(spec, "pod_spec", "spec")),
    )


def _first_image(pod_spec: JsonObject) -> str:
    containers = get_list(pod_spec, "containers", "spec.pod_spec")
    if not containers:
        return ""
    first = require_object(containers[0], "spec.pod_spec.containers[0]")
    return get_str(first, "image", "spec.pod_spec.containers[0]")


def _uploader(doc: JsonObject, name: str) -> str:
    return get_str(get_object(doc, "metadata", name), "uploader", f"{name}.metadata")


def _epoch(obj: JsonObject, key: str, path: str) -> datetime | None:
    seconds = get_number(obj, key, path)
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ShapeError(f"{path}.{key}", "epoch seconds", seconds) from None


def parse_started(data: bytes) -> Started:
    """Decode started.json."""
    doc = _decode(data, STARTED)
    return Started(
        timestamp=_epoch(doc, "timestamp", STARTED),
        node=get_str(doc, "node", STARTED),
        repo_commit=get_str(doc, "repo-commit", STARTED),
        uploader=_uploader(doc, STARTED),
    )


def parse_finished(data: bytes) -> Finished:
    """Decode finished.json; ``passed`` is ``None`` when the file does not say."""
    doc = _decode(data, FINISHED)
    return Finished(
        timestamp=_epoch(doc, "timestamp", FINISHED),
        passed=get_bool(doc, "passed", FINISHED) if doc.get("passed") is not None else None,
        result=get_str(doc, "result", FINISHED),
        revision=get_str(doc, "revision", FINISHED),
        uploader=_uploader(doc, FINISHED),
    )


def _container_runs(
    status: JsonObject, key: str, images: Mapping[str, str]
) -> tuple[ContainerRun, ...]:
    runs = []
    for index, item in enumerate(get_list(status, key, "pod.status")):
        path = f"pod.status.{key}[{index}]"
        entry = require_object(item, path)
        name = get_str(entry, "name", path)
        state = get_object(entry, "state", path)
        terminated = get_object(state, "terminated", f"{path}.state")
        running = get_object(state, "running", f"{path}.state")
        waiting = get_object(state, "waiting", f"{path}.state")
        exit_code = terminated.get("exitCode")
        runs.append(
            ContainerRun(
                name=name,
                started=get_time(terminated, "startedAt", f"{path}.state.terminated")
                or get_time(running, "startedAt", f"{path}.state.running"),
                finished=get_time(terminated, "finishedAt", f"{path}.state.terminated"),
                exit_code=get_int(terminated, "exitCode", f"{path}.state.terminated")
                if exit_code is not None
                else None,
                reason=get_str(terminated, "reason", f"{path}.state.terminated"),
                restart_count=get_int(entry, "restartCount", path),
                image=images.get(name, ""),
                waiting_reason=get_str(waiting, "reason", f"{path}.state.waiting"),
            )
        )
    return tuple(runs)


def _images(spec: JsonObject, key: str) -> dict[str, str]:
    images: dict[str, str] = {}
    for index, item in enumerate(get_list(spec, key, "pod.spec")):
        entry = require_object(item, f"pod.spec.{key}[{index}]")
        path = f"pod.spec.{key}[{index}]"
        images[get_str(entry, "name", path)] = get_str(entry, "image", path)
    return images


def _event(item: Any, path: str) -> PodEvent:  # noqa: ANN401 - raw JSON, checked below
    entry = require_object(item, path)
    return PodEvent(
        reason=get_str(entry, "reason", path),
        message=get_str(entry, "message", path),
        time=get_time(entry, "eventTime", path)
        or get_time(entry, "firstTimestamp", path)
        or get_time(entry, "lastTimestamp", path)
        or get_time(get_object(entry, "metadata", path), "creationTimestamp", f"{path}.metadata"),
        kind=get_str(entry, "type", path) or "Normal",
        count=get_int(entry, "count", path) or 1,
    )


def _scheduled(condition: datetime | None, events: tuple[PodEvent, ...]) -> datetime | None:
    """Prefer the scheduler's ``Scheduled`` event (a MicroTime) within the condition's second.

    The PodScheduled condition's lastTransitionTime is truncated to the second; the event the
    scheduler records at the same moment carries microseconds.
    """
    if condition is None:
        return None
    for event in events:
        if (
            event.reason == "Scheduled"
            and event.time
            and condition <= event.time < condition + timedelta(seconds=1)
        ):
            return event.time
    return condition


def parse_podinfo(data: bytes) -> PodInfo:
    """Decode podinfo.json; a missing ``pod`` yields a PodInfo with only events."""
    doc = _decode(data, PODINFO)
    events = tuple(
        _event(item, f"events[{index}]") for index, item in enumerate(get_list(doc, "events", ""))
    )
    pod = get_object(doc, "pod", "")
    if not pod:
        return PodInfo(events=events)
    metadata = get_object(pod, "metadata", "pod")
    spec = get_object(pod, "spec", "pod")
    status = get_object(pod, "status", "pod")
    conditions: dict[str, datetime | None] = {}
    for index, item in enumerate(get_list(status, "conditions", "pod.status")):
        path = f"pod.status.conditions[{index}]"
        entry = require_object(item, path)
        if get_str(entry, "status", path) == "True":
            conditions[get_str(entry, "type", path)] = get_time(entry, "lastTransitionTime", path)
    return PodInfo(
        name=get_str(metadata, "name", "pod.metadata"),
        created=get_time(metadata, "creationTimestamp", "pod.metadata"),
        scheduled=_scheduled(conditions.get("PodScheduled"), events),
        initialized=conditions.get("Initialized"),
        ready=conditions.get("Ready"),
        node=get_str(spec, "nodeName", "pod.spec"),
        phase=get_str(status, "phase", "pod.status"),
        init_containers=_container_runs(
            status, "initContainerStatuses", _images(spec, "initContainers")
        ),
        containers=_container_runs(status, "containerStatuses", _images(spec, "containers")),
        events=events,
    )


def parse_clone_records(data: bytes) -> tuple[CloneRecord, ...]:
    """Decode clone-records.json (durations are Go ``time.Duration``: integer nanoseconds)."""
    try:
        doc = json.loads(data)
    except RecursionError:
        raise ValueError(f"{CLONE_RECORDS}: JSON nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{CLONE_RECORDS}: not JSON ({error.msg} at byte {error.pos})") from None
    if doc is None:
        return ()
    if not isinstance(doc, list):
        raise ShapeError(CLONE_RECORDS, "an array", doc)
    records = []
    for index, item in enumerate(doc):
        path = f"{CLONE_RECORDS}[{index}]"
        entry = require_object(item, path)
        commands = []
        for cindex, citem in enumerate(get_list(entry, "commands", path)):
            cpath = f"{path}.commands[{cindex}]"
            command = require_object(citem, cpath)
            commands.append(
                CloneCommand(
                    command=get_str(command, "command", cpath),
                    error=get_str(command, "error", cpath),
                    duration_ns=max(0, get_int(command, "duration", cpath)),
                )
            )
        timed = "duration" in entry or any(
            isinstance(command, dict) and "duration" in command
            for command in get_list(entry, "commands", path)
        )
        records.append(
            CloneRecord(
                refs=parse_refs(get_object(entry, "refs", path), f"{path}.refs"),
                commands=tuple(commands),
                failed=get_bool(entry, "failed", path),
                final_sha=get_str(entry, "final_sha", path),
                duration_ns=max(0, get_int(entry, "duration", path)),
                timed=timed,
            )
        )
    return tuple(records)
