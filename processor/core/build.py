"""Build a job's spans from its crier message and artifacts: a pure function of its inputs.

What is emitted depends on the message's state (the *incremental* contract): ``pending`` yields the
queue span alone, as soon as the job runs; a terminal state yields the root span and the whole tree.
Every span's content depends only on facts that no longer change once written, so the queue span
from the ``pending`` message and the one re-emitted with the terminal message are identical, and a
duplicate or replayed message reproduces the same spans byte for byte.

Tree (path → span name)::

    ""                                  RUN <job>          SERVER, creation → completion
    queue                               queue              creation → pending
    pod                                 pod                pod creation → last container end
    pod/schedule                        pod/schedule       creation → PodScheduled
    pod/init/<name>                     init/<name>        each init container
    pod/init/clonerefs/clone/<o>/<r>    clone/<o>/<r>      one per repository (concurrent)
    pod/init/clonerefs/clone/<o>/<r>/<i>  git <verb>       one per git command (sequential)
    pod/container/<name>                container/<name>   each container; job containers are tasks
    <container>/junit/<file>/<suite>/<case>                one per JUnit suite and case that ran
                                                           (:mod:`processor.core.testspans`)

Timings, best source first: a snowflake build ID gives the pending instant to the millisecond;
prowjob.json and the Pod give seconds; the publish time is the last resort, and only for the
root's end (the queue never uses it: it differs between live, replay and backfill). Without
podinfo.json the pod's inner spans are estimated from the pod's own started.json/finished.json
(never crier's stand-ins) and marked as such. Jobs of agents other than ``kubernetes`` have no pod.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from processor.core import semconv as sc
from processor.core.facts import (
    CloneRecord,
    ContainerRun,
    Finished,
    JobArtifacts,
    PodInfo,
    ProwJob,
)
from processor.core.ids import snowflake_time
from processor.core.labels import KEEP_ALL_LABELS, LabelFilter
from processor.core.message import JobState, Traceable
from processor.core.redact import scrub
from processor.core.refs import Pull, Refs
from processor.core.spans import AttributeValue, SpanEvent, SpanKind, SpanRecord, fit_inside_parents
from processor.core.testspans import add_test_spans

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SNOWFLAKE_LEAD = timedelta(seconds=10)
"""How far before prowjob.json's (truncated) pendingTime a build ID may have been vended."""
_SNOWFLAKE_LAG = timedelta(seconds=1)
"""pendingTime is truncated to the second, so the true instant can be up to 1 s after it."""
SIDECAR = "sidecar"
CLONEREFS = "clonerefs"


def to_ns(instant: datetime) -> int:
    """Return nanoseconds since the Unix epoch, exactly (no float rounding)."""
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@dataclass(frozen=True, slots=True)
class _Job:
    """The facts about one run, merged from the message and prowjob.json."""

    name: str
    job_type: str
    build_id: str
    url: str
    gcs_path: str
    refs: tuple[Refs, ...]
    prowjob: ProwJob | None


def job_spans(
    traceable: Traceable,
    artifacts: JobArtifacts,
    publish_time: datetime,
    labels: LabelFilter = KEEP_ALL_LABELS,
) -> list[SpanRecord]:
    """Return the spans the message's state calls for, parents before children, fitted.

    Every input that feeds an attribute is normalised first (:func:`folder_url`), so the live
    stream, a replay, backfill's rebuilt message and a reprocessing give byte-identical spans.
    """
    message = traceable.message
    prowjob = artifacts.prowjob
    job = _Job(
        name=(prowjob.job if prowjob and prowjob.job else message.job_name),
        job_type=(prowjob.job_type if prowjob and prowjob.job_type else message.job_type),
        build_id=(prowjob.build_id if prowjob and prowjob.build_id else traceable.build_id),
        url=folder_url(prowjob.url if prowjob and prowjob.url else message.url),
        gcs_path=folder_url(message.gcs_path),
        refs=(prowjob.refs if prowjob else message.refs),
        prowjob=prowjob,
    )
    # Only artifact facts date the queue's end: a publish time differs between the live stream,
    # a replay and a backfill, and the span must not.
    pending = _pending_instant(job)
    if traceable.state is JobState.PENDING:
        queue = _queue_span(job, pending)
        return [queue] if queue else []
    state = JobState(prowjob.state) if prowjob and _is_terminal(prowjob.state) else traceable.state
    root = _root_span(job, state, artifacts, pending, publish_time)
    if prowjob and prowjob.labels:
        root = replace(root, attributes={**root.attributes, **labels.attributes(prowjob.labels)})
    records = [root]
    # A revived job's later pods get new build IDs, so this message's build ID no longer dates the
    # first pending instant; the queue span already went out with the pending message.
    revived = bool(prowjob and prowjob.revival_count)
    queue = None if revived else _queue_span(job, pending)
    if queue:
        records.append(queue)
    records.extend(_pod_spans(job, state, artifacts, pending, root))
    return fit_inside_parents(add_test_spans(records, artifacts.junit))


def _is_terminal(state: str) -> bool:
    try:
        return JobState(state).is_terminal
    except ValueError:
        return False


def folder_url(url: str) -> str:
    """Return ``url`` without trailing slashes, so every path to a job names its folder alike.

    Crier's ``gcs_path`` ends in ``/`` when the job URL template does (knative's does); backfill
    derives it from the folder, without one.
    """
    stripped = url.rstrip("/")
    return stripped if "://" not in url or stripped.partition("://")[2] else url


def _pending_instant(job: _Job) -> tuple[datetime, str] | None:
    """Return when the job started running and the source that said so, or ``None`` if unknown.

    A snowflake build ID is vended as plank creates the pod, so it dates the pending instant to the
    millisecond; it is trusted when it agrees with pendingTime, or, for ProwJobs written before
    Prow recorded pendingTime (Oct 2019), when it falls inside the run. A ``tot`` build ID and no
    pendingTime leave the instant unknown: no queue span is better than an invented one.
    """
    decoded = snowflake_time(job.build_id)
    prowjob = job.prowjob
    recorded = prowjob.pending if prowjob else None
    if recorded:
        if decoded and recorded - _SNOWFLAKE_LEAD <= decoded <= recorded + _SNOWFLAKE_LAG:
            return decoded, "snowflake"
        return recorded, "prowjob"
    if decoded is None:
        return None
    if prowjob and prowjob.start and decoded < prowjob.start - _SNOWFLAKE_LEAD:
        return None
    if prowjob and prowjob.completion and decoded > prowjob.completion + _SNOWFLAKE_LAG:
        return None
    return decoded, "snowflake"


def _run_attributes(job: _Job) -> dict[str, AttributeValue]:
    """Attributes that identify the run; shared by the root and the queue span."""
    attributes: dict[str, AttributeValue] = {
        sc.CICD_PIPELINE_NAME: job.name,
        sc.CICD_PIPELINE_RUN_ID: job.build_id,
        sc.PROW_BUILD_ID: job.build_id,
        sc.PROW_ARTIFACTS_URL: job.gcs_path,
    }
    if job.url:
        attributes[sc.CICD_PIPELINE_RUN_URL_FULL] = job.url
    if job.job_type:
        attributes[sc.PROW_JOB_TYPE] = job.job_type
    if job.prowjob:
        attributes[sc.PROW_JOB_ID] = job.prowjob.uid
    return attributes


def _queue_span(job: _Job, pending: tuple[datetime, str] | None) -> SpanRecord | None:
    start = job.prowjob.start if job.prowjob else None
    if start is None or pending is None:
        return None
    attributes = _run_attributes(job)
    attributes[sc.CICD_PIPELINE_RUN_STATE] = sc.RUN_STATE_PENDING
    attributes[sc.PROW_TIMING_SOURCE] = pending[1]
    if job.prowjob and job.prowjob.job_queue_name:
        attributes[sc.PROW_JOB_QUEUE_NAME] = job.prowjob.job_queue_name
    return SpanRecord(
        path="queue",
        parent="",
        name="queue",
        start_ns=to_ns(start),
        end_ns=to_ns(max(start, pending[0])),
        attributes=attributes,
    )


def _root_span(
    job: _Job,
    state: JobState,
    artifacts: JobArtifacts,
    pending: tuple[datetime, str] | None,
    publish_time: datetime,
) -> SpanRecord:
    prowjob = job.prowjob
    start, start_source = _run_start(job, artifacts, pending)
    end, end_source = _run_end(job, artifacts)
    if start is None:
        start, start_source = publish_time, "publish_time"
    if end is None or end < start:
        end, end_source = max(start, publish_time), "publish_time"
    if start_source == end_source == "prowjob":
        source = "prowjob"
    elif "publish_time" in {start_source, end_source}:
        source = "publish_time"
    else:
        source = "artifacts"
    if pending:
        # completionTime is truncated to the second; the snowflake pending instant is not. Keep
        # the queue span (which ends there) inside the root, as the pending message emitted it.
        end = max(end, pending[0])
    result, error_type = pipeline_result(state, artifacts)
    attributes = _run_attributes(job)
    attributes.update(_vcs_attributes(job.refs))
    attributes[sc.CICD_PIPELINE_ACTION_NAME] = sc.ACTION_RUN
    attributes[sc.CICD_PIPELINE_RESULT] = result
    attributes[sc.PROW_JOB_STATE] = str(state)
    attributes[sc.PROW_TIMING_SOURCE] = source
    if source != "prowjob":
        attributes[sc.PROW_TIMING_ESTIMATED] = True
    attributes.update(_revision_attributes(job.refs, artifacts))
    if error_type:
        attributes[sc.ERROR_TYPE] = error_type
    description = prowjob.description if prowjob else ""
    if prowjob:
        optional = {
            sc.PROW_CLUSTER: prowjob.cluster,
            sc.PROW_NAMESPACE: prowjob.namespace,
            sc.PROW_POD_NAME: prowjob.pod_name,
            sc.PROW_JOB_AGENT: prowjob.agent,
            sc.PROW_JOB_CONTEXT: prowjob.context,
            sc.PROW_JOB_DESCRIPTION: scrub(description),
        }
        attributes.update({key: value for key, value in optional.items() if value})
        attributes[sc.PROW_POD_REVIVAL_COUNT] = prowjob.revival_count
    failed = result in {sc.RESULT_FAILURE, sc.RESULT_ERROR, sc.RESULT_TIMEOUT}
    return SpanRecord(
        path="",
        parent=None,
        name=f"{sc.ACTION_RUN} {job.name}" if job.name else sc.ACTION_RUN,
        start_ns=to_ns(start),
        end_ns=to_ns(max(start, end)),
        kind=SpanKind.SERVER,
        attributes=attributes,
        error=scrub(description or f"job {state}", 256) if failed else None,
    )


def _run_start(
    job: _Job, artifacts: JobArtifacts, pending: tuple[datetime, str] | None
) -> tuple[datetime | None, str]:
    """Return the run's start: creation, else the pending instant, else started.json."""
    if job.prowjob and job.prowjob.start:
        return job.prowjob.start, "prowjob"
    if pending:
        return pending[0], "artifacts"
    started = artifacts.started.timestamp if artifacts.started else None
    return started, "artifacts"


def _run_end(job: _Job, artifacts: JobArtifacts) -> tuple[datetime | None, str]:
    """Return the run's end: completionTime, else finished.json, else the last container's end."""
    if job.prowjob and job.prowjob.completion:
        return job.prowjob.completion, "prowjob"
    finished = artifacts.finished.timestamp if artifacts.finished else None
    if finished:
        return finished, "artifacts"
    podinfo = artifacts.podinfo
    ends = (
        [
            run.finished
            for run in (*podinfo.init_containers, *podinfo.containers)
            if podinfo and run.finished
        ]
        if podinfo
        else []
    )
    return (max(ends), "artifacts") if ends else (None, "artifacts")


def pod_utils_started(artifacts: JobArtifacts) -> datetime | None:
    """Return when initupload wrote started.json (test starting); not crier's copy."""
    started = artifacts.started
    return started.timestamp if started and not started.by_crier else None


def pod_utils_finished(artifacts: JobArtifacts) -> Finished | None:
    """Return the sidecar's finished.json (the test container's end); not crier's stand-in."""
    finished = artifacts.finished
    return finished if finished and not finished.by_crier else None


PLANK_POD_TIMEOUTS = {
    "pod pending timeout.": sc.ERROR_POD_PENDING_TIMEOUT,
    "pod scheduling timeout.": sc.ERROR_POD_SCHEDULING_TIMEOUT,
}
"""Plank's descriptions of a pod that never got to run (pkg/plank/reconciler.go). The job's
state is ``error``: its code never ran, Prow counts it an infrastructure error, so the result is
``error`` (not ``timeout``, which would say the job itself ran too long)."""


def pipeline_result(state: JobState, artifacts: JobArtifacts) -> tuple[str, str | None]:
    """Map a terminal ProwJob state to ``cicd.pipeline.result`` and ``error.type``."""
    if state is JobState.SUCCESS:
        return sc.RESULT_SUCCESS, None
    if state is JobState.ABORTED:
        return sc.RESULT_CANCELLATION, None
    containers = artifacts.podinfo.containers if artifacts.podinfo else ()
    if state is JobState.ERROR:
        description = artifacts.prowjob.description.strip().lower() if artifacts.prowjob else ""
        if description in PLANK_POD_TIMEOUTS:
            return sc.RESULT_ERROR, PLANK_POD_TIMEOUTS[description]
        if "timeout" in description or "timed out" in description:
            return sc.RESULT_TIMEOUT, sc.ERROR_TIMEOUT
        return sc.RESULT_ERROR, sc.ERROR_PROW
    if any(record.failed for record in artifacts.clone_records or ()):
        return sc.RESULT_FAILURE, sc.ERROR_CLONE_FAILED
    job_containers = [run for run in containers if run.name != SIDECAR]
    if any(run.reason == "OOMKilled" for run in job_containers):
        return sc.RESULT_FAILURE, sc.ERROR_OOM_KILLED
    if any(run.reason == "DeadlineExceeded" for run in job_containers):
        return sc.RESULT_TIMEOUT, sc.ERROR_TIMEOUT
    finished = pod_utils_finished(artifacts)
    if any(run.exit_code for run in job_containers) or (finished and finished.passed is False):
        return sc.RESULT_FAILURE, sc.ERROR_TEST_FAILED
    return sc.RESULT_FAILURE, sc.ERROR_OTHER


def _vcs_attributes(refs: Sequence[Refs]) -> dict[str, AttributeValue]:
    if not refs:
        return {}
    main = refs[0]
    attributes: dict[str, AttributeValue] = {
        sc.VCS_REPOSITORY_NAME: main.repo,
        sc.VCS_OWNER_NAME: main.org,
    }
    link = scrub(main.repo_link) if main.repo_link else ""
    if link:
        attributes[sc.VCS_REPOSITORY_URL_FULL] = link
        host = link.split("://", 1)[-1].split("/", 1)[0].lower()
        if host in sc.VCS_PROVIDERS:
            attributes[sc.VCS_PROVIDER_NAME] = sc.VCS_PROVIDERS[host]
    if main.base_ref:
        attributes[sc.VCS_REF_BASE_NAME] = main.base_ref
        attributes[sc.VCS_REF_BASE_TYPE] = sc.REF_TYPE_BRANCH
    if main.base_sha:
        attributes[sc.VCS_REF_BASE_REVISION] = main.base_sha
    if main.pulls:
        attributes[sc.PROW_PULLS] = tuple(pull.number for pull in main.pulls)
    if len(main.pulls) == 1:
        attributes.update(_change_attributes(main.pulls[0]))
    elif not main.pulls and main.base_ref:
        # Not a change: the head is the branch the job built (periodics and postsubmits).
        attributes[sc.VCS_REF_HEAD_NAME] = main.base_ref
        attributes[sc.VCS_REF_HEAD_TYPE] = sc.REF_TYPE_BRANCH
    if len(refs) > 1:
        attributes[sc.PROW_EXTRA_REPOS] = tuple(
            f"{extra.full_name}@{extra.base_ref}" if extra.base_ref else extra.full_name
            for extra in refs[1:]
        )
    return attributes


def _change_attributes(pull: Pull) -> dict[str, AttributeValue]:
    """Describe the one pull request a presubmit tests (a batch has several: none is *the* one)."""
    attributes: dict[str, AttributeValue] = {sc.VCS_CHANGE_ID: str(pull.number)}
    if pull.title:
        attributes[sc.VCS_CHANGE_TITLE] = scrub(pull.title, 256)
    if pull.head_ref:
        attributes[sc.VCS_REF_HEAD_NAME] = pull.head_ref
        attributes[sc.VCS_REF_HEAD_TYPE] = sc.REF_TYPE_BRANCH
    return attributes


def is_revision(text: str) -> bool:
    """Tell whether ``text`` is a full Git commit hash (SHA-1 or SHA-256), not a branch."""
    return len(text) in {40, 64} and all(char in "0123456789abcdef" for char in text.lower())


def head_revision(refs: Refs, final_sha: str = "") -> str:
    """``vcs.ref.head.revision`` of one repository, per the VCS conventions: the commit at the head.

    For a change (one pull request) that is the pull's own commit; clonerefs' ``final_sha`` is a
    local merge commit of it onto the base, which exists in no repository. For a branch build
    (periodic, postsubmit) it is the commit clonerefs resolved, else the ``base_sha`` Prow pinned.
    A batch (several pulls) has no single head.
    """
    if len(refs.pulls) == 1:
        return refs.pulls[0].sha
    if refs.pulls:
        return ""
    return final_sha if is_revision(final_sha) else refs.base_sha


def _revision_attributes(
    refs: Sequence[Refs], artifacts: JobArtifacts
) -> dict[str, AttributeValue]:
    """Return the root's head revision, from the refs, the main clone record, or started.json."""
    if not refs:
        return {}
    main = refs[0]
    final_sha = next(
        (
            record.final_sha
            for record in artifacts.clone_records or ()
            if record.refs.org == main.org and record.refs.repo == main.repo
        ),
        "",
    )
    if not final_sha and artifacts.started and is_revision(artifacts.started.repo_commit):
        # initupload (and crier, from the clone records) record the resolved commit there.
        final_sha = artifacts.started.repo_commit
    revision = head_revision(main, final_sha)
    return {sc.VCS_REF_HEAD_REVISION: revision} if revision else {}


def _pod_spans(
    job: _Job,
    state: JobState,
    artifacts: JobArtifacts,
    pending: tuple[datetime, str] | None,
    root: SpanRecord,
) -> list[SpanRecord]:
    """Return the pod's spans, from what the artifacts show; none for agents without a pod."""
    prowjob = job.prowjob
    if prowjob and not prowjob.runs_in_a_pod:
        return []
    podinfo = artifacts.podinfo
    if podinfo and podinfo.created:
        return _observed_pod(job, state, artifacts, podinfo, root)
    ran = bool(
        (podinfo and podinfo.containers)
        or pod_utils_started(artifacts)
        or pod_utils_finished(artifacts)
        or (prowjob and prowjob.pod_name)
    )
    if not ran:
        return []
    return _estimated_pod(job, state, artifacts, pending, root)


def _pod_record(  # noqa: PLR0913 - the facts one pod span is made of
    job: _Job,
    state: JobState,
    start_ns: int,
    end_ns: int,
    *,
    podinfo: PodInfo | None,
    estimated: bool,
) -> SpanRecord:
    attributes: dict[str, AttributeValue] = {sc.CICD_PIPELINE_RUN_STATE: sc.RUN_STATE_EXECUTING}
    pod_name = (podinfo.name if podinfo else "") or (job.prowjob.pod_name if job.prowjob else "")
    if pod_name:
        attributes[sc.PROW_POD_NAME] = pod_name
    if podinfo and podinfo.node:
        attributes[sc.PROW_POD_NODE] = podinfo.node
        attributes[sc.CICD_WORKER_NAME] = podinfo.node
    if podinfo and podinfo.phase:
        attributes[sc.PROW_POD_PHASE] = podinfo.phase
    waiting = _waiting(podinfo)
    if waiting:
        attributes[sc.PROW_POD_WAITING] = waiting
    if job.prowjob:
        attributes[sc.PROW_POD_REVIVAL_COUNT] = job.prowjob.revival_count
    if estimated:
        attributes[sc.PROW_TIMING_ESTIMATED] = True
    # Sorted by time alone: events of one second keep the order podinfo.json lists them in.
    dated = sorted(
        ((event.time, event) for event in (podinfo.events if podinfo else ()) if event.time),
        key=lambda pair: pair[0],
    )
    events = tuple(
        SpanEvent(
            name=event.reason or "event",
            time_ns=to_ns(time),
            attributes={
                sc.PROW_EVENT_MESSAGE: scrub(event.message, 512),
                sc.PROW_EVENT_TYPE: event.kind,
                sc.PROW_EVENT_COUNT: event.count,
            },
        )
        for time, event in dated
    )
    if job.prowjob and job.prowjob.revival_count:
        revived = SpanEvent(
            name="prow.pod.revived",
            time_ns=start_ns,
            attributes={sc.PROW_POD_REVIVAL_COUNT: job.prowjob.revival_count},
        )
        events = (revived, *events)
    error = None
    if waiting and state is JobState.ERROR:
        error = scrub("never started: " + ", ".join(waiting), 256)
    return SpanRecord(
        path="pod",
        parent="",
        name="pod",
        start_ns=start_ns,
        end_ns=end_ns,
        attributes=attributes,
        events=events,
        error=error,
    )


_POD_DONE = frozenset({"Succeeded", "Failed"})
"""Pod phases after which a container that has not started never will."""


def _waiting(podinfo: PodInfo | None) -> tuple[str, ...]:
    """``<span name>: <reason>`` of each container still waiting when the pod was reported.

    In a pod that is done, ``PodInitializing`` only says the pod never got to the container (an
    init container failed before it): left out as noise. Every other reason (ImagePullBackOff,
    ErrImagePull, CreateContainerConfigError, ...) is what kept the container from running.
    """
    if podinfo is None:
        return ()
    done = podinfo.phase in _POD_DONE
    return tuple(
        scrub(f"{kind}/{run.name}: {run.waiting_reason}", 256)
        for kind, runs in (("init", podinfo.init_containers), ("container", podinfo.containers))
        for run in runs
        if run.started is None
        and run.waiting_reason
        and not (done and run.waiting_reason == "PodInitializing")
    )


def _observed_pod(
    job: _Job, state: JobState, artifacts: JobArtifacts, podinfo: PodInfo, root: SpanRecord
) -> list[SpanRecord]:
    assert podinfo.created is not None  # noqa: S101 - guaranteed by the caller
    runs = (*podinfo.init_containers, *podinfo.containers)
    ends = [to_ns(run.finished) for run in runs if run.finished]
    # A container still running when podinfo.json was written (the job was aborted and the pod
    # deleted) ran until the job ended: that is the best end the artifacts give it. So did a pod
    # still Pending or Running with containers that never started (plank deleted it at the end).
    unfinished = any(run.started and not run.finished for run in runs)
    stuck = podinfo.phase not in _POD_DONE and any(run.started is None for run in runs)
    start_ns = to_ns(podinfo.created)
    end_ns = max(ends) if ends and not unfinished and not stuck else root.end_ns
    records = [_pod_record(job, state, start_ns, end_ns, podinfo=podinfo, estimated=False)]
    if podinfo.scheduled:
        records.append(
            SpanRecord(
                path="pod/schedule",
                parent="pod",
                name="pod/schedule",
                start_ns=start_ns,
                end_ns=to_ns(podinfo.scheduled),
                attributes={sc.PROW_POD_NODE: podinfo.node} if podinfo.node else {},
            )
        )
    for run in podinfo.init_containers:
        if run.started is None:
            continue
        path = f"pod/init/{run.name}"
        record = _container_record(job, state, run, path, task=False, job_end_ns=root.end_ns)
        clones = []
        if run.name == CLONEREFS and artifacts.clone_records:
            clones = _clone_spans(path, record.start_ns, record.end_ns, artifacts.clone_records)
            record = _cover_children(record, clones)
        records.append(record)
        records.extend(clones)
    records.extend(
        _container_record(
            job,
            state,
            run,
            f"pod/container/{run.name}",
            task=run.name != SIDECAR,
            job_end_ns=root.end_ns,
        )
        for run in podinfo.containers
        if run.started is not None
    )
    return records


_SECOND_NS = 1_000_000_000


def _cover_children(record: SpanRecord, children: Sequence[SpanRecord]) -> SpanRecord:
    """Let a container span grow by less than a second to hold its precisely timed children.

    Kubernetes truncates finishedAt to the second, so the container really ended within a second
    after it; clonerefs times its commands in nanoseconds. Growing within that second is what
    truncation allows, and keeps the last commands from being squashed to nothing.
    """
    latest = max((child.end_ns for child in children), default=record.end_ns)
    end = min(max(record.end_ns, latest), record.end_ns + _SECOND_NS - 1)
    return record if end == record.end_ns else replace(record, end_ns=end)


def _estimated_pod(
    job: _Job,
    state: JobState,
    artifacts: JobArtifacts,
    pending: tuple[datetime, str] | None,
    root: SpanRecord,
) -> list[SpanRecord]:
    """Rebuild what the pod's own started.json/finished.json show, without podinfo.json.

    Crier's stand-ins for those files carry the ProwJob's times, not the pod's: with only those,
    the pod is known to have existed (plank named it) but none of its containers to have run.
    """
    start_ns = to_ns(pending[0]) if pending else root.start_ns
    records = [
        _pod_record(job, state, start_ns, root.end_ns, podinfo=artifacts.podinfo, estimated=True)
    ]
    started = pod_utils_started(artifacts)
    if started and artifacts.clone_records:
        # initupload writes started.json right after clonerefs ends, and clonerefs is the pod's
        # first container: its window is the pod's start to started.json. With durations, the
        # repositories (cloned in parallel) took the longest record's time before that end.
        clone_end = max(to_ns(started), start_ns)
        timed = any(record.timed for record in artifacts.clone_records)
        longest = max(record.duration_ns for record in artifacts.clone_records)
        clone_start = max(start_ns, clone_end - longest) if timed else start_ns
        clonerefs = SpanRecord(
            path=f"pod/init/{CLONEREFS}",
            parent="pod",
            name=f"init/{CLONEREFS}",
            start_ns=clone_start,
            end_ns=clone_end,
            attributes={sc.PROW_CONTAINER_NAME: CLONEREFS, sc.PROW_TIMING_ESTIMATED: True},
        )
        records.append(clonerefs)
        records.extend(
            _clone_spans(clonerefs.path, clone_start, clone_end, artifacts.clone_records)
        )
    if started:
        finished = pod_utils_finished(artifacts)
        passed = finished.passed if finished else None
        run = ContainerRun(
            name="test",
            started=started,
            finished=finished.timestamp if finished else None,
            exit_code=None if passed is None else (0 if passed else 1),
            image=job.prowjob.test_image if job.prowjob else "",
        )
        record = _container_record(
            job, state, run, "pod/container/test", task=True, job_end_ns=root.end_ns
        )
        if record.error is not None:
            record = replace(record, error="container test: finished.json says it did not pass")
        attributes = dict(record.attributes)
        attributes[sc.PROW_TIMING_ESTIMATED] = True
        attributes.pop(sc.PROW_CONTAINER_EXIT_CODE, None)
        records.append(replace(record, attributes=attributes))
    return records


def task_result(state: JobState, run: ContainerRun) -> tuple[str, str | None]:
    """Map a container's end to ``cicd.pipeline.task.run.result`` and ``error.type``."""
    if run.reason == "DeadlineExceeded":
        return sc.RESULT_TIMEOUT, sc.ERROR_TIMEOUT
    if run.exit_code == 0:
        return sc.RESULT_SUCCESS, None
    if state is JobState.ABORTED:
        return sc.RESULT_CANCELLATION, None
    if run.reason == "OOMKilled":
        return sc.RESULT_FAILURE, sc.ERROR_OOM_KILLED
    if run.exit_code is None:
        return (
            (sc.RESULT_ERROR, sc.ERROR_PROW)
            if state is JobState.ERROR
            else (
                sc.RESULT_SUCCESS if state is JobState.SUCCESS else sc.RESULT_FAILURE,
                None if state is JobState.SUCCESS else sc.ERROR_OTHER,
            )
        )
    return sc.RESULT_FAILURE, sc.ERROR_TEST_FAILED


def _container_record(  # noqa: PLR0913 - the facts one container span is made of
    job: _Job, state: JobState, run: ContainerRun, path: str, *, task: bool, job_end_ns: int
) -> SpanRecord:
    """Return one container's span; ``path`` is ``pod/init/<name>`` or ``pod/container/<name>``."""
    assert run.started is not None  # noqa: S101 - callers skip containers that never started
    start_ns = to_ns(run.started)
    end_ns = to_ns(run.finished) if run.finished else job_end_ns
    attributes: dict[str, AttributeValue] = {sc.PROW_CONTAINER_NAME: run.name}
    if run.finished is None:
        attributes[sc.PROW_TIMING_ESTIMATED] = True
    if run.image:
        attributes[sc.PROW_CONTAINER_IMAGE] = scrub(run.image, 256)
    if run.exit_code is not None:
        attributes[sc.PROW_CONTAINER_EXIT_CODE] = run.exit_code
    if run.reason:
        attributes[sc.PROW_CONTAINER_REASON] = run.reason
    if run.restart_count:
        attributes[sc.PROW_CONTAINER_RESTARTS] = run.restart_count
    error = None
    if task:
        result, error_type = task_result(state, run)
        attributes[sc.CICD_PIPELINE_TASK_NAME] = run.name
        attributes[sc.CICD_PIPELINE_TASK_RUN_ID] = f"{job.build_id}/{run.name}"
        attributes[sc.CICD_PIPELINE_TASK_TYPE] = sc.TASK_TYPE_TEST
        attributes[sc.CICD_PIPELINE_TASK_RUN_RESULT] = result
        if job.url:
            attributes[sc.CICD_PIPELINE_TASK_RUN_URL_FULL] = job.url
        if error_type:
            attributes[sc.ERROR_TYPE] = error_type
            error = f"container {run.name}: {run.reason or 'exit code ' + str(run.exit_code)}"
    elif run.exit_code:
        error = f"container {run.name}: {run.reason or 'exit code ' + str(run.exit_code)}"
    return SpanRecord(
        path=path,
        parent="pod",
        name=path.removeprefix("pod/"),
        start_ns=start_ns,
        end_ns=end_ns,
        attributes=attributes,
        error=error,
    )


def _clone_spans(  # noqa: C901 - timed and untimed records share one walk
    parent: str, start_ns: int, end_ns: int, records: Sequence[CloneRecord]
) -> list[SpanRecord]:
    """One span per repository and one per command, inside clonerefs' window ``start..end``.

    Records with durations place each command after the previous one from the window's start.
    Records written before clonerefs recorded durations (Aug 2022) say only what ran, in which
    order: each repository then spans the whole window and its commands share it equally, all
    marked estimated rather than drawn as instants.
    """
    spans: list[SpanRecord] = []
    seen: dict[str, int] = {}
    for record in records:
        if not record.refs.org and not record.refs.repo:
            continue  # clonerefs always writes one empty record first; it cloned nothing
        repo = record.refs.full_name
        seen[repo] = seen.get(repo, 0) + 1
        path = f"{parent}/clone/{repo}" + (f"#{seen[repo]}" if seen[repo] > 1 else "")
        attributes: dict[str, AttributeValue] = {
            sc.VCS_REPOSITORY_NAME: record.refs.repo,
            sc.VCS_OWNER_NAME: record.refs.org,
            sc.PROW_CLONE_FAILED: record.failed,
        }
        if record.refs.base_ref:
            attributes[sc.VCS_REF_BASE_NAME] = record.refs.base_ref
        if record.refs.base_sha:
            attributes[sc.VCS_REF_BASE_REVISION] = record.refs.base_sha
        revision = head_revision(record.refs, record.final_sha)
        if revision:
            attributes[sc.VCS_REF_HEAD_REVISION] = revision
        if record.final_sha:
            attributes[sc.PROW_CLONE_FINAL_SHA] = record.final_sha
        durations = [command.duration_ns for command in record.commands]
        if record.timed:
            clone_end = start_ns + max(record.duration_ns, sum(durations))
        else:
            attributes[sc.PROW_TIMING_ESTIMATED] = True
            clone_end = end_ns
            share = (end_ns - start_ns) // max(1, len(record.commands))
            durations = [share] * len(record.commands)
        spans.append(
            SpanRecord(
                path=path,
                parent=parent,
                name=f"clone/{repo}",
                start_ns=start_ns,
                end_ns=clone_end,
                attributes=attributes,
                error=f"clone of {repo} failed" if record.failed else None,
            )
        )
        cursor = start_ns
        for index, (command, duration) in enumerate(zip(record.commands, durations, strict=True)):
            command_attributes: dict[str, AttributeValue] = {
                sc.PROW_CLONE_COMMAND: scrub(command.command)
            }
            if command.error:
                command_attributes[sc.PROW_CLONE_ERROR] = scrub(command.error)
            if not record.timed:
                command_attributes[sc.PROW_TIMING_ESTIMATED] = True
            spans.append(
                SpanRecord(
                    path=f"{path}/{index}",
                    parent=path,
                    name=command_name(command.command),
                    start_ns=cursor,
                    end_ns=cursor + duration,
                    attributes=command_attributes,
                    error=scrub(command.error, 256) if command.error else None,
                )
            )
            cursor += duration
    return spans


GIT_VERBS = frozenset(
    {
        "add", "am", "apply", "archive", "bisect", "branch", "cat-file", "checkout",
        "cherry-pick", "clean", "clone", "commit", "config", "describe", "diff", "fetch",
        "for-each-ref", "format-patch", "fsck", "gc", "init", "lfs", "log", "ls-files",
        "ls-remote", "merge", "mv", "notes", "prune", "pull", "push", "rebase", "remote",
        "repack", "reset", "restore", "rev-list", "rev-parse", "rm", "show", "sparse-checkout",
        "stash", "status", "submodule", "switch", "symbolic-ref", "tag", "update-ref", "worktree",
    }
)  # fmt: skip


CLONE_PROGRAMS = frozenset({"git", "mkdir", "cp", "mv", "rm", "ln", "chmod", "ssh-keyscan"})


def command_name(command: str) -> str:
    """Name a clone command by program and verb (``git fetch``): low cardinality, no secrets.

    Names come only from fixed vocabularies: clonerefs prefixes commands with the environment
    they ran with (``PWD=/dir GIT_CONFIG_VALUE_0=Authorization: Basic ... git fetch``), and values
    there, in ``-c`` options or in URLs can contain spaces and credentials.
    """
    words = command.split()
    programs = (word.rsplit("/", 1)[-1] for word in words)
    position = next((index for index, name in enumerate(programs) if name in CLONE_PROGRAMS), None)
    if position is None:
        return "command"
    program = words[position].rsplit("/", 1)[-1]
    if program != "git":
        return program
    verb = next((word for word in words[position + 1 :] if word in GIT_VERBS), "")
    return f"git {verb}" if verb else "git"
