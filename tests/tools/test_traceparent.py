"""``prowtrace traceparent``: job code that uses it lands under the job's root span."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from support.oracle import RecordingExporter, handle_published

from processor.artifacts.mirror import MirrorArtifactStore
from processor.core.ids import IdMode
from processor.export.otel import SpanConverter
from processor.export.otlp_json import DecodedSpan
from processor.pipeline import Pipeline, PipelineSettings
from processor.synthetic import Scenario, SyntheticJob, generate, write_mirror


def _traceparent(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "processor", "traceparent", *args],
        env={key: value for key, value in os.environ.items() if key != "PROWTRACE_ID_MODE"} | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _pod_env(job: SyntheticJob) -> dict[str, str]:
    return {"PROW_JOB_ID": job.uid, "JOB_NAME": job.job_name, "BUILD_ID": job.build_id}


def _job_code_span(traceparent: str, recorder: RecordingExporter) -> None:
    """Do what a job's test code does: continue the context from TRACEPARENT and make a span."""
    provider = TracerProvider(resource=Resource({"service.name": "e2e-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(recorder))
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    with provider.get_tracer("job").start_as_current_span("go test ./...", context=context):
        pass
    provider.shutdown()


def _run_job(job: SyntheticJob, mirror: Path, mode: IdMode) -> list[DecodedSpan]:
    recorder = RecordingExporter()
    pipeline = Pipeline(
        MirrorArtifactStore(mirror),
        recorder,
        SpanConverter(Resource({"service.name": "prow"})),
        PipelineSettings(id_mode=mode, grace=timedelta(0)),
    )
    for published in job.messages:
        handle_published(pipeline, published)
    return recorder.spans()


@pytest.mark.parametrize("mode", [IdMode.UID, IdMode.BUILD_ID])
def test_job_code_span_is_a_child_of_the_jobs_root(mode: IdMode, tmp_path: Path) -> None:
    """A span started from the printed traceparent has the job's root span as its parent."""
    job = next(generate(1, seed=21, scenarios=[Scenario.PRESUBMIT_SUCCESS]))
    write_mirror([job], tmp_path)
    printed = _traceparent(_pod_env(job), "--id-mode", str(mode))
    assert printed.returncode == 0, printed.stderr
    job_code = RecordingExporter()
    _job_code_span(printed.stdout.strip(), job_code)
    (child,) = job_code.spans()
    (root,) = [span for span in _run_job(job, tmp_path, mode) if not span.parent_span_id]
    assert (child.trace_id, child.parent_span_id) == (root.trace_id, root.span_id)


def test_traceparent_agrees_with_the_pure_shell_one_liner() -> None:
    """The documented shell line for images without Python prints the same value."""
    job_id = "8f14e45f-ceea-467a-9575-2b9a5c1c2a1e"
    printed = _traceparent({"PROW_JOB_ID": job_id})
    shell = subprocess.run(
        ["/bin/bash", "-c", 't=${PROW_JOB_ID//-/}; echo "00-${t}-${t:0:16}-01"'],
        env={"PROW_JOB_ID": job_id},
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == shell.stdout


def test_traceparent_matches_istio_tracing_sh_ids_but_is_sampled() -> None:
    """Same trace and parent IDs as Istio's tracing.sh ('01-t-t[0:16]-00'), flags 01 (sampled)."""
    job_id = "8f14e45f-ceea-467a-9575-2b9a5c1c2a1e"
    trace = job_id.replace("-", "")
    istio = f"01-{trace}-{trace[:16]}-00"
    ours = _traceparent({"PROW_JOB_ID": job_id}).stdout.strip()
    assert ours.split("-")[1:3] == istio.split("-")[1:3]
    assert ours.startswith("00-")
    assert ours.endswith("-01")


def test_export_flag_prints_a_shell_statement() -> None:
    """--export prints a line a shell can eval."""
    printed = _traceparent({"PROW_JOB_ID": "8f14e45f-ceea-467a-9575-2b9a5c1c2a1e"}, "--export")
    assert printed.stdout.startswith("export TRACEPARENT=00-8f14e45fceea467a95752b9a5c1c2a1e-")


def test_outside_a_prow_pod_it_says_what_is_missing() -> None:
    """Without PROW_JOB_ID: exit 2 and a message naming the variable."""
    printed = _traceparent({"PROW_JOB_ID": ""})
    assert printed.returncode == 2
    assert "PROW_JOB_ID is not set" in printed.stderr
