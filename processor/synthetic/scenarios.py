"""The job lifecycles the corpus can produce, and what each one implies."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Scenario(enum.Enum):
    """One kind of Prow job lifecycle, with the artifacts and messages it leaves behind."""

    PRESUBMIT_SUCCESS = "presubmit-success"
    """A PR job with ``extra_refs``: two repositories cloned (concurrently), tests pass.

    The extra ref is a private repository cloned through a ``clone_uri`` carrying a token, so its
    clone record (commands and fetch output), ``prowjob.json`` and the messages' ``refs`` contain
    that credential.
    """
    PRESUBMIT_FAILURE = "presubmit-failure"
    """A PR job whose test container exits 1."""
    POSTSUBMIT_SUCCESS = "postsubmit-success"
    """A job on a pushed commit (``base_sha``, no pulls)."""
    POSTSUBMIT_FAILURE = "postsubmit-failure"
    """A postsubmit whose test container exits 1."""
    PERIODIC_SUCCESS = "periodic-success"
    """A periodic without refs: no ``clonerefs`` init container, no ``clone-records.json``."""
    BATCH_SUCCESS = "batch-success"
    """Tide's batch job: one ref with several pulls, each fetched and merged."""
    ABORTED_WHILE_PENDING = "aborted-while-pending"
    """A newer push aborts the presubmit seconds after its pod was created, before any container
    ran; the pod is deleted before crier's pod reporter put its finalizer on it, so there is no
    ``podinfo.json``. ``started.json``/``finished.json`` are crier's (``metadata.uploader=crier``,
    ``result`` the ProwJob state ``aborted``)."""
    ABORTED_WHILE_RUNNING = "aborted-while-running"
    """A newer push aborts the presubmit mid-test: the pod is deleted, ``test`` exits 130, the
    sidecar writes ``result: ABORTED``; kubelet ``Killing`` events."""
    ERROR_BEFORE_PENDING = "error-before-pending"
    """Plank vends a build ID but the API server refuses the pod (quota): ``triggered`` then
    ``error`` with empty ``url``/``gcs_path``. Plank has already stored the build ID in the
    status, so crier's GCS reporter still writes ``prowjob.json`` and its own started/finished
    files into a folder no message points to (``SyntheticJob.gcs_path``)."""
    ERROR_EMPTY_JOB = "error-empty-job"
    """Gangway (or ``sub``) cannot resolve the requested job: a single ``error`` message built from
    an empty spec (``job_name`` and ``job_type`` empty, no refs), message
    ``Failed creating prowjob: ...``. No ProwJob exists; no artifacts."""
    CLONE_FAILURE = "clone-failure"
    """A ``git fetch`` of a private repository fails (after clonerefs' retries): the record has
    ``failed: true`` and neither ``final_sha`` nor ``duration``; ``initupload`` writes a FAILURE
    ``finished.json`` and exits 1, the pod fails before ``test`` starts. Credentials appear in the
    commands and in git's error output."""
    MISSING_PODINFO = "missing-podinfo"
    """A successful presubmit whose ``podinfo.json`` was not written (crier samples it)."""
    TOT_BUILD_ID = "tot-build-id"
    """A postsubmit whose build ID comes from ``tot``: a small integer carrying no time.

    A real deployment uses either ``tot`` or snowflake IDs for every job; the default mix has
    both so that a consumer meets both."""
    POD_REVIVED = "pod-revived"
    """The first pod is evicted mid-test; plank counts a revival (``pod_revival_count: 1``) and
    starts a second pod with a NEW build ID, so the terminal message's ``gcs_path``/``url`` differ
    from the ``pending`` one. The first folder keeps a partial run
    (``SyntheticJob.abandoned_artifacts``)."""
    FLAKY_CLONE = "flaky-clone"
    """A ``git fetch`` fails once and succeeds on clonerefs' retry. Clonerefs records a retried
    command ONCE (the last attempt's output, a duration that includes the failed attempt and the
    100 ms backoff), so the record shows one slow, successful fetch. The clone environment
    carries an ``Authorization:`` header (``GIT_CONFIG_VALUE_0``), visible in every command."""
    POD_PENDING_TIMEOUT = "pod-pending-timeout"
    """The pod never leaves Pending (its images cannot be pulled): after plank's pod pending
    timeout the job is ``error`` with ``Pod pending timeout.`` and the pod is deleted. Written
    in 2019's shape (real corpus J6): prowjob.json has no ``pendingTime``, only the snowflake
    build ID dates the pending instant, and the URL template ends in ``/``. No container ran:
    ``started.json``/``finished.json`` are crier's stand-ins (ProwJob times, ``uploader:
    crier``); no ``podinfo.json``."""
    TEKTON_PIPELINE = "tekton-pipeline"
    """A ProwJob of the ``tekton-pipeline`` agent (real corpus J8): a PipelineRun, not a pod. No
    ``pod_spec``, no ``decoration_config``, no ``pod_name``; the only files are crier's
    (prowjob.json, started.json, finished.json). A trace has no pod to show."""
    IMAGE_PULL_BACKOFF = "image-pull-backoff"
    """Today's shape of a pod pending timeout (real corpus variant 4): clonerefs and initupload
    ran (so initupload's ``started.json`` exists), but the test image cannot be pulled; kubelet
    backs off (``Failed``/``BackOff`` events) and the pod stays Pending with ``test`` waiting in
    ``ImagePullBackOff`` until plank errors the job (``Pod pending timeout.``) and deletes the pod.
    ``podinfo.json`` shows the terminating pod, its sidecar still running; ``finished.json`` is
    crier's."""
    LEGACY_ARTIFACTS = "legacy-artifacts"
    """A run written by a 2019-2022 Prow (real corpus J1 and J5): a ``tot`` build ID and no
    ``pendingTime`` (nothing dates the pending instant), clone records without durations
    (before Aug 2022), no ``podinfo.json``, and a job URL template ending in ``/`` (knative's),
    so ``status.url`` and crier's ``gcs_path`` end in ``/`` while the folder does not."""


class JobType(enum.StrEnum):
    """``spec.type`` of a ProwJob."""

    PRESUBMIT = "presubmit"
    POSTSUBMIT = "postsubmit"
    PERIODIC = "periodic"
    BATCH = "batch"


class CloneMode(enum.Enum):
    """How clonerefs fares."""

    OK = enum.auto()
    FLAKY = enum.auto()
    FAIL = enum.auto()


class Interruption(enum.Enum):
    """What, if anything, cuts the run short."""

    NONE = enum.auto()
    ABORT_PENDING = enum.auto()
    ABORT_RUNNING = enum.auto()
    EVICTION = enum.auto()
    POD_REFUSED = enum.auto()
    GANGWAY_REJECTED = enum.auto()
    POD_PENDING_TIMEOUT = enum.auto()
    IMAGE_PULL_BACKOFF = enum.auto()


@dataclass(frozen=True, slots=True)
class Traits:
    """The knobs a scenario turns in the simulation."""

    job_type: JobType
    extra_refs: bool = False
    test_passes: bool = True
    clone: CloneMode = CloneMode.OK
    interruption: Interruption = Interruption.NONE
    tot: bool = False
    podinfo: bool = True
    agent: str = "kubernetes"
    legacy: bool = False
    """2019-2022 artifact formats: no pendingTime, untimed clone records, URL ending in ``/``."""


TRAITS: dict[Scenario, Traits] = {
    Scenario.PRESUBMIT_SUCCESS: Traits(JobType.PRESUBMIT, extra_refs=True),
    Scenario.PRESUBMIT_FAILURE: Traits(JobType.PRESUBMIT, test_passes=False),
    Scenario.POSTSUBMIT_SUCCESS: Traits(JobType.POSTSUBMIT),
    Scenario.POSTSUBMIT_FAILURE: Traits(JobType.POSTSUBMIT, test_passes=False),
    Scenario.PERIODIC_SUCCESS: Traits(JobType.PERIODIC),
    Scenario.BATCH_SUCCESS: Traits(JobType.BATCH),
    Scenario.ABORTED_WHILE_PENDING: Traits(
        JobType.PRESUBMIT, interruption=Interruption.ABORT_PENDING, podinfo=False
    ),
    Scenario.ABORTED_WHILE_RUNNING: Traits(
        JobType.PRESUBMIT, interruption=Interruption.ABORT_RUNNING
    ),
    Scenario.ERROR_BEFORE_PENDING: Traits(
        JobType.PERIODIC, interruption=Interruption.POD_REFUSED, podinfo=False
    ),
    Scenario.ERROR_EMPTY_JOB: Traits(
        JobType.PERIODIC, interruption=Interruption.GANGWAY_REJECTED, podinfo=False
    ),
    Scenario.CLONE_FAILURE: Traits(JobType.PRESUBMIT, clone=CloneMode.FAIL),
    Scenario.MISSING_PODINFO: Traits(JobType.PRESUBMIT, podinfo=False),
    Scenario.TOT_BUILD_ID: Traits(JobType.POSTSUBMIT, tot=True),
    Scenario.POD_REVIVED: Traits(JobType.PRESUBMIT, interruption=Interruption.EVICTION),
    Scenario.FLAKY_CLONE: Traits(JobType.PRESUBMIT, clone=CloneMode.FLAKY),
    Scenario.POD_PENDING_TIMEOUT: Traits(
        JobType.PRESUBMIT, interruption=Interruption.POD_PENDING_TIMEOUT, podinfo=False, legacy=True
    ),
    Scenario.IMAGE_PULL_BACKOFF: Traits(
        JobType.PRESUBMIT, interruption=Interruption.IMAGE_PULL_BACKOFF
    ),
    Scenario.TEKTON_PIPELINE: Traits(JobType.PERIODIC, agent="tekton-pipeline", podinfo=False),
    Scenario.LEGACY_ARTIFACTS: Traits(JobType.POSTSUBMIT, tot=True, podinfo=False, legacy=True),
}

MIX_WEIGHTS: dict[Scenario, float] = {
    Scenario.PRESUBMIT_SUCCESS: 30,
    Scenario.PRESUBMIT_FAILURE: 12,
    Scenario.POSTSUBMIT_SUCCESS: 12,
    Scenario.POSTSUBMIT_FAILURE: 2,
    Scenario.PERIODIC_SUCCESS: 10,
    Scenario.BATCH_SUCCESS: 4,
    Scenario.ABORTED_WHILE_PENDING: 1.5,
    Scenario.ABORTED_WHILE_RUNNING: 3,
    Scenario.ERROR_BEFORE_PENDING: 0.5,
    Scenario.ERROR_EMPTY_JOB: 0.5,
    Scenario.CLONE_FAILURE: 1,
    Scenario.MISSING_PODINFO: 12,
    Scenario.TOT_BUILD_ID: 3,
    Scenario.POD_REVIVED: 1,
    Scenario.FLAKY_CLONE: 2,
    Scenario.POD_PENDING_TIMEOUT: 0.5,
    Scenario.IMAGE_PULL_BACKOFF: 0.5,
    Scenario.TEKTON_PIPELINE: 1,
    Scenario.LEGACY_ARTIFACTS: 0.5,
}
"""The default fleet: mostly successes, every failure mode present but rare."""

SECRET_SCENARIOS = frozenset(
    {Scenario.PRESUBMIT_SUCCESS, Scenario.CLONE_FAILURE, Scenario.FLAKY_CLONE}
)
"""Scenarios whose raw clone records carry credentials a product must scrub."""
