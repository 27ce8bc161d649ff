"""``run_demo`` end to end in this process: real Pub/Sub (emulator or in-process), real worker."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from demo_helpers import file_spans, is_alive, java_children, oracle, oracle_contents
from rich.console import Console
from support.oracle import trace_problems
from support.otlp_receiver import OtlpReceiver

from processor.export.otlp_json import read_otlp_json
from processor.tools.demo import DemoOptions, DemoResult, run_demo
from processor.tools.demo.pubsub_emulator import PubSubEmulator, find_launcher
from processor.tools.demo.run import DemoFailed, EmulatorMissing

SEED = 11
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@dataclass
class Run:
    """One finished demo: what it returned, what it printed, where it wrote."""

    result: DemoResult
    output: str
    traces_file: Path
    temp_parent: Path


def demo(
    tmp_path: Path,
    *,
    jobs: int = 12,
    keep: bool = False,
    emulator_factory: Callable[[], PubSubEmulator] = PubSubEmulator,
) -> Run:
    """Run the demo with its output captured and its temporary directory under ``tmp_path``."""
    temp_parent = tmp_path / "tmp"
    temp_parent.mkdir(exist_ok=True)
    traces_file = tmp_path / "traces.jsonl"
    out = io.StringIO()
    options = DemoOptions(jobs=jobs, seed=SEED, output=traces_file, keep=keep)
    result = run_demo(
        options,
        Console(file=out, width=120, color_system=None),
        temp_parent=temp_parent,
        emulator_factory=emulator_factory,
        now=lambda: NOW,
    )
    return Run(result, out.getvalue(), traces_file, temp_parent)


@pytest.fixture(scope="module")
def emulator_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Run the demo once on Google's emulator (a missing emulator fails here, never skips)."""
    find_launcher()  # raises EmulatorNotFound, naming the package, if it is not installed
    return demo(tmp_path_factory.mktemp("emulator-run"))


@pytest.mark.emulator
def test_the_emulator_run_uses_googles_emulator(emulator_run: Run) -> None:
    """The demo runs on Google's emulator and says where."""
    assert "Started Google's Pub/Sub emulator on 127.0.0.1:" in emulator_run.output


@pytest.mark.emulator
def test_the_emulator_run_writes_exactly_the_oracles_spans(
    emulator_run: Run, tmp_path: Path
) -> None:
    """The file parses into exactly the span set an in-process run of the stream produces."""
    expected = oracle(12, SEED, NOW, tmp_path)

    assert file_spans(emulator_run.traces_file) == oracle_contents(expected)
    assert emulator_run.result.traces == 12
    assert emulator_run.result.spans == len(expected)


@pytest.mark.emulator
def test_the_emulator_run_draws_a_waterfall_per_job(emulator_run: Run, tmp_path: Path) -> None:
    """Every job's trace is drawn: a heading, its title with the trace ID, its root row."""
    expected = oracle(12, SEED, NOW, tmp_path)
    trace_ids = {trace_id for trace_id, _ in expected}

    assert len(trace_ids) == 12
    for index in range(1, 13):
        assert f"Job {index} of 12" in emulator_run.output
    for trace_id in trace_ids:
        assert f"trace {trace_id}" in emulator_run.output


@pytest.mark.emulator
def test_the_emulator_run_leaves_no_java_process(emulator_run: Run) -> None:
    """The emulator's java process is gone once the demo returns, and no java child remains."""
    pid = emulator_run.result.emulator_pid

    assert pid is not None
    assert not is_alive(pid)
    assert java_children(os.getpid()) == []


@pytest.mark.emulator
def test_the_emulator_run_leaves_no_temporary_directory(emulator_run: Run) -> None:
    """The temporary directory (mirror, log) is removed."""
    assert list(emulator_run.temp_parent.iterdir()) == []


@pytest.mark.emulator
def test_failing_jobs_show_their_failing_test_case(emulator_run: Run) -> None:
    """Each job whose tests failed has a failing test case span, and the waterfall names it."""
    with emulator_run.traces_file.open(encoding="utf-8") as lines:
        spans = read_otlp_json(lines)
    failed_tests = {
        span.trace_id
        for span in spans
        if span.attributes.get("error.type") == "test_failed" and span.parent_span_id is None
    }
    failing_cases = [s for s in spans if s.attributes.get("test.case.result.status") == "fail"]
    assert failed_tests
    assert {span.trace_id for span in failing_cases} == failed_tests
    assert all(span.status_message for span in failing_cases)
    assert all(span.name in emulator_run.output for span in failing_cases)


@pytest.mark.emulator
def test_the_summary_names_the_file_and_the_next_commands(emulator_run: Run) -> None:
    """The closing lines give the counts, the file, and the show and Jaeger commands."""
    output = emulator_run.output
    spans = emulator_run.result.spans

    assert f"12 jobs traced, {spans} spans, every trace complete" in output
    assert f"Traces saved to {emulator_run.traces_file}" in output
    assert f"show {emulator_run.traces_file} --html out.html" in output
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318" in output


@pytest.mark.emulator
def test_keep_leaves_the_mirror_and_log_and_says_where(tmp_path: Path) -> None:
    """--keep keeps the temporary directory, with the bucket mirror and the worker's log."""
    run = demo(tmp_path, jobs=2, keep=True)
    kept = run.result.kept

    assert kept is not None
    assert (kept / "bucket-mirror" / "prow-artifacts").is_dir()
    assert (kept / "prowtrace.log").stat().st_size > 0
    assert str(kept) in run.output.replace("\n", "")


@pytest.mark.emulator
def test_the_otlp_endpoint_receives_the_same_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, that endpoint gets exactly the oracle's spans."""
    with OtlpReceiver() as receiver:
        base_url = receiver.http_endpoint.removesuffix("/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base_url)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
        run = demo(tmp_path)
        received = receiver.unique_spans()
    expected = oracle(12, SEED, NOW, tmp_path / "oracle")

    assert trace_problems(received, expected) == []
    assert run.result.delivery is not None
    assert run.result.delivery.ok
    assert f"Sent every span to {base_url}" in run.output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.emulator
def test_an_unreachable_endpoint_is_skipped_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listening at the endpoint: the demo says so and still writes every span."""
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    run = demo(tmp_path, jobs=3)

    assert f"Not sending to {endpoint}: nothing accepts connections" in run.output
    assert run.result.delivery is None
    assert file_spans(run.traces_file) == oracle_contents(oracle(3, SEED, NOW, tmp_path / "o"))


class _InterruptedWhileStarting(PubSubEmulator):
    """The real emulator, with Ctrl-C pressed the moment it is ready."""

    started_pid: int | None = None

    def start(self) -> _InterruptedWhileStarting:
        super().start()
        _InterruptedWhileStarting.started_pid = self.pid
        raise KeyboardInterrupt


@pytest.mark.emulator
def test_ctrl_c_stops_the_emulator_and_removes_the_files(tmp_path: Path) -> None:
    """A Ctrl-C mid-run propagates only after the emulator is killed and the files removed."""
    with pytest.raises(KeyboardInterrupt):
        demo(tmp_path, emulator_factory=_InterruptedWhileStarting)
    pid = _InterruptedWhileStarting.started_pid

    assert pid is not None
    assert not is_alive(pid)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "traces.jsonl").exists()


def _missing_emulator(tmp_path: Path) -> Callable[[], PubSubEmulator]:
    """Return an emulator whose launcher exits at once, as a broken install does."""
    launcher = tmp_path / "cloud-pubsub-emulator"
    launcher.write_text("#!/bin/sh\necho 'simulated launcher failure' >&2\nexit 3\n")
    launcher.chmod(0o755)
    return lambda: PubSubEmulator(launcher=launcher, startup_timeout=5)


def test_without_the_emulator_the_fleet_is_kept_for_replay(tmp_path: Path) -> None:
    """An emulator that cannot start: no fake Pub/Sub; the jobs are written and kept instead."""
    with pytest.raises(EmulatorMissing) as missing:
        demo(tmp_path, jobs=2, emulator_factory=_missing_emulator(tmp_path))

    assert "did not start (exited with status 3)" in missing.value.reason
    assert missing.value.fleet_dir.parent == tmp_path / "tmp"
    assert len(missing.value.messages.read_text().splitlines()) > 2
    assert (missing.value.mirror / "prow-artifacts").is_dir()
    assert not (tmp_path / "traces.jsonl").exists()


def test_the_offered_replay_traces_the_same_spans_as_the_demo(tmp_path: Path) -> None:
    """Run the replay command the demo offers: it writes exactly the oracle's spans."""
    with pytest.raises(EmulatorMissing) as missing:
        demo(tmp_path, emulator_factory=_missing_emulator(tmp_path))
    output = tmp_path / "replayed.jsonl"
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["OTEL_TRACES_EXPORTER"] = "none"  # as the offered command sets it
    command = [sys.executable, "-m", "processor", "replay", "--artifacts-mirror"]
    command += [str(missing.value.mirror), "--otlp-json", str(output), str(missing.value.messages)]

    result = subprocess.run(  # noqa: S603 - our own entry point, fixed arguments
        command, env=env, capture_output=True, text=True, check=False, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert file_spans(output) == oracle_contents(oracle(12, SEED, NOW, tmp_path / "oracle"))


@pytest.mark.emulator
def test_a_failure_is_reported_with_the_workers_log_and_cleans_up(tmp_path: Path) -> None:
    """An output path that vanished before the final move fails the run, leaving nothing."""
    target_dir = tmp_path / "gone"
    target_dir.mkdir()
    temp_parent = tmp_path / "tmp"
    temp_parent.mkdir()
    options = DemoOptions(jobs=1, seed=SEED, output=target_dir / "x" / "t.jsonl")

    with pytest.raises(DemoFailed) as failure:
        run_demo(options, Console(file=io.StringIO()), temp_parent=temp_parent, now=lambda: NOW)

    assert "t.jsonl" in str(failure.value)
    assert '"message"' in failure.value.log_tail  # the worker's per-message log lines
    assert list(temp_parent.iterdir()) == []
