"""CI/CD metrics end to end: pipeline -> metrics SDK -> OTLP (real gRPC, real HTTP) -> receiver.

The fault-free stream must give exactly the corpus's truth (support.metrics_truth: counts
and sums from the jobs' own prowjob.json), every attribute must be one the vendored semantic
conventions define, with the metrics' required attributes, and histogram points must carry
exemplars naming the job's trace. A metrics backend that is down must cost no trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from semconv_registry import CUSTOM_ERROR_TYPES, REGISTRY_DIR, load_registry, value_problem
from support.metrics_truth import (
    corpus_truth,
    count_differences,
    received_tallies,
)
from support.oracle import RecordingExporter, handle_published
from support.otlp_receiver import OtlpReceiver, ReceivedPoint

from processor.app import build_pipeline
from processor.config import Settings
from processor.core import semconv as sc
from processor.core.metrics import DURATION_BUCKETS, RUN_DURATION, SystemErrorType
from processor.export.metrics import MetricsRecorder, build_metrics
from processor.pipeline import Outcome
from processor.synthetic import SyntheticJob, generate, stream, write_mirror

JOBS = 60
METRIC_KINDS = {"histogram": "histogram", "counter": "sum"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[SyntheticJob], Path]:
    """Generate a synthetic fleet of every lifecycle and mirror its artifacts."""
    jobs = list(generate(JOBS, seed=14))
    mirror = tmp_path_factory.mktemp("metrics") / "mirror"
    write_mirror(jobs, mirror)
    return jobs, mirror


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """Run an OTLP receiver on real gRPC and HTTP ports."""
    with OtlpReceiver() as started:
        yield started


def _metrics_to(
    receiver: OtlpReceiver, protocol: str, monkeypatch: pytest.MonkeyPatch, **extra: str
) -> MetricsRecorder:
    """Build the recorder exactly as a deployment would, from the standard variables."""
    endpoint = (
        f"http://{receiver.grpc_endpoint}" if protocol == "grpc" else receiver.http_metrics_endpoint
    )
    env = {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        **extra,
    }
    for name, value in env.items():  # the OTLP exporter reads its settings from os.environ
        monkeypatch.setenv(name, value)
    return build_metrics(env)


def _run(jobs: list[SyntheticJob], mirror: Path, metrics: MetricsRecorder) -> RecordingExporter:
    """Feed the fleet's messages through a pipeline built by the composition root."""
    spans = RecordingExporter()
    settings = Settings(artifacts=str(mirror), grace=timedelta(0))
    pipeline = build_pipeline(settings, {}, exporter=spans, metrics=metrics)
    for message in stream(jobs):
        handle_published(pipeline, message)
    return spans


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_fault_free_counts_and_sums_equal_the_corpus_truth(
    fleet: tuple[list[SyntheticJob], Path],
    receiver: OtlpReceiver,
    protocol: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every job counts once per state, and duration sums equal the jobs' own times."""
    jobs, mirror = fleet
    metrics = _metrics_to(receiver, protocol, monkeypatch)
    _run(jobs, mirror, metrics)
    metrics.shutdown()
    truth = corpus_truth(jobs)
    assert count_differences(received_tallies(receiver.points()), truth) == []
    assert {state for _, _, state in truth} >= {sc.RUN_STATE_PENDING, sc.RUN_STATE_EXECUTING, ""}


def test_delta_temporality_preference_gives_the_same_totals(
    fleet: tuple[list[SyntheticJob], Path], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta is honoured and adds up the same."""
    jobs, mirror = fleet
    metrics = _metrics_to(
        receiver, "grpc", monkeypatch, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="delta"
    )
    half = len(jobs) // 2
    _run(jobs[:half], mirror, metrics)
    metrics.flush()
    _run(jobs[half:], mirror, metrics)
    metrics.shutdown()
    points = receiver.points()
    assert {point.temporality for point in points} == {1}  # AGGREGATION_TEMPORALITY_DELTA
    assert count_differences(received_tallies(points), corpus_truth(jobs)) == []


def _metric_definitions() -> dict[str, dict[str, Any]]:
    definitions = {}
    document = yaml.safe_load((REGISTRY_DIR / "cicd-metrics.yaml").read_text(encoding="utf-8"))
    for group in document["groups"]:
        definitions[group["metric_name"]] = group
    return definitions


def _attribute_problems(point: ReceivedPoint, definition: Mapping[str, Any]) -> list[str]:
    registry = load_registry(REGISTRY_DIR)
    system_errors = {str(error) for error in SystemErrorType}
    problems = []
    for key, value in point.attributes.items():
        known = registry.attributes.get(key)
        if known is None:
            problems.append(f"{point.metric}: {key} is not in the registry")
            continue
        problem = value_problem(known, value)
        if problem and not (key == sc.ERROR_TYPE and value in system_errors):
            problems.append(f"{point.metric}: {key}: {problem}")
    listed = {entry["ref"]: entry["requirement_level"] for entry in definition["attributes"]}
    problems.extend(
        f"{point.metric}: {key} is not one of the metric's attributes"
        for key in point.attributes
        if key not in listed
    )
    problems.extend(
        f"{point.metric}: required {key} is missing"
        for key, level in listed.items()
        if level == "required" and key not in point.attributes
    )
    return problems


def test_points_match_the_semantic_conventions(
    fleet: tuple[list[SyntheticJob], Path], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names, instruments, units and attributes are the vendored cicd-metrics.yaml's."""
    jobs, mirror = fleet
    metrics = _metrics_to(receiver, "grpc", monkeypatch)
    _run(jobs, mirror, metrics)
    metrics.record([])  # nothing: a no-op must not break anything
    metrics.shutdown()
    definitions = _metric_definitions()
    problems = []
    for point in receiver.points():
        definition = definitions[point.metric]
        problems.extend(_attribute_problems(point, definition))
        if (point.kind, point.unit) != (METRIC_KINDS[definition["instrument"]], definition["unit"]):
            problems.append(f"{point.metric}: {point.kind} in {point.unit}")
        failed = point.attributes.get(sc.CICD_PIPELINE_RESULT) in {"failure", "error", "timeout"}
        if point.metric == RUN_DURATION and failed != (sc.ERROR_TYPE in point.attributes):
            problems.append(f"error.type must be set iff the run failed: {point.attributes}")
        executing = point.attributes.get(sc.CICD_PIPELINE_RUN_STATE) == sc.RUN_STATE_EXECUTING
        if point.metric == RUN_DURATION and executing != (
            sc.CICD_PIPELINE_RESULT in point.attributes
        ):
            problems.append(f"result must be set iff the run ended: {point.attributes}")
    assert problems == []
    assert {point.metric for point in receiver.points()} == {
        "cicd.pipeline.run.duration",
        "cicd.pipeline.run.errors",
    }
    error_types = {point.attributes.get(sc.ERROR_TYPE) for point in receiver.points()}
    assert error_types - {None} <= CUSTOM_ERROR_TYPES | {sc.ERROR_OTHER}


def test_histograms_use_the_stated_buckets_and_link_exemplars_to_traces(
    fleet: tuple[list[SyntheticJob], Path], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duration points use DURATION_BUCKETS and carry exemplars naming this stream's traces."""
    jobs, mirror = fleet
    metrics = _metrics_to(receiver, "grpc", monkeypatch)
    spans = _run(jobs, mirror, metrics)
    metrics.shutdown()
    histograms = [point for point in receiver.points() if point.kind == "histogram"]
    assert {point.explicit_bounds for point in histograms} == {DURATION_BUCKETS}
    exemplars = [exemplar for point in histograms for exemplar in point.exemplars]
    span_keys = {(span.trace_id, span.span_id) for span in spans.spans()}
    assert exemplars
    assert {(trace_id, span_id) for trace_id, span_id, _ in exemplars} <= span_keys


def test_each_process_reports_its_own_series(
    fleet: tuple[list[SyntheticJob], Path], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two recorders (two instances) get different service.instance.id: no series merge."""
    jobs, mirror = fleet
    first = _metrics_to(receiver, "grpc", monkeypatch)
    second = _metrics_to(receiver, "grpc", monkeypatch)
    _run(jobs[:10], mirror, first)
    _run(jobs[10:20], mirror, second)
    first.shutdown()
    second.shutdown()
    instances = {point.resource["service.instance.id"] for point in receiver.points()}
    assert len(instances) == 2
    assert all(point.resource["service.name"] == "prow" for point in receiver.points())
    assert count_differences(received_tallies(receiver.points()), corpus_truth(jobs[:20])) == []


def test_metrics_outage_costs_no_trace(
    fleet: tuple[list[SyntheticJob], Path], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Metrics backend refusing and slow, exporting every 50 ms: every message still EXPORTED."""
    jobs, mirror = fleet
    receiver.refuse_metrics(grpc.StatusCode.UNAVAILABLE)
    receiver.set_metrics_delay(0.5)
    metrics = _metrics_to(
        receiver,
        "grpc",
        monkeypatch,
        OTEL_METRIC_EXPORT_INTERVAL="50",
        OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="5",
    )
    settings = Settings(artifacts=str(mirror), grace=timedelta(0))
    spans = RecordingExporter()
    pipeline = build_pipeline(settings, {}, exporter=spans, metrics=metrics)
    outcomes = {handle_published(pipeline, message).outcome for message in stream(jobs)}
    began = time.monotonic()
    metrics.shutdown()
    shutdown_seconds = time.monotonic() - began
    assert Outcome.RETRY not in outcomes
    assert Outcome.EXPORTED in outcomes
    assert receiver.refused_requests > 0, "the metrics exporter never met the outage"
    assert receiver.metric_requests == 0
    assert shutdown_seconds < 2 * 1.5, "the final flush outlived its bound"
    assert spans.spans()


def test_failed_span_export_counts_a_system_error(
    fleet: tuple[list[SyntheticJob], Path], receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message whose spans the exporter refused is one cicd.system.errors export_failed."""
    jobs, mirror = fleet
    metrics = _metrics_to(receiver, "grpc", monkeypatch)

    class Refusing(RecordingExporter):
        def export(self, spans: Any) -> Any:  # noqa: ANN401, ARG002 - the SDK's signature
            from opentelemetry.sdk.trace.export import SpanExportResult  # noqa: PLC0415

            return SpanExportResult.FAILURE

    settings = Settings(artifacts=str(mirror), grace=timedelta(0))
    pipeline = build_pipeline(settings, {}, exporter=Refusing(), metrics=metrics)
    results = [handle_published(pipeline, message) for message in stream(jobs[:5])]
    metrics.shutdown()
    retried = sum(result.outcome is Outcome.RETRY for result in results)
    errors = [
        point
        for point in receiver.points()
        if point.metric == "cicd.system.errors"
        and point.attributes[sc.ERROR_TYPE] == SystemErrorType.EXPORT_FAILED
    ]
    assert retried > 0
    assert [point.value for point in errors] == [retried]
    assert all(point.metric != RUN_DURATION for point in receiver.points())
