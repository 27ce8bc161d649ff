"""Assemble a running pipeline from settings: the one place edges are chosen and wired."""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.trace.export import SpanExporter

from processor.artifacts import ArtifactStore, open_store
from processor.artifacts.fetch import DEFAULT_READ_CONCURRENCY
from processor.config import Settings
from processor.export.exporters import build_exporter, build_resource
from processor.export.metrics import MetricsRecorder, build_metrics
from processor.export.otel import SpanConverter
from processor.pipeline import Pipeline, PipelineSettings


def build_pipeline(
    settings: Settings,
    env: Mapping[str, str] = os.environ,
    *,
    exporter: SpanExporter | None = None,
    store: ArtifactStore | None = None,
    metrics: MetricsRecorder | None = None,
) -> Pipeline:
    """Return a pipeline reading artifacts as ``settings`` say and exporting as ``env`` says.

    ``exporter`` replaces the one ``OTEL_TRACES_EXPORTER`` would select (tests, demo, group
    commit wrappers); ``store`` replaces the one ``settings.artifacts`` names (backfill wraps
    it to reuse what it already read). ``metrics`` receives the CI/CD metrics (see
    :func:`service_metrics`); without it none are recorded.
    """
    if store is None:
        store = open_store(settings.artifacts, max_bytes=settings.max_artifact_bytes)
    # Cloud Storage answers in tens of milliseconds: read a message's files at once. A local
    # mirror answers in microseconds: thread hand-offs would cost more CPU than they save.
    remote = settings.artifacts == "gcs"
    return Pipeline(
        store=store,
        exporter=exporter if exporter is not None else build_exporter(env),
        converter=SpanConverter(build_resource(env)),
        settings=PipelineSettings(
            id_mode=settings.id_mode,
            grace=settings.grace,
            labels=settings.labels,
            read_concurrency=DEFAULT_READ_CONCURRENCY if remote else 0,
        ),
        metrics=metrics if metrics is not None and metrics.enabled else None,
    )


def service_metrics(env: Mapping[str, str] = os.environ, *, wanted: bool = True) -> MetricsRecorder:
    """Return the metrics recorder ``OTEL_METRICS_EXPORTER`` configures (off when unset).

    ``wanted=False`` (replay and backfill without ``--metrics``) turns it off whatever the
    environment says: replaying history into live counters would distort them.
    """
    return build_metrics(env) if wanted else MetricsRecorder(None)
