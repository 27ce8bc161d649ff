"""Test spans meet the real corpus: a real Prow run's artifacts, real JUnit files beside them."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from processor.artifacts.mirror import MirrorArtifactStore
from processor.core import semconv as sc
from processor.core.message import Delivery
from processor.export.otel import SpanConverter
from processor.pipeline import Outcome, Pipeline, PipelineSettings

DATA = Path(__file__).parents[1] / "data"
RUN = "kubernetes-jenkins/pr-logs/pull/93264/pull-kubernetes-bazel-test/1285311849058799623"
"""A real presubmit with podinfo.json (see real-prow/SOURCES.md): containers test and sidecar."""
JUNIT = {
    "artifacts/junit_runner.xml": "kubetest_junit_runner_kettle-standard.xml",
    "artifacts/junit_bazel.xml": "go-junit-report-v2_real-run_securosys-hcvault.xml",
}
"""kubetest's runner file came from a real Prow run; the Go file from a real go-junit-report run."""


def trace(tmp_path: Path, *, junit: bool, settings: PipelineSettings) -> list[ReadableSpan]:
    """Process the run's terminal message over a mirror copy of its folder (plus JUnit files)."""
    folder = tmp_path / RUN
    shutil.copytree(DATA / "real-prow" / "mirror" / RUN, folder)
    if junit:
        for name, source in JUNIT.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(DATA / "real-junit" / "files" / source, folder / name)
    prowjob = json.loads((folder / "prowjob.json").read_text())
    message = {
        "status": prowjob["status"]["state"],
        "url": prowjob["status"]["url"],
        "gcs_path": f"gs://{RUN}/",
        "refs": [prowjob["spec"]["refs"]],
        "job_type": prowjob["spec"]["type"],
        "job_name": prowjob["spec"]["job"],
    }
    exporter = InMemorySpanExporter()
    pipeline = Pipeline(
        MirrorArtifactStore(tmp_path),
        exporter,
        SpanConverter(Resource.create({"service.name": "prowtrace-test"})),
        settings,
    )
    publish = datetime(2020, 7, 20, 21, 0, tzinfo=UTC)
    result = pipeline.handle(Delivery(data=json.dumps(message).encode(), publish_time=publish))
    assert result.outcome is Outcome.EXPORTED, result.reason
    return list(exporter.get_finished_spans())


def test_real_run_gets_test_spans_under_its_test_container(tmp_path: Path) -> None:
    """Suites hang under container/test, every case inside its suite and the container."""
    spans = trace(tmp_path, junit=True, settings=PipelineSettings())
    by_id = {span.context.span_id: span for span in spans if span.context}
    container = next(span for span in spans if span.name == "container/test")
    suites = [s for s in spans if s.attributes and sc.TEST_SUITE_NAME in s.attributes]
    cases = [s for s in spans if s.attributes and sc.TEST_CASE_NAME in s.attributes]
    assert container.context is not None
    assert {suite.parent.span_id for suite in suites if suite.parent} == {container.context.span_id}
    assert len(cases) == 8 + 292
    for span in suites + cases:
        assert span.parent is not None
        parent = by_id[span.parent.span_id]
        times = (parent.start_time, span.start_time, span.end_time, parent.end_time)
        assert None not in times
        assert list(times) == sorted(times)  # type: ignore[type-var]


def test_real_run_without_junit_is_unchanged_by_the_setting(tmp_path: Path) -> None:
    """A real run that uploaded no JUnit traces the same with test spans on and off."""
    on = trace(tmp_path / "on", junit=False, settings=PipelineSettings())
    off = trace(tmp_path / "off", junit=False, settings=PipelineSettings(junit=None))
    assert [(s.name, s.attributes, s.start_time) for s in on] == [
        (s.name, s.attributes, s.start_time) for s in off
    ]
