"""In-process wiring for the fault-injection suite: the services' exporter and pipeline.

The cases that run a transport in the test process (the push endpoint, a :class:`PullWorker`)
get the exporter, pipeline and worker from the composition root (:mod:`processor.app`), as
``prowtrace serve`` and ``prowtrace pull`` do, aimed at an :class:`OtlpReceiver` (through the
product's OTLP/gRPC exporter) and a local mirror, with the resource the oracle uses
(``service.name=prow``), so what arrives can be compared with the oracle span for span.
It also publishes in bulk (10,000 malformed messages one call each would take minutes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog
from google.pubsub_v1 import PubsubMessage

from processor import app
from processor.app import build_pipeline, service_exporter
from processor.artifacts.mirror import MirrorArtifactStore
from processor.config import PullSettings, Settings
from processor.core.ids import IdMode
from processor.core.message import Delivery
from processor.export.exporters import build_resource
from processor.export.group_commit import GroupCommitExporter
from processor.export.otel import SpanConverter
from processor.export.otlp_encode import GrpcSpanExporter
from processor.export.otlp_json import DecodedSpan
from processor.pipeline import Pipeline, PipelineSettings, Result
from processor.synthetic import Published, SyntheticJob, generate, stream, write_mirror
from processor.transports.pull import PullWorker
from support.e2e import publish_time_dependent_spans
from support.oracle import RecordingExporter, SpanKey, handle_published
from support.otlp_receiver import OtlpReceiver, unique_spans_of
from support.pubsub_admin import EmulatorForTests


@dataclass(frozen=True)
class FaultCorpus:
    """A realistic stream for one case: its jobs, their artifact mirror and the oracle's spans."""

    jobs: tuple[SyntheticJob, ...]
    mirror: Path
    """``gs://B/P`` is ``mirror/B/P``."""
    messages: tuple[Published, ...]
    """Crier's messages in publish order."""
    expected: dict[SpanKey, DecodedSpan]
    """Exactly the spans the messages must give, by ``(trace_id, span_id)``."""
    span_emissions: int
    """Spans one fault-free pass exports, repeats included (a job's later message re-sends
    spans an earlier one sent): the baseline for counting duplicates a fault caused."""

    @property
    def trace_ids(self) -> frozenset[str]:
        """The traces the stream must produce."""
        return frozenset(trace_id for trace_id, _ in self.expected)


def fault_corpus(root: Path, n_jobs: int, *, seed: int) -> FaultCorpus:
    """Generate ``n_jobs`` lifecycles, mirror their artifacts under ``root``, run the oracle.

    The oracle is :func:`support.oracle.expected_spans`' pipeline (grace 0, in-memory
    export through the OTLP encoding); its emissions are counted too. Like
    :func:`support.e2e.prepare_corpus` (which keeps neither the jobs nor that count),
    it raises ``ValueError`` if the spans would depend on publish times, which the emulator sets.
    """
    jobs = tuple(generate(n_jobs, seed=seed))
    mirror = root / "mirror"
    write_mirror(jobs, mirror)
    messages = tuple(stream(jobs))
    dependent = publish_time_dependent_spans(messages, mirror)
    if dependent:
        raise ValueError(
            "these expected spans change with the messages' publish times, so an emulator run "
            "(which stamps its own) cannot be compared with the oracle:\n  "
            + "\n  ".join(dependent)
        )
    recorder = RecordingExporter()
    pipeline = Pipeline(
        MirrorArtifactStore(mirror),
        recorder,
        SpanConverter(build_resource({})),
        PipelineSettings(id_mode=IdMode.UID, grace=timedelta(0)),
    )
    for message in messages:
        handle_published(pipeline, message)
    emitted = recorder.spans()
    return FaultCorpus(jobs, mirror, messages, unique_spans_of(emitted), len(emitted))


DEFAULT_EXPORT_TIMEOUT_SECONDS = 10.0
"""The OTLP exporters' own default (``OTEL_EXPORTER_OTLP_TIMEOUT``)."""


def receiver_exporter(
    receiver: OtlpReceiver, *, timeout: float = DEFAULT_EXPORT_TIMEOUT_SECONDS
) -> GroupCommitExporter:
    """Return the services' exporter chain (group commit over OTLP/gRPC) aimed at ``receiver``.

    The OTLP exporter retries UNAVAILABLE within ``timeout`` seconds, then reports FAILURE.
    """
    inner = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=timeout)
    return service_exporter({}, inner=inner)


def mirror_pipeline(
    mirror: Path, exporter: GroupCommitExporter, *, grace: timedelta = timedelta(0)
) -> Pipeline:
    """Return a pipeline reading ``mirror`` and exporting to ``exporter``, as the oracle does."""
    return build_pipeline(Settings(artifacts=str(mirror), grace=grace), {}, exporter=exporter)


@contextlib.contextmanager
def quiet_structlog() -> Iterator[None]:
    """Drop structlog output below CRITICAL inside the block (10,000 poison logs add up)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    try:
        yield
    finally:
        structlog.configure(**saved)


@contextlib.contextmanager
def pull_worker(  # noqa: PLR0913 - each keyword is one PullSettings knob a case turns
    emulator: EmulatorForTests,
    subscription: str,
    handle: Callable[[Delivery], Result],
    *,
    max_outstanding_messages: int = 256,
    threads: int = 32,
    shutdown_timeout: float = 8.0,
) -> Iterator[PullWorker]:
    """Run ``prowtrace pull``'s worker in this process on ``subscription``; stop it after."""
    settings = PullSettings(
        subscription=subscription,
        max_outstanding_messages=max_outstanding_messages,
        threads=threads,
        shutdown_timeout=shutdown_timeout,
    )
    worker = app.pull_worker(emulator.streaming_subscriber(), settings, handle, {})
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


MAX_PUBLISH_MESSAGES = 1000
MAX_PUBLISH_BYTES = 9 * 1024 * 1024
"""Pub/Sub takes at most 1,000 messages and 10 MB per publish request."""


def publish_batched(
    emulator: EmulatorForTests,
    topic: str,
    payloads: Iterable[bytes],
    attributes: Mapping[str, str] | None = None,
) -> list[str]:
    """Publish ``payloads`` in order, many per request; return their message IDs.

    Pub/Sub refuses a message with neither data nor attributes, so an empty payload gets
    ``{"empty": "true"}`` (prowtrace never reads attributes).
    """
    publisher = emulator.publisher()
    batch: list[PubsubMessage] = []
    size = 0
    published: list[str] = []

    def flush() -> None:
        nonlocal batch, size
        if batch:
            response = publisher.publish(topic=topic, messages=batch, timeout=60)
            published.extend(response.message_ids)
        batch, size = [], 0

    for data in payloads:
        labels = dict(attributes or {}) or ({} if data else {"empty": "true"})
        if len(batch) >= MAX_PUBLISH_MESSAGES or size + len(data) > MAX_PUBLISH_BYTES:
            flush()
        batch.append(PubsubMessage(data=data, attributes=labels))
        size += len(data)
    flush()
    return published
