"""``prowtrace backfill`` from the command line: real exporter, real output, exit statuses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from backfill_fixtures import BUCKET, corpus, expected, finished, folder_count
from support.oracle import assert_traces_complete
from support.otlp_receiver import OtlpReceiver, metric_totals

from processor.cli import main
from processor.config import load_settings
from processor.core.metrics import RUN_DURATION
from processor.synthetic import message_bytes, write_mirror
from processor.tools.backfill import backfill_settings

OTEL_VARIABLES = (
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "PROWTRACE_ARTIFACTS",
    "PROWTRACE_ID_MODE",
    "OTEL_METRICS_EXPORTER",
)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the corpus as a bucket mirror."""
    root = tmp_path_factory.mktemp("mirror")
    write_mirror(corpus(), root)
    return root


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove the OTEL_/PROWTRACE_ settings that would change the spans."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def receiver(clean_env: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """Run an OTLP receiver and point the exporter at it with the standard OTEL_ variables."""
    with OtlpReceiver() as running:
        clean_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
        clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", running.http_endpoint)
        yield running


def test_backfill_exports_the_oracles_spans_over_otlp(
    mirror: Path, receiver: OtlpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command traces every finished run to a real OTLP endpoint and exits 0."""
    status = main(["backfill", f"gs://{BUCKET}/", "--artifacts-mirror", str(mirror)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert_traces_complete(receiver.unique_spans(), expected())
    found = folder_count(corpus())
    sent = len(finished(corpus()))
    assert captured.out.startswith(f"backfill: {found} runs found in ")
    assert f": {sent} traced, {found - sent} skipped, 0 failed" in captured.out.splitlines()[0]
    assert f"backfill: {found}/{found} runs ({sent} traced" in captured.err


def _metrics_to(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.http_metrics_endpoint,
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    }.items():
        monkeypatch.setenv(name, value)


def test_backfill_with_metrics_counts_each_traced_run_once(
    mirror: Path, receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    """--metrics: one executing duration per traced run (backfill sends terminal states only)."""
    _metrics_to(receiver, clean_env)
    assert (
        main(["backfill", f"gs://{BUCKET}/", "--artifacts-mirror", str(mirror), "--metrics"]) == 0
    )
    states = [
        point.attributes["cicd.pipeline.run.state"]
        for point in receiver.points()
        if point.metric == RUN_DURATION
    ]
    counted = sum(
        count
        for (metric, _), (count, _) in metric_totals(receiver.points()).items()
        if metric == RUN_DURATION
    )
    assert (set(states), counted) == ({"executing"}, len(finished(corpus())))


def test_backfill_records_no_metrics_unless_asked(
    mirror: Path, receiver: OtlpReceiver, clean_env: pytest.MonkeyPatch
) -> None:
    """OTEL_METRICS_EXPORTER alone does not make backfill count history."""
    _metrics_to(receiver, clean_env)
    assert main(["backfill", f"gs://{BUCKET}/", "--artifacts-mirror", str(mirror)]) == 0
    assert receiver.metric_requests == 0


def test_dry_run_prints_crier_messages_and_sends_nothing(
    mirror: Path, receiver: OtlpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run writes each synthesized message as a JSON line; the summary goes to stderr."""
    status = main(
        ["backfill", f"gs://{BUCKET}/logs/", "--artifacts-mirror", str(mirror), "--dry-run"]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    runs = [job for job in finished(corpus()) if "/logs/" in job.gcs_path]
    assert sorted(captured.out.splitlines()) == sorted(
        message_bytes(job.messages[-1]).decode() for job in runs
    )
    assert f"{len(runs)} would be sent" in captured.err
    assert receiver.export_requests == 0


def test_failed_runs_make_exit_status_1(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that cannot be traced is listed in the summary and the command exits 1."""
    clean_env.setenv("OTEL_TRACES_EXPORTER", "none")
    folder = tmp_path / BUCKET / "logs" / "ci-broken" / "1"
    folder.mkdir(parents=True)
    (folder / "prowjob.json").write_text(json.dumps({"status": "done"}))
    status = main(["backfill", f"gs://{BUCKET}/logs", "--artifacts-mirror", str(tmp_path)])
    assert status == 1
    assert "malformed prowjob.json: status: expected an object" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["gs://b/logs", "--since", "last tuesday"], "--since/--until"),
        (["gs://b/logs", "--since", "1d", "--until", "2d"], "must be before --until"),
        (["gs://b/logs", "--publish", "my-topic"], "projects/PROJECT/topics/TOPIC"),
        (["gs://b/logs", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["gs://b/logs", "--job", "("], "not a regular expression"),
        (["/var/logs"], "prefix: "),
        (["gs://b/logs", "--artifacts", "none", "--id-mode", "build-id"], "not none"),
    ],
    ids=["since", "window", "topic", "concurrency", "job", "prefix", "no-store"],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(
    arguments: list[str],
    complaint: str,
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bad options are configuration errors: exit 2 and a message naming the option."""
    del clean_env
    if "--artifacts" not in arguments:
        arguments = [*arguments, "--artifacts-mirror", str(tmp_path)]
    assert main(["backfill", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("prowtrace backfill: configuration error: ")
    assert complaint in error


def test_missing_prefix_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """At least one PREFIX is required (argparse exits 2)."""
    with pytest.raises(SystemExit) as exited:
        main(["backfill"])
    assert exited.value.code == 2
    assert "PREFIX" in capsys.readouterr().err


def test_grace_is_zero_unless_given_on_the_command_line() -> None:
    """A deployment's PROWTRACE_GRACE_SECONDS is for live messages; --grace-seconds still wins."""
    settings = load_settings({"PROWTRACE_GRACE_SECONDS": "300", "PROWTRACE_ARTIFACTS": "gcs"})
    assert backfill_settings(settings, grace_given=False).grace == timedelta(0)
    assert backfill_settings(settings, grace_given=True).grace == timedelta(seconds=300)


def test_ctrl_c_finishes_runs_in_flight_prints_the_summary_and_exits_130(
    mirror: Path, receiver: OtlpReceiver
) -> None:
    """SIGINT to the real command: it stops finding runs, finishes those started, exits 130."""
    receiver.set_delay(0.1)  # each export takes a while, so the run is still going when hit
    command = [sys.executable, "-m", "processor", "backfill", f"gs://{BUCKET}/"]
    command += ["--artifacts-mirror", str(mirror)]
    with subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert receiver.wait_for(lambda r: r.export_requests > 0, timeout=20)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=20)
        finally:
            process.kill()
    assert process.returncode == 130, err
    headline = out.splitlines()[0]
    found = int(headline.removeprefix("backfill: ").split(" ", 1)[0])
    assert 0 < found < folder_count(corpus())
    assert "interrupted: " in out
    received = receiver.unique_spans()
    traced = {span.trace_id for span in received.values()}
    whole_traces = {key: span for key, span in expected().items() if span.trace_id in traced}
    assert_traces_complete(received, whole_traces)  # runs in flight were finished, not cut
