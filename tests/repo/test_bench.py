"""The benchmarks: their arithmetic, the floor's fidelity, and a tiny run of each so none rots."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from bench import (
    cost,
    floor,
    freshness,
    junit,
    latency,
    machine,
    memory,
    proc,
    pull,
    push,
    queueing,
    throughput,
    workspace,
)
from bench.__main__ import QUICK, render, run
from bench.loadgen import LoadResult
from bench.stats import latency_summary, percentile
from processor.export.exporters import build_resource
from processor.export.otel import SpanConverter
from processor.pipeline import Pipeline, PipelineSettings

TINY_JOBS = 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> workspace.Workspace:
    """Return a workspace of a dozen jobs, shared by the smoke runs."""
    return workspace.prepare(
        tmp_path_factory.mktemp("bench"), small_jobs=TINY_JOBS, large_jobs=TINY_JOBS + 4
    )


@pytest.fixture
def cores() -> tuple[frozenset[int], frozenset[int]]:
    """Return the measured and helper cores of this machine."""
    split = machine.available_cores()
    return split.measured, split.helpers


def test_percentile_is_nearest_rank() -> None:
    """p50 and p99 of 1..100 are 50 and 99; p100 is the maximum."""
    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1)) == (
        50.0,
        99.0,
        100.0,
    )


def test_percentile_refuses_no_values() -> None:
    """An empty sample has no percentile."""
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_latency_summary_of_nothing_is_nan() -> None:
    """A run that got no answer reports NaN latencies and zero rate, not a crash."""
    summary = latency_summary([], 1.0)
    assert math.isnan(summary["p99_ms"])
    assert summary["requests_per_s"] == 0


def test_load_result_leaves_warmup_requests_out_of_latencies() -> None:
    """A request started before the measured window counts as completed, not as a latency."""
    result = LoadResult()
    result.record(204, started=1.0, measure_from=2.0)
    result.record(204, started=2.5, measure_from=2.0)
    result.record(None, started=3.0, measure_from=2.0)
    result.record(None, started=1.0, measure_from=2.0)
    assert (result.completed, len(result.latencies_ms), result.errors) == (2, 1, 1)
    assert result.statuses == {204: 1}


def test_split_cores_keeps_the_lowest_for_the_measured_side() -> None:
    """Core 0 is measured; the others are helpers."""
    split = machine.split_cores({0, 1, 2})
    assert (split.measured, split.helpers, split.shared) == (
        frozenset({0}),
        frozenset({1, 2}),
        False,
    )


def test_split_cores_shares_a_single_core() -> None:
    """With one core, helpers and the measured side share it (and say so)."""
    assert machine.split_cores({3}).shared


def test_cpu_model_reads_the_first_model_name() -> None:
    """The CPU model comes from /proc/cpuinfo's first ``model name`` line."""
    text = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nmodel name\t: other\n"
    assert machine.cpu_model(text) == "Example CPU @ 2.0GHz"


def test_memory_kib_parses_rss_and_peak() -> None:
    """VmRSS and VmHWM are read in KiB from /proc/PID/status."""
    status = "Name:\tpython\nVmHWM:\t  81234 kB\nVmRSS:\t  70000 kB\nThreads:\t4\n"
    assert proc.memory_kib(status) == {"VmHWM": 81234, "VmRSS": 70000}


def test_cost_adds_up_by_item() -> None:
    """Push cost: CPU and memory seconds, requests, Pub/Sub's 1,000-byte minimum, spans."""
    workload = cost.Workload(
        messages_per_job=3,
        spans_per_job=20,
        message_bytes=900,
        cpu_seconds_per_message=0.001,
        memory_gib=0.5,
    )
    priced = cost.cost_per_million_jobs(workload, cost.Prices(), push=True)
    assert priced["cloud_run_compute"] == pytest.approx(3000 * (0.000024 + 0.5 * 0.0000025))
    assert priced["cloud_run_requests"] == pytest.approx(3 * 0.40)
    assert priced["pubsub_delivery"] == pytest.approx(3e6 * 1000 / 2**40 * 40)
    assert priced["cloud_trace"] == pytest.approx(20 * 0.20)
    assert priced["total"] == pytest.approx(sum(v for k, v in priced.items() if k != "total"))


def test_pull_cost_has_no_request_charge() -> None:
    """Instance-based billing charges no requests and the lower CPU rate."""
    workload = cost.Workload(3, 20, 900, 0.001)
    priced = cost.cost_per_million_jobs(workload, cost.Prices(), push=False)
    assert priced["cloud_run_requests"] == 0
    assert priced["cloud_run_compute"] == pytest.approx(3000 * (0.000018 + 0.5 * 0.000002))


def test_floor_builds_exactly_the_request_the_pipeline_exports(
    tiny: workspace.Workspace,
) -> None:
    """The floor's one request is byte for byte the SDK encoding of every exported span."""
    deliveries = list(workspace.read_deliveries(tiny.small.path))
    recorder = floor._RecordingExporter()
    pipeline = Pipeline(
        floor._RecordingStore(tiny.mirror),
        recorder,
        SpanConverter(build_resource({})),
        PipelineSettings(grace=timedelta(0)),
    )
    for delivery in deliveries:
        pipeline.handle(delivery)
    planned = floor.plan(deliveries, tiny.mirror)
    request = floor.encode(planned, build_resource({}))
    assert request.SerializeToString() == encode_spans(recorder.spans).SerializeToString()
    assert sum(len(message.files) for message in planned) > len(planned)


def test_throughput_smoke(
    tiny: workspace.Workspace, cores: tuple[frozenset[int], frozenset[int]]
) -> None:
    """A one-round throughput run reports both rates and every span reaches the receiver."""
    result = throughput.measure(tiny.small, tiny.mirror, cores, rounds=1)
    assert result["spans_ok"]
    assert result["median"]["floor_msgs_per_s"] > 0
    assert result["median"]["concurrent_ratio"] > 0
    assert result["median"]["concurrent_no_test_spans_ratio"] > 0


def test_floor_without_test_spans_records_fewer_spans(tiny: workspace.Workspace) -> None:
    """With test spans off the floor copies a strict subset of each message's spans (by ID)."""
    deliveries = list(workspace.read_deliveries(tiny.small.path))
    with_tests = floor.plan(deliveries, tiny.mirror)
    bare = floor.plan(deliveries, tiny.mirror, test_spans=False)
    assert [m.data for m in bare] == [m.data for m in with_tests]
    for lean, full in zip(bare, with_tests, strict=True):
        assert {s.span_id for s in lean.spans} <= {s.span_id for s in full.spans}
    assert 0 < sum(len(m.spans) for m in bare) < sum(len(m.spans) for m in with_tests)


def test_push_smoke(
    tiny: workspace.Workspace, cores: tuple[frozenset[int], frozenset[int]], tmp_path: Path
) -> None:
    """``prowtrace serve`` acks every push (204) with group commit on and off."""
    plan = push.PushPlan(levels=(1, 4), duration=0.3, reference_duration=0.2, warmup=0.1)
    result = push.measure(tiny, cores, plan, tmp_path)
    for mode in ("group_commit_on", "group_commit_off"):
        assert result[f"{mode}_exit_status"] == 0
        for level in ("1", "4", "open_loop"):
            assert set(result[mode][level]["push"]["statuses"]) == {"204"}
    ideal = result["ideal_queue"]
    assert 0 < ideal["fifo_p50_ms"] <= ideal["fifo_p99_ms"]
    assert ideal["service_ms_mean"] > 0


def test_fifo_server_waits_as_the_m_d_1_formula_says() -> None:
    """Deterministic 1 ms at 60 % load: mean sojourn S + rho S / (2 (1 - rho)) = 1.75 ms."""
    sojourns = queueing.fifo_sojourns([0.001], 600.0, 200_000, seed=1)
    assert statistics.fmean(sojourns) == pytest.approx(0.00175, rel=0.03)


def test_processor_sharing_server_takes_s_over_one_minus_rho() -> None:
    """Processor sharing at 60 % load: mean sojourn S / (1 - rho) = 2.5 ms, whatever the sizes."""
    sizes = [0.0002, 0.0018]  # mean 1 ms, very unequal
    sojourns = queueing.ps_sojourns(sizes, 600.0, 200_000, seed=1)
    assert statistics.fmean(sojourns) == pytest.approx(0.0025, rel=0.05)


def test_processor_sharing_lets_short_requests_pass_long_ones() -> None:
    """Under sharing a 0.2 ms request is not stuck behind a 1.8 ms one: a lower median than FIFO."""
    sizes = [0.0002, 0.0018]
    fifo = sorted(queueing.fifo_sojourns(sizes, 600.0, 50_000, seed=2))
    shared = sorted(queueing.ps_sojourns(sizes, 600.0, 50_000, seed=2))
    assert shared[len(shared) // 2] < fifo[len(fifo) // 2]


@pytest.mark.emulator
def test_pull_smoke(
    tiny: workspace.Workspace, cores: tuple[frozenset[int], frozenset[int]], tmp_path: Path
) -> None:
    """``prowtrace pull`` drains the emulator's backlog into the receiver, span for span."""
    result = pull.measure(tiny, cores, timeout=60, logs=tmp_path)
    assert result["complete"]
    assert result["spans"] >= result["expected_spans"]


def test_memory_smoke(
    tiny: workspace.Workspace, cores: tuple[frozenset[int], frozenset[int]]
) -> None:
    """The replay child samples memory at each quarter and replays every line cleanly."""
    result = memory.measure(tiny.large, tiny.mirror, cores)
    assert result["ok"]
    assert [sample["jobs"] for sample in result["samples"]] == [4, 8, 12, 16]


@pytest.mark.emulator
def test_freshness_smoke(
    tiny: workspace.Workspace, cores: tuple[frozenset[int], frozenset[int]]
) -> None:
    """Every late job completes in every mode; holding nacks nothing, nack-and-backoff does."""
    plan = freshness.FreshnessPlan(
        jobs=4,
        rate=20.0,
        lag=freshness.LagModel(scale=0.05),
        single=2,
        backfill_seconds=0.5,
        backfill_concurrency=(1, 2),
    )
    result = freshness.measure(tiny.small.path, tiny.mirror, cores[1], plan)
    for mode in ("pull_hold", "push_hold", "push_nack"):
        assert result[mode]["completed"] == result[mode]["jobs"] > 0
    assert (result["pull_hold"]["nacked"], result["push_hold"]["nacked"]) == (0, 0)
    assert result["push_nack"]["nacked"] > 0
    assert result["one_message"]["speedup"] > 1
    with_tests, bare = (
        result["one_message"][key] for key in ("concurrent", "concurrent_no_test_spans")
    )
    assert with_tests["reads_floor_ms_p50"] >= bare["reads_floor_ms_p50"] > 0
    assert set(result["backfill"]) == {"1", "2"}


def test_reads_floor_of_one_get_is_the_models_median() -> None:
    """One GET alone: the floor is the model's p50."""
    assert latency.reads_floor_p50(latency.GCS_GET, 1, 0) == pytest.approx(0.030, rel=0.03)


def test_reads_floor_of_parallel_gets_is_the_median_of_their_maximum() -> None:
    """Five GETs at once end with the slowest: the median of the max of 5 log-normals."""
    model = latency.GCS_GET
    # P(max of 5 <= t) = 1/2  <=>  each is below t with probability 2^(-1/5).
    z = statistics.NormalDist().inv_cdf(0.5 ** (1 / 5))
    expected = model.p50 * math.exp(z * model.sigma)
    assert latency.reads_floor_p50(model, 5, 0) == pytest.approx(expected, rel=0.03)


def test_reads_floor_adds_the_second_wave_after_the_listing() -> None:
    """A listing then a read cost two round trips: between twice the median and twice the mean."""
    model = latency.GCS_GET
    one_after_another = latency.reads_floor_p50(model, 1, 1)
    assert 2 * model.p50 < one_after_another < 2 * model.mean
    assert latency.reads_floor_p50(model, 6, 1) > latency.reads_floor_p50(model, 6, 0)


def test_junit_smoke(
    tiny: workspace.Workspace, cores: tuple[frozenset[int], frozenset[int]], tmp_path: Path
) -> None:
    """Every variant exports; the 7,000-case file is capped; the 50 MiB file adds no span."""
    result = junit.measure(tmp_path, tiny.small, tiny.mirror, cores, rounds=1)
    rows = result["per_message"]
    assert {row["outcome"] for row in rows.values()} == {"exported"}
    assert rows["7,000-case e2e"]["spans"] > rows["no JUnit"]["spans"] + 900
    assert rows["hostile 50 MiB"]["spans"] == rows["no JUnit"]["spans"]
    assert result["throughput"]["cpu_ratio"] > 0
    assert "hostile at the limit" in "\n".join(junit.render(result))


def test_report_renders_every_section(tmp_path: Path) -> None:
    """A throughput-only run renders its table and a target verdict."""
    tiny_plan = QUICK.__class__(**{**QUICK.__dict__, "small_jobs": 8, "large_jobs": 8})
    report = run(tiny_plan, ("throughput",), tmp_path, mode="quick")
    text = render(report)
    assert "pipeline, serial (replay)" in text
    assert "pipeline >= 50% of the floor" in text


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    """Every benchmark helper process has ended when a test ends."""
    yield
    import multiprocessing  # noqa: PLC0415 - only for this check

    assert multiprocessing.active_children() == []
