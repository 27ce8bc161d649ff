"""The demo's bundled stream: a small fleet of realistic Prow jobs and their artifacts.

The jobs come from the synthetic corpus (:mod:`processor.synthetic`), with scenarios chosen
to make telling waterfalls: every job type, a test failure, two aborts, a flaky and a failed
clone, an evicted pod revived under a new build ID, a job whose ``podinfo.json`` is missing.
Their timeline is moved to end a minute before ``now``, so a tracing UI's default "last hour"
search finds them. Publishing is compressed (the messages go out in a fraction of a second); the
artifacts carry the real times, and the spans are built from those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

from processor.synthetic import (
    DEFAULT_START,
    Published,
    Scenario,
    SyntheticJob,
    generate,
    stream,
    write_mirror,
)

DEMO_SCENARIOS = (
    Scenario.PRESUBMIT_SUCCESS,
    Scenario.PRESUBMIT_FAILURE,
    Scenario.POSTSUBMIT_SUCCESS,
    Scenario.PERIODIC_SUCCESS,
    Scenario.BATCH_SUCCESS,
    Scenario.FLAKY_CLONE,
    Scenario.CLONE_FAILURE,
    Scenario.ABORTED_WHILE_RUNNING,
    Scenario.POD_REVIVED,
    Scenario.MISSING_PODINFO,
    Scenario.ABORTED_WHILE_PENDING,
    Scenario.TOT_BUILD_ID,
)
"""One job of each, in this order (more jobs cycle through it). Every scenario yields a trace:
the two that never do (a job gangway rejects, a pod the API server refuses) are left out."""

SCENARIO_NOTES = {
    Scenario.PRESUBMIT_SUCCESS: "a presubmit that clones two repositories at once and passes",
    Scenario.PRESUBMIT_FAILURE: "a presubmit whose tests fail",
    Scenario.POSTSUBMIT_SUCCESS: "a postsubmit on a merged commit",
    Scenario.POSTSUBMIT_FAILURE: "a postsubmit whose tests fail",
    Scenario.PERIODIC_SUCCESS: "a periodic job, with nothing to clone",
    Scenario.BATCH_SUCCESS: "a tide batch testing several pull requests merged together",
    Scenario.ABORTED_WHILE_PENDING: "aborted seconds after its pod was created",
    Scenario.ABORTED_WHILE_RUNNING: "aborted mid-test by a newer push to its pull request",
    Scenario.ERROR_BEFORE_PENDING: "the API server refused its pod",
    Scenario.ERROR_EMPTY_JOB: "gangway could not find the job",
    Scenario.CLONE_FAILURE: "clonerefs cannot fetch a private repository, so the tests never run",
    Scenario.MISSING_PODINFO: "podinfo.json was never written, so fewer pod details",
    Scenario.TOT_BUILD_ID: "a postsubmit numbered by tot (a counter, not a snowflake ID)",
    Scenario.POD_REVIVED: "its pod was evicted mid-test and rerun under a new build ID",
    Scenario.FLAKY_CLONE: "a git fetch failed once and clonerefs retried it",
    Scenario.POD_PENDING_TIMEOUT: "its pod never left Pending: plank's pod pending timeout",
    Scenario.IMAGE_PULL_BACKOFF: "its test image never pulled (ImagePullBackOff): pending timeout",
    Scenario.TEKTON_PIPELINE: "a tekton-pipeline job: a PipelineRun, no pod to show",
    Scenario.LEGACY_ARTIFACTS: "written by an older Prow: no pendingTime, clone records untimed",
}
"""What each scenario shows, one line, printed above its waterfall."""

DEFAULT_JOBS = len(DEMO_SCENARIOS)
FINISHED_BEFORE_NOW = timedelta(minutes=1)


@dataclass(frozen=True)
class DemoFleet:
    """The jobs, crier's messages for them, and where their artifacts are."""

    jobs: tuple[SyntheticJob, ...]
    messages: tuple[Published, ...]
    """In publish order."""
    mirror_root: Path
    artifact_files: int

    @property
    def timeline(self) -> timedelta:
        """How long crier took to publish the stream (the demo publishes it at once)."""
        if not self.messages:
            return timedelta(0)
        return self.messages[-1].publish_time - self.messages[0].publish_time

    @cached_property
    def scenario_by_trace(self) -> dict[str, Scenario]:
        """Trace ID (the ProwJob UID without dashes) -> the job's scenario."""
        return {job.uid.replace("-", ""): job.scenario for job in self.jobs}


def demo_scenarios(n_jobs: int) -> list[Scenario]:
    """Return the scenario of each of ``n_jobs`` jobs: the demo's list, cycled."""
    return [DEMO_SCENARIOS[index % len(DEMO_SCENARIOS)] for index in range(n_jobs)]


def anchored_start(n_jobs: int, seed: int, now: datetime) -> datetime:
    """Return the start that makes the fleet's last message go out ``FINISHED_BEFORE_NOW`` ago.

    Arrival gaps and run times depend on the seed only, not on the start, so one dry run at the
    corpus' default start measures how long the fleet runs.
    """
    dry_run = list(generate(n_jobs, seed, scenarios=demo_scenarios(n_jobs)))
    last = max(message.publish_time for job in dry_run for message in job.messages)
    return now - FINISHED_BEFORE_NOW - (last - DEFAULT_START)


def build_fleet(n_jobs: int, seed: int, mirror_root: Path, *, now: datetime) -> DemoFleet:
    """Generate the fleet and write its artifacts under ``mirror_root``."""
    if n_jobs < 1:
        raise ValueError(f"the demo needs at least one job, got {n_jobs}")
    start = anchored_start(n_jobs, seed, now)
    jobs = tuple(generate(n_jobs, seed, start=start, scenarios=demo_scenarios(n_jobs)))
    mirror_root.mkdir(parents=True, exist_ok=True)
    files = write_mirror(jobs, mirror_root)
    return DemoFleet(jobs, tuple(stream(jobs)), mirror_root, files)
