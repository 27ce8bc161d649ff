"""``prowtrace demo --metrics``: the worker's CI/CD metrics, summed into a small table."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from rich.console import Console

from processor.core.metrics import RUN_DURATION, RUN_ERRORS, MetricPoint
from processor.export.metrics import build_metrics
from processor.tools.demo import DemoOptions, run_demo
from processor.tools.demo.report import MetricRow, metric_rows

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_rows_sum_over_job_names_by_state_result_and_error() -> None:
    """Two jobs' executing failures merge into one row: counts and seconds add up."""
    reader = InMemoryMetricReader()
    metrics = build_metrics({}, readers=[reader])
    failed = {"cicd.pipeline.run.state": "executing", "cicd.pipeline.result": "failure"}
    metrics.record(
        [
            MetricPoint(RUN_DURATION, 60.0, {"cicd.pipeline.name": "a", **failed}),
            MetricPoint(RUN_DURATION, 30.0, {"cicd.pipeline.name": "b", **failed}),
            MetricPoint(RUN_ERRORS, 1, {"cicd.pipeline.name": "a", "error.type": "test_failed"}),
        ]
    )
    rows = metric_rows(reader.get_metrics_data())
    metrics.shutdown()
    assert rows == [
        MetricRow(RUN_DURATION, "executing failure", 2, 90.0),
        MetricRow(RUN_ERRORS, "test_failed", 1),
    ]


@pytest.mark.emulator
def test_demo_prints_the_metrics_of_every_job_it_traced(tmp_path: Path) -> None:
    """With --metrics the demo ends with the table; every traced job ran once, pending once."""
    out = io.StringIO()
    options = DemoOptions(jobs=12, seed=11, output=tmp_path / "traces.jsonl", metrics=True)
    (tmp_path / "tmp").mkdir()
    result = run_demo(
        options,
        Console(file=out, width=120, color_system=None),
        temp_parent=tmp_path / "tmp",
        now=lambda: NOW,
    )
    printed = out.getvalue()
    table = printed.split("CI/CD metrics", 1)[1].split("\n\n", 1)[0]
    counts = {
        state: sum(
            int(line.split()[-2])  # duration rows end with the count, then the mean
            for line in table.splitlines()
            if line.startswith("pipeline.run.duration") and line.split()[1] == state
        )
        for state in ("pending", "executing")
    }
    assert counts == {"pending": result.traces, "executing": result.traces}
