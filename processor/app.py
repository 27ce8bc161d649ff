"""The composition root: the one place edges are chosen and wired.

The CLI's commands, the demo, backfill, the fault rig and the benchmarks build their pipeline,
the services' exporter, the pull worker and the push endpoint here, so every caller (tests too)
runs the production wiring. Heavy modules are imported inside the functions: the CLI imports this
module only once a command runs, but ``--help`` must stay fast.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace.export import SpanExporter

from processor.artifacts import ArtifactStore, open_store
from processor.artifacts.fetch import DEFAULT_READ_CONCURRENCY
from processor.config import PullSettings, PushSettings, Settings, group_commit_enabled
from processor.export.exporters import build_exporter, build_resource, gcp_project
from processor.export.metrics import MetricsRecorder, build_metrics
from processor.export.otel import SpanConverter
from processor.pipeline import Pipeline, PipelineSettings

if TYPE_CHECKING:  # imported where used: the transports pull in gRPC and aiohttp
    from google.cloud.pubsub_v1 import SubscriberClient

    from processor.core.message import Delivery
    from processor.export.group_commit import GroupCommitExporter
    from processor.pipeline import Result
    from processor.transports.pull import PullWorker
    from processor.transports.push import PushEndpoint

STOP_REQUESTED = "stop requested"
"""What :meth:`PullWorker.wait` returns when a signal, not the stream, ended the run."""


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
            artifact_buckets=settings.artifact_buckets,
            junit=settings.junit,
        ),
        metrics=metrics if metrics is not None and metrics.enabled else None,
    )


def service_metrics(env: Mapping[str, str] = os.environ, *, wanted: bool = True) -> MetricsRecorder:
    """Return the metrics recorder ``OTEL_METRICS_EXPORTER`` configures (off when unset).

    ``wanted=False`` (replay and backfill without ``--metrics``) turns it off whatever the
    environment says: replaying history into live counters would distort them.
    """
    return build_metrics(env) if wanted else MetricsRecorder(None)


def service_exporter(
    env: Mapping[str, str] = os.environ, *, inner: SpanExporter | None = None
) -> GroupCommitExporter:
    """Return the services' exporter: group commit, unless ``PROWTRACE_GROUP_COMMIT=off``.

    ``inner`` replaces the exporter ``OTEL_TRACES_EXPORTER`` selects (the demo's fan-out, a
    test's receiver); the group-commit wrapping is the same either way.
    """
    from processor.export.group_commit import GroupCommitExporter  # noqa: PLC0415 - see module

    if inner is None:
        inner = build_exporter(env)
    if group_commit_enabled(env):
        return GroupCommitExporter(inner)
    # Off: a batch of one caller each, so one export call per message, still never two at once
    # (the SDK's contract for an exporter), in arrival order and without lingering.
    return GroupCommitExporter(inner, max_wait=0, max_batch_spans=1)


def pull_worker(  # noqa: PLR0913 - the worker's edges, and how it holds late messages
    subscriber: SubscriberClient,
    settings: PullSettings,
    handle: Callable[[Delivery], Result],
    env: Mapping[str, str] = os.environ,
    *,
    hold_for: timedelta = timedelta(0),
    recheck: Callable[[Delivery, Result], Result] | None = None,
) -> PullWorker:
    """Return the pull worker ``prowtrace pull`` runs (not yet started).

    ``hold_for`` (the grace period) and ``recheck`` (:meth:`Pipeline.recheck`): how long and
    how a message whose artifacts are late is held instead of nacked.
    """
    from processor.transports.pull import PullWorker  # noqa: PLC0415 - see module

    return PullWorker(
        subscriber,
        settings,
        handle,
        project=gcp_project(env),
        hold_for=hold_for,
        recheck=recheck,
    )


def push_endpoint(  # noqa: PLR0913 - the endpoint's edges, and how it holds late messages
    handle: Callable[[Delivery], Result],
    settings: PushSettings,
    env: Mapping[str, str] = os.environ,
    *,
    abort_exports: Callable[[], None] | None = None,
    hold_for: timedelta = timedelta(0),
    recheck: Callable[[Delivery, Result], Result] | None = None,
) -> PushEndpoint:
    """Return the push endpoint ``prowtrace serve`` runs, verifying tokens as auth says.

    ``hold_for`` and ``recheck`` as for :func:`pull_worker` (a request is held inside it).
    """
    from processor.transports.oidc import push_verifier  # noqa: PLC0415 - see module
    from processor.transports.push import PushEndpoint  # noqa: PLC0415

    return PushEndpoint(
        handle,
        settings,
        verifier=push_verifier(settings),
        project=gcp_project(env),
        abort_exports=abort_exports,
        hold_for=hold_for,
        recheck=recheck,
    )


def run_pull(
    settings: Settings, pull_settings: PullSettings, env: Mapping[str, str] = os.environ
) -> str:
    """Run ``prowtrace pull`` until SIGTERM/SIGINT or the stream fails; return why it ended."""
    from google.cloud.pubsub_v1 import SubscriberClient  # noqa: PLC0415 - see module

    # Concurrent callbacks share export calls; each still returns only after its spans went out.
    exporter = service_exporter(env)
    metrics = service_metrics(env)
    pipeline = build_pipeline(settings, env, exporter=exporter, metrics=metrics)
    with SubscriberClient() as subscriber:  # closes its channel on the way out
        worker = pull_worker(
            subscriber,
            pull_settings,
            pipeline.handle,
            env,
            hold_for=settings.grace,
            recheck=pipeline.recheck,
        )
        stop = threading.Event()
        with stop_on_signals(stop.set):
            worker.start()
            ended = worker.wait(stop)
            # Shutting the inner exporter down ends its retries: a down backend cannot hold exit.
            worker.stop(abort_exports=exporter.inner.shutdown)
    exporter.shutdown()
    metrics.shutdown()  # the last counts, bounded: a down backend cannot hold the exit
    return ended


def run_push(
    settings: Settings, push_settings: PushSettings, env: Mapping[str, str] = os.environ
) -> None:
    """Run ``prowtrace serve`` until SIGTERM/SIGINT, then drain and return."""
    import asyncio  # noqa: PLC0415 - see module

    from processor.transports.push import create_app, serve  # noqa: PLC0415

    # Concurrent requests share export calls; each still answers only after its spans went out.
    exporter = service_exporter(env)
    metrics = service_metrics(env)
    pipeline = build_pipeline(settings, env, exporter=exporter, metrics=metrics)
    # Shutting the inner exporter down ends its retries, so a down backend cannot hold the exit.
    endpoint = push_endpoint(
        pipeline.handle,
        push_settings,
        env,
        abort_exports=exporter.inner.shutdown,
        hold_for=settings.grace,
        recheck=pipeline.recheck,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def wake() -> None:  # a signal handler runs between bytecodes: hand over to the loop
            loop.call_soon_threadsafe(stop.set)

        with stop_on_signals(wake):
            await serve(create_app(endpoint, push_settings), push_settings, stop)

    asyncio.run(run())
    exporter.shutdown()
    metrics.shutdown()  # the last counts, bounded: a down backend cannot hold the exit


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop`` on SIGTERM (Cloud Run's shutdown) or SIGINT; a second Ctrl-C quits at once.

    Call from the main thread. The previous handlers are restored on exit.
    """
    signals = (signal.SIGINT, signal.SIGTERM)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop()
        # From now on Ctrl-C raises KeyboardInterrupt: a way out if something in flight hangs.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {signum: signal.signal(signum, request_stop) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
