"""Millisecond timelines of a job: ProwJob state changes, pod attempts, containers, clones.

Everything here is "true" time in Unix milliseconds; renderers truncate to what each format keeps
(Kubernetes and ProwJob times: whole seconds; started/finished.json: epoch seconds; clone records:
durations only). The order of events follows Prow's controllers:

creation -> (queue) -> plank vends the build ID and creates the pod (= ``pending``, same instant)
-> scheduled -> kubelet starts the pod, sandbox ready -> init containers one after another
(``clonerefs``, ``initupload`` which writes ``started.json``, ``place-entrypoint``) -> ``test`` and
``sidecar`` start -> ``test`` exits -> the sidecar uploads and writes ``finished.json`` -> pod phase
terminal -> plank sets ``completionTime`` and the terminal state.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from processor.synthetic.clonerefs import CloneRun, CloneTarget, run_clonerefs
from processor.synthetic.fleet import UTILITY_IMAGES, Node

ENTRYPOINT_ABORTED_CODE = 130
"""``entrypoint.AbortedErrorCode``: the test container's exit code when Prow aborts it."""


@dataclass(frozen=True, slots=True)
class ContainerRun:
    """One container that ran (or at least started) in a pod."""

    name: str
    image: str
    pulling_ms: int | None
    """``Pulling`` event; ``None`` when the image was already on the node."""
    pulled_ms: int
    created_ms: int
    started_ms: int
    finished_ms: int
    exit_code: int
    reason: str
    message: str
    container_id: str


@dataclass(frozen=True, slots=True)
class PodRun:
    """One pod attempt of a job."""

    uid: str
    build_id: str
    created_ms: int
    node: Node
    pod_ip: str
    unschedulable_ms: int | None
    """First ``FailedScheduling``; a cluster-autoscaler scale-up follows."""
    scheduled_ms: int
    kubelet_ms: int
    sandbox_ms: int
    init_names: tuple[str, ...]
    init_runs: tuple[ContainerRun, ...]
    main_runs: tuple[ContainerRun, ...]
    initialized_ms: int | None
    ready_ms: int | None
    unready_ms: int | None
    ended_ms: int
    """When the pod phase became terminal."""
    phase: str
    reason: str
    message: str
    deletion_ms: int | None
    killing_ms: int | None
    clone: CloneRun | None
    started_json_ms: int | None
    """When ``initupload`` computed ``started.json``'s timestamp."""
    finished_json: tuple[int, bool, str] | None
    """``(ms, passed, result)`` of the pod-written ``finished.json`` (initupload or sidecar)."""
    waiting: tuple[tuple[str, str, str], ...] = ()
    """``(container, reason, message)`` of containers that never started."""
    pull_failures_ms: tuple[int, ...] = ()
    """When kubelet failed to pull the unpullable test image (``Failed``, then ``BackOff``)."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """A job's ProwJob-level history plus its pod attempts."""

    created_ms: int
    pending_ms: int | None
    build_ms: int | None
    """When the (first) build ID was vended; equals ``pending_ms`` unless the pod was refused."""
    completion_ms: int
    abort_ms: int | None
    state_ms: dict[str, int]
    """When the ProwJob entered each state it reported (``triggered``, ``pending``, terminal)."""
    pods: tuple[PodRun, ...] = ()
    podinfo_ms: int | None = None
    """When crier's pod reporter fetched the final pod (``None``: no ``podinfo.json``)."""
    evicted_ms: int | None = None
    extra: dict[str, int] = field(default_factory=dict)


def uniform_ms(rng: random.Random, low: float, high: float) -> int:
    """Return a whole number of milliseconds in ``[low, high]``."""
    return round(rng.uniform(low, high))


def container_id(rng: random.Random) -> str:
    """Return a containerd container ID."""
    return f"containerd://{rng.getrandbits(256):064x}"


def test_duration_ms(rng: random.Random, median_s: float) -> int:
    """Return a log-normal test duration around ``median_s``, clamped to 15 s .. 3 h."""
    seconds = median_s * math.exp(rng.gauss(0, 0.35))
    return round(min(max(seconds, 15.0), 3 * 3600.0) * 1000)


@dataclass(frozen=True, slots=True)
class PodPlan:
    """What should happen in one pod attempt."""

    uid: str
    build_id: str
    created_ms: int
    node: Node
    test_image: str
    test_ms: int
    test_passes: bool
    clone_targets: tuple[CloneTarget, ...]
    clone_env: str
    head_time_s: int
    abort_after_ms: int | None = None
    """Abort (pod deletion) this long after ``test`` started."""
    evict_after_ms: int | None = None
    """Eviction this long after ``test`` started."""
    image_unpullable: bool = False
    """The test image cannot be pulled: the pod stays Pending until plank's pending timeout."""


def _pull(
    rng: random.Random, t: int, *, likely: float, low: float, high: float
) -> tuple[int | None, int]:
    """Return ``(Pulling, Pulled)`` instants; ``Pulling`` is ``None`` for a cached image."""
    if rng.random() < likely:
        return t, t + uniform_ms(rng, low, high)
    return None, t + uniform_ms(rng, 1, 25)


@dataclass(frozen=True, slots=True)
class _Inits:
    runs: tuple[ContainerRun, ...]
    clone: CloneRun | None
    started_json_ms: int | None
    failed_finished_json: tuple[int, bool, str] | None
    end_ms: int


def _run_inits(rng: random.Random, plan: PodPlan, names: tuple[str, ...], t: int) -> _Inits:
    clone: CloneRun | None = None
    runs: list[ContainerRun] = []
    started_json_ms: int | None = None
    failed: tuple[int, bool, str] | None = None
    for name in names:
        image = UTILITY_IMAGES["entrypoint" if name == "place-entrypoint" else name]
        pulling, pulled = _pull(rng, t + uniform_ms(rng, 5, 80), likely=0.2, low=700, high=6000)
        created = pulled + uniform_ms(rng, 20, 150)
        started = created + uniform_ms(rng, 15, 120)
        exit_code, reason, message = 0, "Completed", ""
        if name == "clonerefs":
            clone = run_clonerefs(
                rng, list(plan.clone_targets), env=plan.clone_env, head_time_s=plan.head_time_s
            )
            runtime = -(-clone.wall_ns // 1_000_000) + uniform_ms(rng, 1, 5)
        elif name == "initupload":
            runtime = uniform_ms(rng, 700, 3500)
            started_json_ms = started + uniform_ms(rng, 30, 250)
            if clone is not None and clone.failed:
                exit_code, reason, message = 1, "Error", _INITUPLOAD_FATAL
                failed = (started + runtime - uniform_ms(rng, 50, 300), False, "FAILURE")
        else:
            runtime = uniform_ms(rng, 60, 500)
        t = started + runtime
        runs.append(
            ContainerRun(
                name, image, pulling, pulled, created, started, t, exit_code, reason, message,
                container_id(rng),
            )
        )  # fmt: skip
        if failed is not None:
            break
    return _Inits(tuple(runs), clone, started_json_ms, failed, t)


@dataclass(frozen=True, slots=True)
class _Mains:
    runs: tuple[ContainerRun, ...]
    ready_ms: int
    unready_ms: int
    ended_ms: int
    phase: str
    reason: str
    message: str
    deletion_ms: int | None
    killing_ms: int | None
    finished_json: tuple[int, bool, str]


def _run_mains(rng: random.Random, plan: PodPlan, initialized: int) -> _Mains:
    big = "kubekins" in plan.test_image
    test_pulling, test_pulled = _pull(
        rng,
        initialized + uniform_ms(rng, 5, 60),
        likely=0.35,
        low=20_000 if big else 1500,
        high=75_000 if big else 9000,
    )
    test_created = test_pulled + uniform_ms(rng, 20, 200)
    test_started = test_created + uniform_ms(rng, 15, 150)
    side_pulling, side_pulled = _pull(
        rng, test_started + uniform_ms(rng, 2, 30), likely=0.15, low=600, high=4000
    )
    side_created = side_pulled + uniform_ms(rng, 20, 150)
    side_started = side_created + uniform_ms(rng, 15, 120)

    deletion = killing = None
    pod_reason = pod_message = ""
    if plan.abort_after_ms is not None:
        deletion = test_started + plan.abort_after_ms
        killing = deletion + uniform_ms(rng, 20, 300)
        test_finished = killing + uniform_ms(rng, 300, 8000)
        test_exit = ENTRYPOINT_ABORTED_CODE
        upload = uniform_ms(rng, 1500, 10_000)
        passed, result, phase = False, "ABORTED", "Failed"
    elif plan.evict_after_ms is not None:
        test_finished = test_started + plan.evict_after_ms + uniform_ms(rng, 300, 3000)
        test_exit = SIGKILL_EXIT_CODE
        upload = uniform_ms(rng, 1000, 8000)
        passed, result, phase = False, "ABORTED", "Failed"
        pod_reason, pod_message = "Evicted", _EVICTION_MESSAGE
    else:
        test_finished = test_started + plan.test_ms
        test_exit = 0 if plan.test_passes else 1
        upload = uniform_ms(rng, 1500, 25_000)
        passed = plan.test_passes
        result, phase = ("SUCCESS", "Succeeded") if passed else ("FAILURE", "Failed")
    side_finished = test_finished + upload
    runs = (
        ContainerRun(
            "test", plan.test_image, test_pulling, test_pulled, test_created, test_started,
            test_finished, test_exit, "Completed" if test_exit == 0 else "Error",
            _termination_message(test_exit), container_id(rng),
        ),
        ContainerRun(
            "sidecar", UTILITY_IMAGES["sidecar"], side_pulling, side_pulled, side_created,
            side_started, side_finished, 0, "Completed", "", container_id(rng),
        ),
    )  # fmt: skip
    return _Mains(
        runs=runs,
        ready_ms=max(test_started, side_started) + uniform_ms(rng, 20, 800),
        unready_ms=test_finished + uniform_ms(rng, 200, 1500),
        ended_ms=side_finished + uniform_ms(rng, 100, 1500),
        phase=phase,
        reason=pod_reason,
        message=pod_message,
        deletion_ms=deletion,
        killing_ms=killing,
        finished_json=(side_finished - uniform_ms(rng, 150, 900), passed, result),
    )


def run_pod(rng: random.Random, plan: PodPlan) -> PodRun:
    """Simulate a pod from creation to its terminal phase (or deletion)."""
    unschedulable: int | None = None
    if rng.random() < SCALE_UP_SHARE:  # no room: the autoscaler adds a node first
        unschedulable = plan.created_ms + uniform_ms(rng, 5, 300)
        scheduled = unschedulable + uniform_ms(rng, 35_000, 110_000)
    else:
        scheduled = plan.created_ms + uniform_ms(rng, 15, 1500)
    kubelet = scheduled + uniform_ms(rng, 10, 300)
    sandbox = kubelet + uniform_ms(rng, 400, 3000)
    init_names = (("clonerefs",) if plan.clone_targets else ()) + ("initupload", "place-entrypoint")
    inits = _run_inits(rng, plan, init_names, sandbox)
    pod_ip = f"10.8.{plan.node.pod_cidr.split('.')[2]}.{rng.randrange(2, 254)}"
    if inits.failed_finished_json is not None:
        return PodRun(
            uid=plan.uid, build_id=plan.build_id, created_ms=plan.created_ms, node=plan.node,
            pod_ip=pod_ip, unschedulable_ms=unschedulable, scheduled_ms=scheduled,
            kubelet_ms=kubelet, sandbox_ms=sandbox, init_names=init_names, init_runs=inits.runs,
            main_runs=(), initialized_ms=None, ready_ms=None, unready_ms=None,
            ended_ms=inits.end_ms + uniform_ms(rng, 200, 1200), phase="Failed", reason="",
            message="", deletion_ms=None, killing_ms=None, clone=inits.clone,
            started_json_ms=inits.started_json_ms, finished_json=inits.failed_finished_json,
        )  # fmt: skip
    initialized = inits.end_ms + uniform_ms(rng, 5, 120)
    if plan.image_unpullable:
        return _stuck_pulling(
            rng, plan, inits, initialized, (unschedulable, scheduled, kubelet, sandbox, pod_ip)
        )
    mains = _run_mains(rng, plan, initialized)
    return PodRun(
        uid=plan.uid, build_id=plan.build_id, created_ms=plan.created_ms, node=plan.node,
        pod_ip=pod_ip, unschedulable_ms=unschedulable, scheduled_ms=scheduled, kubelet_ms=kubelet,
        sandbox_ms=sandbox, init_names=init_names, init_runs=inits.runs, main_runs=mains.runs,
        initialized_ms=initialized, ready_ms=mains.ready_ms, unready_ms=mains.unready_ms,
        ended_ms=mains.ended_ms, phase=mains.phase, reason=mains.reason, message=mains.message,
        deletion_ms=mains.deletion_ms, killing_ms=mains.killing_ms, clone=inits.clone,
        started_json_ms=inits.started_json_ms, finished_json=mains.finished_json,
    )  # fmt: skip


PENDING_TIMEOUT_MS = 10 * 60 * 1000
"""Plank's default ``pod_pending_timeout`` (10m), counted from the pod's start."""


def _stuck_pulling(
    rng: random.Random,
    plan: PodPlan,
    inits: _Inits,
    initialized: int,
    placed: tuple[int | None, int, int, int, str],
) -> PodRun:
    """Simulate a pod whose test image cannot be pulled, until plank's pending timeout.

    Kubelet fails the pull (``ErrImagePull``), then backs off (``ImagePullBackOff``) until plank
    deletes the pod. The sidecar started and is still terminating when the pod is reported.
    """
    unschedulable, scheduled, kubelet, sandbox, pod_ip = placed
    attempts: list[int] = []
    at = initialized + uniform_ms(rng, 5, 60)
    backoff_ms = 10_000
    deletion = kubelet + PENDING_TIMEOUT_MS + uniform_ms(rng, 1000, 30_000)
    while at < deletion:  # kubelet's image back-off doubles up to five minutes
        attempts.append(at)
        at += backoff_ms + uniform_ms(rng, 200, 2000)
        backoff_ms = min(backoff_ms * 2, 300_000)
    side_pulling, side_pulled = _pull(
        rng, initialized + uniform_ms(rng, 2, 30), likely=0.15, low=600, high=4000
    )
    side_created = side_pulled + uniform_ms(rng, 20, 150)
    side_started = side_created + uniform_ms(rng, 15, 120)
    killing = deletion + uniform_ms(rng, 20, 300)
    side_finished = killing + uniform_ms(rng, 20_000, 40_000)  # still terminating when reported
    sidecar = ContainerRun(
        "sidecar", UTILITY_IMAGES["sidecar"], side_pulling, side_pulled, side_created,
        side_started, side_finished, 0, "Completed", "", container_id(rng),
    )  # fmt: skip
    message = f'Back-off pulling image "{plan.test_image}"'
    return PodRun(
        uid=plan.uid, build_id=plan.build_id, created_ms=plan.created_ms, node=plan.node,
        pod_ip=pod_ip, unschedulable_ms=unschedulable, scheduled_ms=scheduled, kubelet_ms=kubelet,
        sandbox_ms=sandbox, init_names=tuple(run.name for run in inits.runs),
        init_runs=inits.runs, main_runs=(sidecar,), initialized_ms=initialized, ready_ms=None,
        unready_ms=None, ended_ms=side_finished + uniform_ms(rng, 100, 1500), phase="Pending",
        reason="", message="", deletion_ms=deletion, killing_ms=killing, clone=inits.clone,
        started_json_ms=inits.started_json_ms, finished_json=None,
        waiting=(("test", "ImagePullBackOff", message),), pull_failures_ms=tuple(attempts),
    )  # fmt: skip


SIGKILL_EXIT_CODE = 137
SCALE_UP_SHARE = 0.08
"""Share of pods that wait for the cluster autoscaler (a ``FailedScheduling`` first)."""
_INITUPLOAD_FATAL = (
    '{"component":"initupload","error":"cloning the appropriate refs failed",'
    '"file":"sigs.k8s.io/prow/cmd/initupload/main.go:46","func":"main.main",'
    '"level":"fatal","msg":"Failed to initialize job","severity":"fatal"}\n'
)
_EVICTION_MESSAGE = (
    "The node was low on resource: ephemeral-storage. Threshold quantity: 10120387530, "
    "available: 9846712Ki. Container test was using 71835148Ki, request is 0, has larger "
    "consumption of ephemeral-storage. "
)


def _termination_message(exit_code: int) -> str:
    """Return the log tail kubelet keeps as the message (``FallbackToLogsOnError``)."""
    if exit_code in {0, SIGKILL_EXIT_CODE}:
        return ""
    if exit_code == ENTRYPOINT_ABORTED_CODE:
        return (
            '{"component":"entrypoint","file":"sigs.k8s.io/prow/pkg/entrypoint/run.go:169",'
            '"func":"sigs.k8s.io/prow/pkg/entrypoint.Options.ExecuteProcess","level":"error",'
            '"msg":"Entrypoint received interrupt: terminated","severity":"error"}\n'
        )
    return (
        "--- FAIL: TestHandlerRetries (0.41s)\n"
        "    handler_test.go:212: expected 3 attempts, got 2\n"
        "FAIL\n"
        '{"component":"entrypoint","file":"sigs.k8s.io/prow/pkg/entrypoint/run.go:84",'
        '"func":"sigs.k8s.io/prow/pkg/entrypoint.Options.internalRun","level":"error",'
        '"msg":"Error executing test process","severity":"error"}\n'
    )
