"""``prowtrace replay --metrics`` on the real-Prow corpus: metrics only when asked, and right.

The truth is read from the corpus itself: which states crier published for which job folder
(messages.jsonl), and each run's times from its prowjob.json (second precision, so each sum may
differ by up to a second per run from what a snowflake build ID gives to the millisecond). The
pending instant is ``pendingTime``, else the snowflake build ID's instant if it falls inside the
run; a job with neither (the 2018 tot-numbered run) has no known pending instant, so it gives no
``pending`` point and its ``executing`` time runs from creation.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.otlp_receiver import OtlpReceiver, metric_totals

from processor.core import semconv as sc
from processor.core.metrics import RUN_DURATION, SYSTEM_ERRORS

REAL = Path(__file__).parents[1] / "data" / "real-prow"
TERMINAL = {"success", "failure", "aborted", "error"}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """Run an OTLP receiver on real gRPC and HTTP ports."""
    with OtlpReceiver() as started:
        yield started


def _messages() -> list[dict[str, Any]]:
    messages = []
    for line in (REAL / "messages.jsonl").read_text(encoding="utf-8").splitlines():
        document = json.loads(line)
        if isinstance(document.get("message"), dict):  # a push envelope
            document = json.loads(base64.b64decode(document["message"]["data"]))
        messages.append(document)
    return messages


def _prowjob(gcs_path: str) -> dict[str, Any] | None:
    path = REAL / "mirror" / gcs_path.removeprefix("gs://").rstrip("/") / "prowjob.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


SNOWFLAKE_EPOCH_MS = 1288834974657
"""bwmarrin/snowflake's default epoch, which plank's build IDs use (prow.md, "Build IDs")."""


def _pending_instant(status: dict[str, Any]) -> str | None:
    """Return when the run went pending: ``pendingTime``, else a snowflake build ID in the run."""
    if status.get("pendingTime"):
        return str(status["pendingTime"])
    build_id = str(status.get("build_id", ""))
    if len(build_id) != 19 or not build_id.isdigit():  # tot's counters carry no time
        return None
    instant = datetime.fromtimestamp(((int(build_id) >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)
    start = datetime.fromisoformat(status["startTime"])
    end = datetime.fromisoformat(status["completionTime"])
    return instant.isoformat() if start <= instant <= end else None


def _truth() -> dict[tuple[str, str], tuple[int, float]]:
    """(job, state) -> (runs, seconds) from messages.jsonl and the mirrored prowjob.json."""
    truth: dict[tuple[str, str], tuple[int, float]] = {}
    for message in _messages():
        prowjob = _prowjob(message.get("gcs_path", "")) if message.get("gcs_path") else None
        if prowjob is None:
            continue
        status, name = prowjob["status"], prowjob["spec"]["job"]
        pending = _pending_instant(status)
        if message["status"] == "pending":
            if pending is None:  # no queue span, so no queue time: nothing invented
                continue
            key, value = (name, "pending"), _seconds(status["startTime"], pending)
        elif message["status"] in TERMINAL:
            begin = pending or status["startTime"]
            key, value = (name, "executing"), _seconds(begin, status["completionTime"])
        else:
            continue
        count, total = truth.get(key, (0, 0.0))
        truth[key] = (count + 1, total + value)
    return truth


def _replay(receiver: OtlpReceiver, *flags: str) -> str:
    """Run ``prowtrace replay`` on the real corpus as a process; return its standard output."""
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://{receiver.grpc_endpoint}",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    }
    done = subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "processor", "replay", *flags,
         "--artifacts-mirror", str(REAL / "mirror"), str(REAL / "messages.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    # Exit 1: the corpus's three lines with an unusable gcs_path cannot be traced.
    assert done.returncode == 1, done.stderr
    return done.stdout


def test_replay_records_metrics_only_when_asked(receiver: OtlpReceiver) -> None:
    """OTEL_METRICS_EXPORTER alone does not make replay count history: --metrics does."""
    _replay(receiver)
    assert receiver.metric_requests == 0


def test_real_corpus_counts_every_traced_run_once_per_state(receiver: OtlpReceiver) -> None:
    """Counts per job and state equal the corpus's; sums are within a second per run."""
    summary = _replay(receiver, "--metrics")
    received: dict[tuple[str, str], tuple[int, float]] = {}
    system_errors: Counter[str] = Counter()
    for (metric, attributes), (count, value) in metric_totals(receiver.points()).items():
        named = dict(attributes)
        if metric == SYSTEM_ERRORS:
            system_errors[named[sc.ERROR_TYPE]] += count
        if metric != RUN_DURATION:
            continue
        key = (named[sc.CICD_PIPELINE_NAME], named[sc.CICD_PIPELINE_RUN_STATE])
        old_count, old_value = received.get(key, (0, 0.0))
        received[key] = (old_count + count, old_value + value)
    truth = _truth()
    assert {key: count for key, (count, _) in received.items()} == {
        key: count for key, (count, _) in truth.items()
    }
    for key, (count, total) in truth.items():
        assert abs(received[key][1] - total) <= count, key
    invalid = int(summary.split(" invalid")[0].rsplit(" ", 1)[-1])
    assert system_errors == Counter({"invalid_message": invalid})
