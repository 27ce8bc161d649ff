"""``prowtrace replay`` end to end: a subprocess, a realistic stream, a real OTLP receiver.

This is the issue's acceptance check: one complete trace per job whose IDs follow tracing.sh,
no orphan spans, no secrets, times within a second of prowjob.json.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from support.oracle import assert_traces_complete, expected_spans, orphans
from support.otlp_receiver import OtlpReceiver

from processor.core.jsonshape import parse_rfc3339
from processor.export.otlp_json import DecodedSpan
from processor.synthetic import (
    SyntheticJob,
    generate,
    push_envelope,
    stream,
    write_jsonl,
    write_mirror,
)

JOBS = 45


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[SyntheticJob], Path, Path]:
    """Forty-five job lifecycles covering every scenario, mirrored, with their envelope stream."""
    root = tmp_path_factory.mktemp("replay")
    jobs = list(generate(JOBS, seed=5))
    write_mirror(jobs, root / "mirror")
    write_jsonl(stream(jobs), root / "stream.jsonl", envelope=True)
    return jobs, root / "mirror", root / "stream.jsonl"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """Run a real OTLP receiver on loopback."""
    with OtlpReceiver() as local:
        yield local


def _replay(
    stream_file: Path, mirror: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "otlp",
        "PROWTRACE_LOG_FORMAT": "json",
        **env,
    }
    return subprocess.run(  # noqa: S603 - our own CLI with fixed arguments
        [sys.executable, "-m", "processor", "replay", "--artifacts-mirror", str(mirror), *extra,
         str(stream_file)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip


def _grpc(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{receiver.grpc_endpoint}",
    }


def _http(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.http_endpoint,
    }


@pytest.mark.parametrize("transport", [_grpc, _http], ids=["grpc", "http"])
def test_replay_exports_exactly_one_complete_trace_per_job(
    corpus: tuple[list[SyntheticJob], Path, Path], receiver: OtlpReceiver, transport: object
) -> None:
    """Over gRPC and over HTTP, the receiver gets exactly the expected span set, and exit is 0."""
    jobs, mirror, stream_file = corpus
    env = transport(receiver)  # type: ignore[operator] # parametrized callables
    result = _replay(stream_file, mirror, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 invalid, 0 failed" in result.stdout
    assert_traces_complete(receiver.unique_spans(), expected_spans(stream(jobs), mirror))


def test_replay_exports_test_spans(
    corpus: tuple[list[SyntheticJob], Path, Path], receiver: OtlpReceiver
) -> None:
    """``prowtrace replay`` exports the test suite and case spans of the jobs' JUnit files."""
    _, mirror, stream_file = corpus
    result = _replay(stream_file, mirror, _grpc(receiver))
    assert result.returncode == 0, result.stderr[-3000:]
    spans = receiver.unique_spans().values()
    assert any("test.suite.name" in span.attributes for span in spans)
    assert any(span.attributes.get("test.case.result.status") == "fail" for span in spans)


def test_replayed_traces_follow_the_tracing_sh_convention(
    corpus: tuple[list[SyntheticJob], Path, Path], receiver: OtlpReceiver
) -> None:
    """Every job that ran has one trace: ID = PROW_JOB_ID without dashes, root = its first half."""
    jobs, mirror, stream_file = corpus
    assert _replay(stream_file, mirror, _grpc(receiver)).returncode == 0
    spans = receiver.unique_spans()
    roots = {span.trace_id: span for span in spans.values() if not span.parent_span_id}
    ran = [job for job in jobs if any(p.data.get("gcs_path") for p in job.messages)]
    assert len(ran) >= JOBS - 6
    for job in ran:
        trace = job.uid.replace("-", "")
        assert trace in roots, job.scenario
        assert roots[trace].span_id == trace[:16]
    assert len(roots) == len({span.trace_id for span in spans.values()})
    assert orphans(spans) == []


def test_replayed_traces_carry_no_secret(
    corpus: tuple[list[SyntheticJob], Path, Path], receiver: OtlpReceiver
) -> None:
    """No token planted in clone URLs, headers or outputs reaches any exported span."""
    jobs, mirror, stream_file = corpus
    assert _replay(stream_file, mirror, _grpc(receiver)).returncode == 0
    secrets = {secret for job in jobs for secret in job.planted_secrets}
    assert secrets, "the corpus should plant secrets for this test to mean anything"
    exported = json.dumps([_as_text(span) for span in receiver.unique_spans().values()])
    assert [secret for secret in secrets if secret in exported] == []


def test_replayed_root_spans_match_prowjob_times_within_a_second(
    corpus: tuple[list[SyntheticJob], Path, Path], receiver: OtlpReceiver
) -> None:
    """Each root span starts at startTime and ends at completionTime, within a second."""
    jobs, mirror, stream_file = corpus
    assert _replay(stream_file, mirror, _grpc(receiver)).returncode == 0
    roots = {s.trace_id: s for s in receiver.unique_spans().values() if not s.parent_span_id}
    checked = 0
    for job in jobs:
        trace = job.uid.replace("-", "")
        if trace not in roots:
            continue
        status = json.loads(job.artifacts["prowjob.json"])["status"]
        start = _ns(parse_rfc3339(status["startTime"]))
        end = _ns(parse_rfc3339(status["completionTime"]))
        assert abs(roots[trace].start_ns - start) < 1_000_000_000
        assert abs(roots[trace].end_ns - end) < 1_000_000_000
        checked += 1
    assert checked >= JOBS - 6


def test_shuffled_and_duplicated_stream_yields_the_identical_span_set(
    corpus: tuple[list[SyntheticJob], Path, Path], receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """Every message three times, in random order: the same spans, none with two contents."""
    jobs, mirror, _ = corpus
    messages = [published for published in stream(jobs) for _ in range(3)]
    random.Random(1).shuffle(messages)  # noqa: S311 - a reproducible order, not a secret
    shuffled = tmp_path / "shuffled.jsonl"
    write_jsonl(messages, shuffled, envelope=True)
    assert _replay(shuffled, mirror, _grpc(receiver)).returncode == 0
    # unique_spans() raises if one span ID arrived with two different contents.
    assert_traces_complete(receiver.unique_spans(), expected_spans(stream(jobs), mirror))


def test_invalid_lines_are_counted_and_do_not_stop_the_others(
    corpus: tuple[list[SyntheticJob], Path, Path], receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """Garbage lines make the exit status 1 and are reported; every valid job is still traced."""
    jobs, mirror, _ = corpus
    lines = [json.dumps(push_envelope(p, message_id=str(i))) for i, p in enumerate(stream(jobs))]
    lines[3:3] = ["not json", '{"message": {"data": "%%%"}}', '{"status": 12}']
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join(lines) + "\n")
    result = _replay(mixed, mirror, _grpc(receiver))
    assert result.returncode == 1
    assert "3 invalid" in result.stdout
    assert "line 4" in result.stdout
    assert_traces_complete(receiver.unique_spans(), expected_spans(stream(jobs), mirror))


def test_replay_with_an_unreachable_backend_fails_clearly(
    corpus: tuple[list[SyntheticJob], Path, Path], tmp_path: Path
) -> None:
    """Spans that could not be exported are failures: exit 1, and the reason is printed."""
    jobs, mirror, _ = corpus
    few = tmp_path / "few.jsonl"
    write_jsonl(list(stream(jobs[:2])), few, envelope=True)
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    result = _replay(few, mirror, env)
    assert result.returncode == 1
    assert "exporter reported failure" in result.stdout


def _ns(instant: datetime) -> int:
    return int(instant.timestamp()) * 1_000_000_000


def _as_text(span: DecodedSpan) -> object:
    return [span.name, span.attributes, [(e.name, e.attributes) for e in span.events],
            span.status_message]  # fmt: skip
