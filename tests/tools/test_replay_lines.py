"""``replay`` line by line: an invalid or hostile line never stops the lines after it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from opentelemetry.sdk.resources import Resource

from processor.core.ids import IdMode
from processor.core.message import Delivery
from processor.export.exporters import NullExporter
from processor.export.otel import SpanConverter
from processor.pipeline import Outcome, Pipeline, PipelineSettings, Result
from processor.tools.replay import replay

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _message(job: str, build_id: str) -> str:
    """Return a crier message for a finished job as one JSON line (surrogates escaped)."""
    return json.dumps(
        {
            "project": "p",
            "topic": "t",
            "runid": build_id,
            "status": "success",
            "url": f"https://prow.example/view/gs/b/logs/j/{build_id}",
            "gcs_path": f"gs://b/logs/j/{build_id}",
            "refs": [],
            "job_type": "periodic",
            "job_name": job,
            "message": "Job succeeded.",
        }
    )


def test_a_lone_surrogate_in_a_job_name_is_traced_and_the_next_lines_too() -> None:
    """ID hashing used to raise on a lone surrogate and end the replay; now every line is traced."""
    pipeline = Pipeline(
        None,
        NullExporter(),
        SpanConverter(Resource({})),
        PipelineSettings(id_mode=IdMode.BUILD_ID),
        clock=lambda: NOW,
    )
    lines = [_message("ok-1", "101"), _message("bad\ud800job", "102"), _message("ok-2", "103")]
    assert "\\ud800" in lines[1]

    summary = replay(lines, pipeline.handle, clock=lambda: NOW)

    assert summary.outcomes[Outcome.EXPORTED] == 3
    assert len(summary.traces) == 3


def test_a_handler_that_raises_fails_its_line_only() -> None:
    """A crash on one line is counted FAILED; the lines before and after are still handled."""
    seen: list[bytes] = []

    def handle(delivery: Delivery) -> Result:
        seen.append(delivery.data)
        if b"boom" in delivery.data:
            raise RuntimeError("boom")
        return Result(Outcome.SKIPPED)

    summary = replay(['{"a": 1}', '{"boom": 1}', '{"c": 1}'], handle, clock=lambda: NOW)

    assert len(seen) == 3
    assert summary.outcomes == {Outcome.SKIPPED: 2, Outcome.FAILED: 1}
