"""The demo's bundled stream: which jobs, when they ran, and that grace 0 is safe for them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.oracle import expected_spans

from processor.export.exporters import build_resource
from processor.synthetic import Scenario
from processor.tools.demo.fleet import (
    DEMO_SCENARIOS,
    FINISHED_BEFORE_NOW,
    SCENARIO_NOTES,
    build_fleet,
    demo_scenarios,
)

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
RESOURCE = build_resource({})


def test_the_default_fleet_has_one_job_per_demo_scenario(tmp_path: Path) -> None:
    """Twelve jobs, each scenario once, each its own complete trace."""
    fleet = build_fleet(12, 1, tmp_path, now=NOW)
    spans = expected_spans(fleet.messages, tmp_path, resource=RESOURCE)
    traces = {trace_id for trace_id, _ in spans}

    assert [job.scenario for job in fleet.jobs] == list(DEMO_SCENARIOS)
    assert len(traces) == 12
    assert set(fleet.scenario_by_trace) == traces


def test_the_fleet_covers_every_job_type_and_the_failure_modes() -> None:
    """The bundled stream shows every job type and a failure, aborts and clone trouble."""
    wanted = {
        Scenario.PRESUBMIT_FAILURE,
        Scenario.ABORTED_WHILE_RUNNING,
        Scenario.ABORTED_WHILE_PENDING,
        Scenario.FLAKY_CLONE,
        Scenario.CLONE_FAILURE,
        Scenario.POD_REVIVED,
        Scenario.MISSING_PODINFO,
        Scenario.PERIODIC_SUCCESS,
        Scenario.POSTSUBMIT_SUCCESS,
        Scenario.BATCH_SUCCESS,
    }

    assert wanted <= set(DEMO_SCENARIOS)


def test_every_scenario_has_a_note() -> None:
    """Each scenario has the one-line note printed above its waterfall."""
    assert set(SCENARIO_NOTES) == set(Scenario)


def test_more_jobs_cycle_through_the_scenarios() -> None:
    """Job i gets scenario i modulo the list."""
    scenarios = demo_scenarios(len(DEMO_SCENARIOS) + 2)

    assert scenarios[-2:] == list(DEMO_SCENARIOS[:2])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_fleet_finished_a_minute_before_now(tmp_path: Path, seed: int) -> None:
    """The last message went out FINISHED_BEFORE_NOW ago: recent, and all in the past."""
    fleet = build_fleet(12, seed, tmp_path, now=NOW)
    last = max(message.publish_time for message in fleet.messages)

    assert abs(last - (NOW - FINISHED_BEFORE_NOW)) < timedelta(milliseconds=2)


@pytest.mark.parametrize("seed", range(6))
def test_the_spans_do_not_depend_on_when_the_messages_are_published(
    tmp_path: Path, seed: int
) -> None:
    """Publishing now (compressed), not at crier's times, gives the same spans: artifacts rule."""
    fleet = build_fleet(12, seed, tmp_path, now=NOW)
    republished = [
        dataclasses.replace(message, publish_time=NOW + timedelta(seconds=index))
        for index, message in enumerate(fleet.messages)
    ]

    assert expected_spans(republished, tmp_path, resource=RESOURCE) == expected_spans(
        fleet.messages, tmp_path, resource=RESOURCE
    )


def test_the_timeline_is_how_long_crier_took_to_publish(tmp_path: Path) -> None:
    """From the first message to the last: minutes, for jobs that run for minutes."""
    fleet = build_fleet(12, 1, tmp_path, now=NOW)

    assert fleet.timeline == fleet.messages[-1].publish_time - fleet.messages[0].publish_time
    assert timedelta(minutes=5) < fleet.timeline < timedelta(hours=2)


def test_the_artifacts_are_written_under_the_mirror(tmp_path: Path) -> None:
    """Each job's prowjob.json is in the mirror at its gs:// path."""
    fleet = build_fleet(3, 5, tmp_path, now=NOW)

    for job in fleet.jobs:
        folder = job.gcs_path.removeprefix("gs://")
        assert (tmp_path / folder / "prowjob.json").is_file()
    assert fleet.artifact_files > 3


def test_zero_jobs_is_refused(tmp_path: Path) -> None:
    """The demo needs at least one job."""
    with pytest.raises(ValueError, match="at least one job"):
        build_fleet(0, 1, tmp_path, now=NOW)
