"""ProwJob objects, crier's Pub/Sub messages and the started/finished files, as Prow writes them.

Field order follows the Go structs (``pkg/apis/prowjobs/v1/types.go``, crier's ``ReportMessage``,
testgrid's ``metadata.Started``/``Finished``) and ``omitempty`` is honoured, so encoding these dicts
with :func:`~processor.synthetic._encoding.go_json` gives the bytes Prow would write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.synthetic._encoding import go_json, go_map, rfc3339_ms
from processor.synthetic.fleet import (
    GRACE_PERIOD_S,
    POD_NAMESPACE,
    PROW_URL_PREFIX,
    PROWJOB_NAMESPACE,
    PUBSUB_PROJECT,
    PUBSUB_TOPIC,
    UTILITY_IMAGES,
    JobConfig,
)
from processor.synthetic.scenarios import JobType

REPORTERS_FOR_PR_JOBS = ("github-reporter", "pubsub-reporter")
"""Reporters that act on a ProwJob before it has a build ID."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What stays fixed over a job's life: identity, config and refs."""

    name: str
    """``metadata.name``: the random UUID (``PROW_JOB_ID``), the trace ID."""
    k8s_uid: str
    """``metadata.uid``: the API server's object UID, a different UUID."""
    config: JobConfig
    job_type: JobType
    refs: dict[str, Any] | None
    extra_refs: tuple[dict[str, Any], ...]
    bucket: str
    agent: str = "kubernetes"
    """``spec.agent``: ``kubernetes`` runs a pod; ``tekton-pipeline`` a PipelineRun (no pod)."""
    legacy: bool = False
    """Written by a 2019-2022 Prow: no ``pendingTime``, and a job URL template ending in ``/``."""

    def all_refs(self) -> list[dict[str, Any]]:
        """``spec.refs`` then ``spec.extra_refs``, as crier lists them."""
        return ([self.refs] if self.refs else []) + list(self.extra_refs)

    def main_refs(self) -> dict[str, Any] | None:
        """Return the refs labels and ``started.json`` describe: ``refs``, else the first extra."""
        return self.refs or (self.extra_refs[0] if self.extra_refs else None)

    def folder(self, build_id: str) -> str:
        """Return the artifact folder (``gcs.PathForSpec``, explicit path strategy)."""
        job = self.config.name
        if self.job_type in {JobType.PERIODIC, JobType.POSTSUBMIT}:
            path = f"logs/{job}/{build_id}"
        elif self.job_type is JobType.BATCH:
            path = f"pr-logs/pull/batch/{job}/{build_id}"
        else:
            refs = self.refs or {}
            org_repo = f"{refs['org']}_{refs['repo'].replace('/', '_')}"
            path = f"pr-logs/pull/{org_repo}/{refs['pulls'][0]['number']}/{job}/{build_id}"
        return f"gs://{self.bucket}/{path}"

    def url(self, build_id: str) -> str:
        """``status.url``: the Spyglass link for a build (``/``-terminated for legacy jobs)."""
        url = f"{PROW_URL_PREFIX}gs/{self.folder(build_id).removeprefix('gs://')}"
        return url + "/" if self.legacy else url

    def gcs_path(self, build_id: str) -> str:
        """Crier's ``gcs_path``: cut out of ``status.url``, so a trailing ``/`` stays."""
        return self.folder(build_id) + ("/" if self.legacy else "")


@dataclass(frozen=True, slots=True)
class Status:
    """The ``status`` of a ProwJob at one moment (times in Unix ms, truncated when written)."""

    state: str
    start_ms: int
    pending_ms: int | None = None
    completion_ms: int | None = None
    description: str = ""
    build_id: str = ""
    pod_name: str = ""
    has_url: bool = False
    revivals: int = 0
    prev_report_states: tuple[tuple[str, str], ...] = ()
    resource_version: int = 0


def annotations_for(spec: JobSpec) -> dict[str, str]:
    """Return the ProwJob's (and pod's) annotations: job, context, crier's Pub/Sub routing."""
    items = {
        "prow.k8s.io/context": _context(spec),
        "prow.k8s.io/job": spec.config.name,
        "prow.k8s.io/pubsub.project": PUBSUB_PROJECT,
        "prow.k8s.io/pubsub.topic": PUBSUB_TOPIC,
    }
    if spec.config.run_id:
        items["prow.k8s.io/pubsub.runID"] = spec.config.run_id
    return go_map(items)


def labels_for(spec: JobSpec, build_id: str = "") -> dict[str, str]:
    """Labels as ``decorate.LabelsAndAnnotationsForSpec`` sets them; id labels once a pod exists."""
    items = {
        "created-by-prow": "true",
        "prow.k8s.io/context": _context(spec),
        "prow.k8s.io/job": spec.config.name,
        "prow.k8s.io/type": str(spec.job_type),
    }
    if spec.job_type is JobType.PRESUBMIT:
        items["prow.k8s.io/is-optional"] = "true" if spec.config.optional else "false"
    refs = spec.main_refs()
    if refs:
        items["prow.k8s.io/refs.org"] = refs["org"]
        items["prow.k8s.io/refs.repo"] = refs["repo"]
        items["prow.k8s.io/refs.base_ref"] = refs.get("base_ref", "")
        if refs.get("pulls"):
            items["prow.k8s.io/refs.pull"] = str(refs["pulls"][0]["number"])
    if build_id:
        # plank's ProwJobToPod writes these into the ProwJob's own label map too.
        items["prow.k8s.io/build-id"] = build_id
        items["prow.k8s.io/id"] = spec.name
    return go_map(items)


def _context(spec: JobSpec) -> str:
    return "" if spec.job_type is JobType.PERIODIC else spec.config.name


def prowjob(spec: JobSpec, status: Status) -> dict[str, Any]:
    """Return the ProwJob object as crier's GCS reporter writes it (``prowjob.json``)."""
    return {
        "kind": "ProwJob",
        "apiVersion": "prow.k8s.io/v1",
        "metadata": {
            "name": spec.name,
            "namespace": PROWJOB_NAMESPACE,
            "uid": spec.k8s_uid,
            "resourceVersion": str(status.resource_version),
            "generation": 1,
            "creationTimestamp": rfc3339_ms(status.start_ms),
            "labels": labels_for(spec, status.build_id),
            "annotations": annotations_for(spec),
        },
        "spec": _spec(spec),
        "status": _status(spec, status),
    }


def _spec(spec: JobSpec) -> dict[str, Any]:
    config = spec.config
    out: dict[str, Any] = {
        "type": str(spec.job_type),
        "agent": spec.agent,
        "cluster": config.cluster,
        "namespace": POD_NAMESPACE,
        "job": config.name,
    }
    if spec.refs:
        out["refs"] = spec.refs
    if spec.extra_refs:
        out["extra_refs"] = list(spec.extra_refs)
    out["report"] = True
    if spec.job_type is not JobType.PERIODIC:
        out["context"] = config.name
    if spec.job_type in {JobType.PRESUBMIT, JobType.BATCH}:
        out["rerun_command"] = f"/test {config.name}"
    if spec.agent != "kubernetes":
        # Prow's ``PipelineRunSpec`` (tektoncd/pipeline v1beta1): no pod, no decoration.
        out["pipeline_run_spec"] = {"pipelineRef": {"name": config.name}}
        return out
    out["pod_spec"] = {
        "containers": [
            {
                "name": "",
                "image": config.image,
                "command": list(config.command),
                "resources": {"requests": {"cpu": "4", "memory": "8Gi"}},
            }
        ]
    }
    out["decoration_config"] = {
        "timeout": "2h0m0s",
        "grace_period": f"{GRACE_PERIOD_S // 60}m0s",
        "utility_images": {
            "clonerefs": UTILITY_IMAGES["clonerefs"],
            "initupload": UTILITY_IMAGES["initupload"],
            "entrypoint": UTILITY_IMAGES["entrypoint"],
            "sidecar": UTILITY_IMAGES["sidecar"],
        },
        "gcs_configuration": {"bucket": spec.bucket, "path_strategy": "explicit"},
        "gcs_credentials_secret": "gcs-credentials",
    }
    return out


def _status(spec: JobSpec, status: Status) -> dict[str, Any]:
    out: dict[str, Any] = {"startTime": rfc3339_ms(status.start_ms)}
    if status.pending_ms is not None and not spec.legacy:  # pendingTime: Prow >= Oct 2019
        out["pendingTime"] = rfc3339_ms(status.pending_ms)
    if status.completion_ms is not None:
        out["completionTime"] = rfc3339_ms(status.completion_ms)
    out["state"] = status.state
    if status.description:
        out["description"] = status.description
    if status.has_url:
        out["url"] = spec.url(status.build_id)
    if status.revivals:
        out["pod_revival_count"] = status.revivals
    if status.pod_name:
        out["pod_name"] = status.pod_name
    if status.build_id:
        out["build_id"] = status.build_id
    if status.prev_report_states:
        out["prev_report_states"] = go_map(dict(status.prev_report_states))
    return out


def report_message(
    spec: JobSpec | None, status: Status, *, description: str = ""
) -> dict[str, Any]:
    """Return crier's ``ReportMessage`` for a state (``spec=None``: gangway's empty spec)."""
    url = spec.url(status.build_id) if spec is not None and status.has_url else ""
    gcs_path = spec.gcs_path(status.build_id) if spec is not None and status.has_url else ""
    out: dict[str, Any] = {
        "project": PUBSUB_PROJECT,
        "topic": PUBSUB_TOPIC,
        "runid": spec.config.run_id if spec is not None else "",
        "status": status.state,
        "url": url,
        "gcs_path": gcs_path,
    }
    refs = spec.all_refs() if spec is not None else []
    if refs:
        out["refs"] = refs
    out["job_type"] = str(spec.job_type) if spec is not None else ""
    out["job_name"] = spec.config.name if spec is not None else ""
    message = description or status.description
    if message:
        out["message"] = message
    return out


def refs_string(refs: dict[str, Any]) -> str:
    """``Refs.String()``: ``base_ref[:base_sha],number:sha[:ref],...``."""
    parts = [
        f"{refs.get('base_ref', '')}:{refs['base_sha']}"
        if refs.get("base_sha")
        else refs.get("base_ref", "")
    ]
    for pull in refs.get("pulls", ()):
        part = f"{pull['number']}:{pull['sha']}"
        if pull.get("ref"):
            part += f":{pull['ref']}"
        parts.append(part)
    return ",".join(parts)


def revision(refs: dict[str, Any] | None) -> str:
    """Return ``GetRevisionFromRefs``: the first pull's SHA, else ``base_sha``/``base_ref``."""
    if not refs:
        return ""
    if refs.get("pulls"):
        return str(refs["pulls"][0]["sha"])
    return str(refs.get("base_sha") or refs.get("base_ref", ""))


def started_json(spec: JobSpec, timestamp_s: int, *, repo_commit: str, by_crier: bool) -> bytes:
    """``started.json``: initupload's compact one, or crier's indented stand-in."""
    refs = spec.main_refs()
    version = repo_commit or revision(refs)
    out: dict[str, Any] = {"timestamp": timestamp_s}
    if spec.refs and spec.refs.get("pulls"):
        out["pull"] = str(spec.refs["pulls"][0]["number"])
    repos = {f"{r['org']}/{r['repo']}": refs_string(r) for r in spec.all_refs()}
    if repos:
        out["repos"] = go_map(repos)
    if version:
        out["repo-commit"] = version
    if by_crier:
        out["metadata"] = {"uploader": "crier"}
    if version:
        out["repo-version"] = version
    return go_json(out, indent=by_crier)


def finished_json(timestamp_s: int, *, passed: bool, result: str, revision_: str = "") -> bytes:
    """``finished.json`` as the sidecar or initupload writes it (compact)."""
    out: dict[str, Any] = {"timestamp": timestamp_s, "passed": passed, "result": result}
    if revision_:
        out["revision"] = revision_
    return go_json(out)


def crier_finished_json(completion_s: int, state: str) -> bytes:
    """``finished.json`` as crier's GCS reporter writes it when the pod did not."""
    out = {
        "timestamp": completion_s,
        "passed": state == "success",
        "metadata": {"uploader": "crier"},
        "result": state,
    }
    return go_json(out, indent=True)


def pod_grace_seconds() -> int:
    """Return the pod's ``terminationGracePeriodSeconds``: 5/4 of the decoration grace period."""
    return GRACE_PERIOD_S * 5 // 4
