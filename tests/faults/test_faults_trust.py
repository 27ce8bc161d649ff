"""Trust: an optional allowlist of artifact buckets; a message naming another is poison."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.memory_store import MemoryArtifactStore

from processor.config import ConfigError, artifact_buckets, load_settings
from processor.core.ids import IdMode
from processor.core.message import Delivery
from processor.export.otel import SpanConverter
from processor.pipeline import Outcome, Pipeline, PipelineSettings

pytestmark = [pytest.mark.faults]

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _finished(folder: str) -> bytes:
    return json.dumps(
        {
            "status": "success",
            "job_name": "ci-demo",
            "job_type": "periodic",
            "gcs_path": folder,
            "url": "https://prow.example/view/x/1",
            "refs": [],
        }
    ).encode()


def _pipeline(allowed: frozenset[str], exporter: InMemorySpanExporter) -> Pipeline:
    return Pipeline(
        MemoryArtifactStore({}),
        exporter,
        SpanConverter(Resource({})),
        PipelineSettings(id_mode=IdMode.BUILD_ID, grace=timedelta(0), artifact_buckets=allowed),
        clock=lambda: NOW,
    )


def test_a_message_naming_an_unlisted_bucket_is_invalid_and_not_read() -> None:
    """gs://attacker/... with only gs://prow-logs allowed: INVALID, a clear reason, no span."""
    exporter = InMemorySpanExporter()
    result = _pipeline(frozenset({"gs://prow-logs"}), exporter).handle(
        Delivery(_finished("gs://attacker/logs/ci-demo/1"), NOW)
    )
    assert result.outcome is Outcome.INVALID
    assert "gs://attacker is not in PROWTRACE_ARTIFACT_BUCKETS" in result.reason
    assert exporter.get_finished_spans() == ()


def test_the_same_name_in_another_provider_is_another_bucket() -> None:
    """s3://prow-logs is not gs://prow-logs."""
    result = _pipeline(frozenset({"gs://prow-logs"}), InMemorySpanExporter()).handle(
        Delivery(_finished("s3://prow-logs/logs/ci-demo/1"), NOW)
    )
    assert result.outcome is Outcome.INVALID


def test_a_listed_bucket_is_traced() -> None:
    """A message in an allowed bucket goes through as before."""
    exporter = InMemorySpanExporter()
    result = _pipeline(frozenset({"gs://prow-logs"}), exporter).handle(
        Delivery(_finished("gs://prow-logs/logs/ci-demo/1"), NOW)
    )
    assert result.outcome is Outcome.EXPORTED
    assert exporter.get_finished_spans()


def test_the_setting_takes_urls_and_bare_names() -> None:
    """Bare names mean gs://; a trailing slash is fine; blanks are ignored."""
    assert artifact_buckets(" kubernetes-jenkins, s3://minio-logs/ ,,") == {
        "gs://kubernetes-jenkins",
        "s3://minio-logs",
    }
    settings = load_settings({"PROWTRACE_ARTIFACT_BUCKETS": "gs://a-bucket"})
    assert settings.artifact_buckets == {"gs://a-bucket"}


@pytest.mark.parametrize("entry", ["gs://b/logs", "http://b", "b c"])
def test_an_entry_with_a_path_or_another_scheme_is_refused(entry: str) -> None:
    """The allowlist names buckets only, and says what it expected."""
    with pytest.raises(ConfigError, match="PROWTRACE_ARTIFACT_BUCKETS"):
        artifact_buckets(entry)
