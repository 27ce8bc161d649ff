"""``generate``: a deterministic, lazy stream of synthetic Prow jobs."""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from processor.synthetic import clonerefs
from processor.synthetic._encoding import go_json, snowflake_id
from processor.synthetic.fleet import (
    AUTHORS,
    POD_NAMESPACE,
    PR_TITLES,
    JobConfig,
    Node,
    Repo,
    jobs_for,
    make_nodes,
    seeded,
    sha1_hex,
    uuid4,
)
from processor.synthetic.junit import junit_files
from processor.synthetic.lifecycle import (
    PENDING_TIMEOUT_MS,
    PodPlan,
    PodRun,
    run_pod,
    test_duration_ms,
    uniform_ms,
)
from processor.synthetic.model import Published, SyntheticJob
from processor.synthetic.podinfo import podinfo_json
from processor.synthetic.prowjob import (
    JobSpec,
    Status,
    crier_finished_json,
    finished_json,
    prowjob,
    report_message,
    revision,
    started_json,
)
from processor.synthetic.scenarios import (
    MIX_WEIGHTS,
    TRAITS,
    CloneMode,
    Interruption,
    JobType,
    Scenario,
    Traits,
)

DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)
MEAN_ARRIVAL_GAP_MS = 15_000
"""A fleet starting ~240 jobs an hour: with runs of minutes, dozens overlap at any time."""
_TOKEN_ALPHABET = string.ascii_letters + string.digits


def generate(
    n_jobs: int,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    scenarios: Sequence[Scenario] | None = None,
    bucket: str = "prow-artifacts",
) -> Iterator[SyntheticJob]:
    """Yield ``n_jobs`` synthetic jobs, one at a time, created from ``start`` onwards.

    The same arguments always give byte-identical jobs, and job ``i`` does not depend on
    ``n_jobs`` when ``scenarios`` is given. ``scenarios=None`` draws a realistic mix (mostly
    successes) in which every scenario occurs at least once when ``n_jobs`` allows; otherwise
    the given scenarios are used in turn. Jobs arrive as a Poisson process (mean gap 15 s), so
    their lifetimes overlap like a real fleet's.
    """
    if n_jobs < 0:
        raise ValueError(f"n_jobs must be >= 0, got {n_jobs}")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    if scenarios is not None and not scenarios:
        raise ValueError("scenarios must be None or non-empty")
    start_ms = round(start.timestamp() * 1000)
    fleet = _Fleet(nodes=make_nodes(seeded(seed, "fleet"), start_ms // 1000), bucket=bucket)
    scenario_of = _scenario_plan(n_jobs, seed, scenarios)
    arrivals = seeded(seed, "arrivals")
    created_ms = start_ms
    for index in range(n_jobs):
        created_ms += max(1, round(arrivals.expovariate(1 / MEAN_ARRIVAL_GAP_MS)))
        scenario = scenario_of(index)
        yield _build_job(_Context(seeded(seed, "job", index), scenario, fleet), created_ms)


def _scenario_plan(
    n_jobs: int, seed: int, scenarios: Sequence[Scenario] | None
) -> Callable[[int], Scenario]:
    """Return ``index -> Scenario`` for one run."""
    if scenarios is not None:
        chosen = tuple(scenarios)
        return lambda index: chosen[index % len(chosen)]
    every = list(Scenario)
    fixed: dict[int, Scenario] = {}
    if n_jobs >= len(every):
        seeded(seed, "mix").shuffle(every)
        # One of each scenario, spread evenly over the run; the rest is a weighted draw.
        fixed = {math.floor((k + 0.5) * n_jobs / len(every)): s for k, s in enumerate(every)}
    population = list(MIX_WEIGHTS)
    weights = [MIX_WEIGHTS[s] for s in population]

    def pick(index: int) -> Scenario:
        if index in fixed:
            return fixed[index]
        return seeded(seed, "mix", index).choices(population, weights)[0]

    return pick


@dataclass
class _Fleet:
    """State shared by the jobs of one ``generate`` run."""

    nodes: tuple[Node, ...]
    bucket: str
    tot_counters: dict[str, int] = field(default_factory=dict)

    def tot_build_id(self, rng: random.Random, job: str) -> str:
        """Vend the next ``tot`` build ID for ``job``: per-job increasing small integers."""
        current = self.tot_counters.get(job) or rng.randrange(1200, 6000)
        self.tot_counters[job] = current + 1
        return str(current)


@dataclass(frozen=True, slots=True)
class _Context:
    rng: random.Random
    scenario: Scenario
    fleet: _Fleet

    @property
    def traits(self) -> Traits:
        return TRAITS[self.scenario]


@dataclass(frozen=True, slots=True)
class _Setup:
    spec: JobSpec
    secrets: tuple[str, ...]
    clone_targets: tuple[clonerefs.CloneTarget, ...]
    clone_env: str


def _fake_token(rng: random.Random) -> str:
    """Return a GitHub-App-installation-token-shaped fake (``ghs_`` + 36 characters)."""
    return "ghs_FAKE" + "".join(rng.choice(_TOKEN_ALPHABET) for _ in range(32))


def _token_uri(repo: Repo, token: str) -> str:
    return f"https://x-access-token:{token}@github.com/{repo.org}/{repo.name}.git"


def _pull(rng: random.Random, repo: Repo, number: int) -> dict[str, Any]:
    author = rng.choice(AUTHORS)
    sha = sha1_hex(rng)
    branch = rng.choice(("fix", "feature", "chore"))
    return {
        "number": number,
        "author": author,
        "sha": sha,
        "title": rng.choice(PR_TITLES),
        "head_ref": f"{author.split('[')[0]}/{branch}-{number}",
        "link": f"{repo.link}/pull/{number}",
        "commit_link": f"{repo.link}/pull/{number}/commits/{sha}",
        "author_link": f"https://github.com/{author}",
    }


def _main_refs(rng: random.Random, job_type: JobType, repo: Repo, clone_uri: str) -> dict[str, Any]:
    """Refs as trigger (PRs), tide (batches) or a push event (postsubmits) builds them."""
    base_sha = sha1_hex(rng)
    refs: dict[str, Any] = {
        "org": repo.org,
        "repo": repo.name,
        "repo_link": repo.link,
        "base_ref": repo.base_ref,
        "base_sha": base_sha,
    }
    if job_type is JobType.POSTSUBMIT:
        before = sha1_hex(rng)
        refs["base_link"] = f"{repo.link}/compare/{before[:12]}...{base_sha[:12]}"
    else:
        count = rng.randint(2, 5) if job_type is JobType.BATCH else 1
        refs["base_link"] = f"{repo.link}/commit/{base_sha}"
        refs["pulls"] = [_pull(rng, repo, n) for n in sorted(rng.sample(range(1200, 4800), count))]
    if clone_uri:
        refs["clone_uri"] = clone_uri
    return refs


def _setup(ctx: _Context) -> _Setup:
    rng, traits = ctx.rng, ctx.traits
    config: JobConfig = rng.choice(jobs_for(traits.job_type, extra_refs=traits.extra_refs))
    name, k8s_uid = uuid4(rng), uuid4(rng)
    secrets: list[str] = []
    refs: dict[str, Any] | None = None
    targets: list[clonerefs.CloneTarget] = []
    if config.repo is not None:
        clone_uri = ""
        if traits.clone is CloneMode.FAIL:
            token = _fake_token(rng)
            secrets.append(token)
            clone_uri = _token_uri(config.repo, token)
        refs = _main_refs(rng, traits.job_type, config.repo, clone_uri)
        fails, flaky = traits.clone is CloneMode.FAIL, traits.clone is CloneMode.FLAKY
        targets.append(clonerefs.CloneTarget(refs, config.repo, fails=fails, flaky=flaky))
    extra: list[dict[str, Any]] = []
    for repo in config.extra_refs:
        token = _fake_token(rng)
        secrets.append(token)
        ref = {"org": repo.org, "repo": repo.name, "base_ref": repo.base_ref}
        ref["clone_uri"] = _token_uri(repo, token)
        extra.append(ref)
        targets.append(clonerefs.CloneTarget(ref, repo))
    env = ""
    if traits.clone is CloneMode.FLAKY:
        token = _fake_token(rng)
        env = clonerefs.clone_env(token)
        secrets.append(clonerefs.authorization_value(token))
    spec = JobSpec(
        name,
        k8s_uid,
        config,
        traits.job_type,
        refs,
        tuple(extra),
        ctx.fleet.bucket,
        agent=traits.agent,
        legacy=traits.legacy,
    )
    return _Setup(spec, tuple(secrets), tuple(targets), env)


def _publish_delay(rng: random.Random) -> int:
    """Crier publishes 50-2000 ms after the change (usually a few hundred)."""
    return 50 + min(round(rng.expovariate(1 / 250)), 1950)


def _resource_version(ms: int) -> int:
    return 480_000_000 + (ms // 53) % 1_000_000_000


@dataclass
class _Job:
    """Everything gathered while simulating one job, before it is frozen."""

    spec: JobSpec
    created_ms: int
    statuses: list[tuple[Status, int]] = field(default_factory=list)
    """(status on entering a state, publish ms of crier's message for it)."""
    artifacts: dict[str, bytes] = field(default_factory=dict)
    abandoned: dict[str, dict[str, bytes]] = field(default_factory=dict)
    build_id: str = ""

    def report(self, rng: random.Random, status: Status, state_ms: int) -> None:
        """Record a state change; crier publishes it 50-2000 ms later, after earlier ones."""
        earliest = self.statuses[-1][1] + 1 if self.statuses else 0
        self.statuses.append((status, max(state_ms + _publish_delay(rng), earliest)))


def _prev_states(spec: JobSpec, previous: str, *, with_gcs: bool) -> tuple[tuple[str, str], ...]:
    """``status.prev_report_states``: what each reporter last reported (GCS ones need a build)."""
    states = {"pubsub-reporter": previous}
    if spec.job_type is not JobType.PERIODIC:
        states["github-reporter"] = previous
    if with_gcs:
        states["gcsreporter"] = previous
        states["gcsk8sreporter"] = previous
    return tuple(sorted(states.items()))


def _build_job(ctx: _Context, created_ms: int) -> SyntheticJob:
    rng, traits = ctx.rng, ctx.traits
    setup = _setup(ctx)
    job = _Job(setup.spec, created_ms)
    if traits.interruption is Interruption.GANGWAY_REJECTED:
        return _gangway_rejection(ctx, job)
    triggered = Status("triggered", created_ms, resource_version=_resource_version(created_ms))
    queue_ms = round(min(1000 + rng.expovariate(1 / 6000), 60_000))
    job.statuses.append((triggered, created_ms + min(_publish_delay(rng), queue_ms - 20)))
    pending_ms = created_ms + queue_ms
    if traits.tot:
        build_id = ctx.fleet.tot_build_id(rng, setup.spec.config.name)
    else:
        build_id = str(snowflake_id(pending_ms, rng.choice((0, 0, 0, 0, 0, 1, 2))))
    if traits.interruption is Interruption.POD_REFUSED:
        _pod_refused(rng, job, build_id, pending_ms)
    else:
        _run(ctx, setup, job, build_id, pending_ms)
    return _freeze(ctx.scenario, job, setup.secrets)


def _gangway_rejection(ctx: _Context, job: _Job) -> SyntheticJob:
    """Gangway reports an error for a spec it could not build: no ProwJob, one message."""
    wanted = job.spec.config.name + "-canary"
    description = f'Failed creating prowjob: failed to find associated periodic job "{wanted}"'
    message = report_message(None, Status("error", job.created_ms), description=description)
    publish = job.created_ms + _publish_delay(ctx.rng)
    return SyntheticJob(
        uid=job.spec.name,
        job_name="",
        job_type="",
        build_id="",
        gcs_path="",
        url="",
        scenario=ctx.scenario,
        artifacts={},
        messages=(Published(_utc(publish), message),),
        prowjob_versions={},
        abandoned_artifacts={},
    )


def _pod_refused(rng: random.Random, job: _Job, build_id: str, attempt_ms: int) -> None:
    """Plank vended a build ID, then the API server refused the pod: straight to ``error``."""
    spec = job.spec
    completion = attempt_ms + uniform_ms(rng, 20, 300)
    description = (
        f"Pod can not be created: create pod {POD_NAMESPACE}/{spec.name} in cluster "
        f'{spec.config.cluster}: pods "{spec.name}" is forbidden: exceeded quota: build-quota, '
        "requested: requests.cpu=4, used: requests.cpu=254, limited: requests.cpu=256"
    )
    status = Status(
        "error",
        job.created_ms,
        completion_ms=completion,
        description=description,
        build_id=build_id,
        prev_report_states=_prev_states(spec, "triggered", with_gcs=False),
        resource_version=_resource_version(completion),
    )
    job.report(rng, status, completion)
    job.build_id = build_id
    if spec.refs is not None:  # crier only writes started.json for jobs with refs
        job.artifacts["started.json"] = started_json(
            spec, job.created_ms // 1000, repo_commit="", by_crier=True
        )
    job.artifacts["finished.json"] = crier_finished_json(completion // 1000, "error")


def _plan(
    ctx: _Context, setup: _Setup, build_id: str, at_ms: int, *, replaces: PodRun | None
) -> PodPlan:
    """Plan one pod attempt; only a first attempt gets the scenario's interruption."""
    rng, traits = ctx.rng, ctx.traits
    first = replaces is None
    avoid = None if replaces is None else replaces.node
    config = setup.spec.config
    test_ms = test_duration_ms(rng, config.median_test_s)
    node = rng.choice([n for n in ctx.fleet.nodes if n is not avoid])
    cut = round(test_ms * rng.uniform(0.1, 0.7))
    aborts = first and traits.interruption is Interruption.ABORT_RUNNING
    evicts = first and traits.interruption is Interruption.EVICTION
    unpullable = first and traits.interruption is Interruption.IMAGE_PULL_BACKOFF
    return PodPlan(
        uid=uuid4(rng),
        build_id=build_id,
        created_ms=at_ms,
        node=node,
        test_image=config.image,
        test_ms=test_ms,
        test_passes=traits.test_passes,
        clone_targets=setup.clone_targets,
        clone_env=setup.clone_env,
        head_time_s=at_ms // 1000 - rng.randrange(3600, 3 * 86400),
        abort_after_ms=cut if aborts else None,
        evict_after_ms=cut if evicts else None,
        image_unpullable=unpullable,
    )


def _pod_files(spec: JobSpec, pod: PodRun) -> dict[str, bytes]:
    """Files the pod's own utilities upload: clone records, started.json, finished.json."""
    files: dict[str, bytes] = {}
    if pod.clone is not None:
        records = (
            [_untimed(record) for record in pod.clone.records]
            if spec.legacy
            else list(pod.clone.records)
        )
        files["clone-records.json"] = go_json(records)
    if pod.started_json_ms is not None:
        main_sha = pod.clone.final_shas[0] if pod.clone is not None else ""
        files["started.json"] = started_json(
            spec, pod.started_json_ms // 1000, repo_commit=main_sha, by_crier=False
        )
    if pod.finished_json is not None:
        ms, passed, result = pod.finished_json
        by_initupload = not pod.main_runs  # initupload's FAILURE carries no revision
        files["finished.json"] = finished_json(
            ms // 1000,
            passed=passed,
            result=result,
            revision_="" if by_initupload else revision(spec.refs),
        )
    files.update(junit_files(pod))
    return files


def _untimed(record: dict[str, Any]) -> dict[str, Any]:
    """Return a clone record as clonerefs wrote it before Aug 2022: no durations at all."""
    out = {key: value for key, value in record.items() if key != "duration"}
    if "commands" in record:
        out["commands"] = [
            {key: value for key, value in command.items() if key != "duration"}
            for command in record["commands"]
        ]
    return out


@dataclass(frozen=True, slots=True)
class _Ending:
    state: str
    state_ms: int
    completion_ms: int
    build_id: str
    revivals: int
    pod: PodRun | None


def _run(ctx: _Context, setup: _Setup, job: _Job, build_id: str, pending_ms: int) -> None:
    rng, spec = ctx.rng, setup.spec
    pod_name = spec.name if spec.agent == "kubernetes" else ""  # other agents run no pod
    pending = Status(
        "pending",
        job.created_ms,
        pending_ms=pending_ms,
        description="Job triggered.",
        build_id=build_id,
        pod_name=pod_name,
        has_url=True,
        prev_report_states=_prev_states(spec, "triggered", with_gcs=False),
        resource_version=_resource_version(pending_ms),
    )
    job.report(rng, pending, pending_ms)
    if ctx.traits.interruption is Interruption.ABORT_PENDING:
        ending = _abort_pending(rng, job, pending_ms)
    elif ctx.traits.interruption is Interruption.POD_PENDING_TIMEOUT:
        ending = _pending_timeout(rng, job, pending_ms)
    elif spec.agent != "kubernetes":
        ending = _pipeline_run(ctx, job, pending_ms)
    else:
        ending = _run_pods(ctx, setup, job, pending, build_id)
    description = {
        "success": "Job succeeded.",
        "failure": "Job failed.",
        "aborted": "Job triggered.",  # aborting leaves plank's description as it was
        "error": "Pod pending timeout.",
    }[ending.state]
    previous = _prev_states(spec, "pending", with_gcs=True)
    if ending.state == "aborted":  # TerminateOlderJobs marks the GitHub report itself
        previous = tuple((n, "aborted" if n == "github-reporter" else s) for n, s in previous)
    terminal = Status(
        ending.state,
        job.created_ms,
        pending_ms=pending_ms,
        completion_ms=ending.completion_ms,
        description=description,
        build_id=ending.build_id,
        pod_name=pod_name,
        has_url=True,
        revivals=ending.revivals,
        prev_report_states=previous,
        resource_version=_resource_version(ending.completion_ms),
    )
    job.report(rng, terminal, max(ending.state_ms, ending.completion_ms))
    job.build_id = ending.build_id
    if ending.pod is not None and ctx.traits.podinfo:
        snapshot = ending.completion_ms + uniform_ms(rng, 300, 4000)
        job.artifacts["podinfo.json"] = podinfo_json(rng, spec, ending.pod, snapshot)


def _abort_pending(rng: random.Random, job: _Job, pending_ms: int) -> _Ending:
    """Aborted seconds after the pod was created; crier writes the started/finished files."""
    abort_ms = pending_ms + uniform_ms(rng, 1500, 6000)
    completion = abort_ms + uniform_ms(rng, 60, 450)
    job.artifacts["started.json"] = started_json(
        job.spec, job.created_ms // 1000, repo_commit="", by_crier=True
    )
    job.artifacts["finished.json"] = crier_finished_json(completion // 1000, "aborted")
    build_id = job.statuses[-1][0].build_id
    return _Ending("aborted", abort_ms, completion, build_id, 0, None)


def _pending_timeout(rng: random.Random, job: _Job, pending_ms: int) -> _Ending:
    """End a pod that never left Pending: plank errors the job after its pending timeout."""
    error_ms = pending_ms + PENDING_TIMEOUT_MS + uniform_ms(rng, 1000, 30_000)
    completion = error_ms
    job.artifacts["started.json"] = started_json(
        job.spec, job.created_ms // 1000, repo_commit="", by_crier=True
    )
    job.artifacts["finished.json"] = crier_finished_json(completion // 1000, "error")
    build_id = job.statuses[-1][0].build_id
    return _Ending("error", error_ms, completion, build_id, 0, None)


def _pipeline_run(ctx: _Context, job: _Job, pending_ms: int) -> _Ending:
    """Run a ``tekton-pipeline`` job: a PipelineRun runs it; only crier writes files for it."""
    rng = ctx.rng
    completion = pending_ms + test_duration_ms(rng, job.spec.config.median_test_s)
    state = "success" if ctx.traits.test_passes else "failure"
    job.artifacts["started.json"] = started_json(
        job.spec, job.created_ms // 1000, repo_commit="", by_crier=True
    )
    job.artifacts["finished.json"] = crier_finished_json(completion // 1000, state)
    build_id = job.statuses[-1][0].build_id
    return _Ending(state, completion, completion, build_id, 0, None)


def _run_pods(ctx: _Context, setup: _Setup, job: _Job, pending: Status, build_id: str) -> _Ending:
    rng, spec = ctx.rng, setup.spec
    pod = run_pod(rng, _plan(ctx, setup, build_id, pending.pending_ms or 0, replaces=None))
    revivals = 0
    if ctx.traits.interruption is Interruption.EVICTION:
        # Plank counts a revival, deletes the pod and starts a new one with a new build ID; the
        # first build's folder keeps what its pod uploaded and the pending prowjob.json.
        abandoned = _pod_files(spec, pod)
        abandoned["prowjob.json"] = go_json(prowjob(spec, pending), indent=True)
        job.abandoned[spec.folder(build_id)] = abandoned
        revivals = 1
        retry_ms = pod.ended_ms + uniform_ms(rng, 2000, 30_000)
        build_id = str(snowflake_id(retry_ms, rng.choice((0, 0, 1))))
        pod = run_pod(rng, _plan(ctx, setup, build_id, retry_ms, replaces=pod))
    job.artifacts.update(_pod_files(spec, pod))
    if pod.waiting and pod.deletion_ms is not None:  # pending timeout: plank errors, deletes
        job.artifacts["finished.json"] = crier_finished_json(pod.deletion_ms // 1000, "error")
        return _Ending("error", pod.deletion_ms, pod.deletion_ms, build_id, revivals, pod)
    if pod.deletion_ms is not None:  # aborted mid-run: TerminateOlderJobs, then plank deletes
        abort_ms = pod.deletion_ms - uniform_ms(rng, 50, 400)
        completion = pod.deletion_ms + uniform_ms(rng, 5, 60)
        return _Ending("aborted", abort_ms, completion, build_id, revivals, pod)
    completion = pod.ended_ms + uniform_ms(rng, 300, 5000)
    state = "success" if pod.phase == "Succeeded" else "failure"
    return _Ending(state, completion, completion, build_id, revivals, pod)


def _freeze(scenario: Scenario, job: _Job, secrets: tuple[str, ...]) -> SyntheticJob:
    spec = job.spec
    versions = {
        status.state: go_json(prowjob(spec, status), indent=True) for status, _ in job.statuses
    }
    final = job.statuses[-1][0]
    if job.build_id:
        job.artifacts["prowjob.json"] = versions[final.state]
    messages = tuple(
        Published(_utc(publish_ms), report_message(spec, status))
        for status, publish_ms in job.statuses
    )
    return SyntheticJob(
        uid=spec.name,
        job_name=spec.config.name,
        job_type=str(spec.job_type),
        build_id=job.build_id,
        gcs_path=spec.folder(job.build_id) if job.build_id else "",
        url=spec.url(job.build_id) if final.has_url else "",
        scenario=scenario,
        artifacts=dict(sorted(job.artifacts.items())),
        messages=messages,
        prowjob_versions=versions,
        abandoned_artifacts=job.abandoned,
        planted_secrets=secrets,
    )


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)
