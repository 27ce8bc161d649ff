"""The exact span set a stream should produce, and a check of what a backend received.

End-to-end tests (transports, faults, demo, benchmarks) all ask one question: did every job
arrive as one complete trace, span for span, with nothing lost, nothing extra and no span ID
carrying two contents? :func:`expected_spans` answers "what should arrive" by running the same
messages through an in-process pipeline; :func:`trace_problems` lists every difference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processor.artifacts.mirror import MirrorArtifactStore
from processor.core.ids import IdMode
from processor.core.message import Delivery
from processor.export.exporters import build_resource
from processor.export.otel import SpanConverter
from processor.export.otlp_json import DecodedSpan, spans_from_request
from processor.pipeline import Pipeline, PipelineSettings, Result
from processor.synthetic import Published, message_bytes
from support.otlp_receiver import unique_spans_of

SpanKey = tuple[str, str]


class RecordingExporter(SpanExporter):
    """Keeps what it is given, decoded as a receiver would decode it; thread-safe."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._spans: list[DecodedSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Record ``spans`` through the real OTLP encoding."""
        decoded = spans_from_request(encode_spans(spans))
        with self._lock:
            self._spans.extend(decoded)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def spans(self) -> list[DecodedSpan]:
        """Everything recorded, duplicates included."""
        with self._lock:
            return list(self._spans)


def expected_spans(
    messages: Iterable[Published],
    mirror_root: Path,
    *,
    id_mode: IdMode = IdMode.UID,
    resource: Resource | None = None,
) -> dict[SpanKey, DecodedSpan]:
    """Return the spans one in-process consumer exports for ``messages`` (grace 0, no faults)."""
    recorder = RecordingExporter()
    pipeline = Pipeline(
        MirrorArtifactStore(mirror_root),
        recorder,
        SpanConverter(resource or build_resource({})),
        PipelineSettings(id_mode=id_mode, grace=timedelta(0)),
    )
    for published in messages:
        handle_published(pipeline, published)
    return unique_spans_of(recorder.spans())


def handle_published(pipeline: Pipeline, published: Published) -> Result:
    """Process one corpus message as a transport would hand it over."""
    return pipeline.handle(
        Delivery(data=message_bytes(published), publish_time=published.publish_time)
    )


def orphans(spans: Mapping[SpanKey, DecodedSpan]) -> list[DecodedSpan]:
    """Return spans whose parent is not in the set (the root has no parent)."""
    return [
        span
        for span in spans.values()
        if span.parent_span_id and (span.trace_id, span.parent_span_id) not in spans
    ]


def trace_problems(
    received: Mapping[SpanKey, DecodedSpan],
    expected: Mapping[SpanKey, DecodedSpan],
    *,
    limit: int = 20,
) -> list[str]:
    """List how ``received`` differs from ``expected``: missing, extra, changed and orphan spans."""
    problems: list[str] = []
    missing = [key for key in expected if key not in received]
    extra = [key for key in received if key not in expected]
    changed = [key for key in expected if key in received and received[key] != expected[key]]
    problems.extend(f"missing {_describe(expected[key])}" for key in missing[:limit])
    problems.extend(f"unexpected {_describe(received[key])}" for key in extra[:limit])
    problems.extend(
        f"different content for {_describe(expected[key])}: "
        + _first_difference(received[key], expected[key])
        for key in changed[:limit]
    )
    problems.extend(f"orphan {_describe(span)}" for span in orphans(received)[:limit])
    if len(missing) + len(extra) + len(changed) > limit:
        problems.append(
            f"... {len(missing)} missing, {len(extra)} unexpected, {len(changed)} changed in all"
        )
    return problems


def assert_traces_complete(
    received: Mapping[SpanKey, DecodedSpan], expected: Mapping[SpanKey, DecodedSpan]
) -> None:
    """Raise AssertionError listing every difference between received and expected spans."""
    problems = trace_problems(received, expected)
    if problems:
        raise AssertionError(
            "traces differ from the expected span set:\n  " + "\n  ".join(problems)
        )


def shape_problems(spans: Mapping[SpanKey, DecodedSpan]) -> list[str]:
    """List violations of what every trace must be, whatever its artifacts looked like.

    Each span lies inside its parent and inside its trace's root (no span outlasts its run), no
    span ends before it starts, and no root is zero-length (a run always takes some time).
    """
    problems: list[str] = []
    roots = {span.trace_id: span for span in spans.values() if not span.parent_span_id}
    for span in spans.values():
        if span.end_ns < span.start_ns:
            problems.append(f"{_describe(span)} ends before it starts")
        if not span.parent_span_id:
            if span.end_ns <= span.start_ns:
                problems.append(f"root {_describe(span)} is zero-length")
            continue
        for outer, what in (
            (spans.get((span.trace_id, span.parent_span_id)), "its parent"),
            (roots.get(span.trace_id), "its run (the root)"),
        ):
            if outer is not None and not outer.start_ns <= span.start_ns <= span.end_ns <= (
                outer.end_ns
            ):
                problems.append(
                    f"{_describe(span)} [{span.start_ns}, {span.end_ns}] leaves {what} "
                    f"{outer.name!r} [{outer.start_ns}, {outer.end_ns}]"
                )
    return problems


def traces_of(spans: Mapping[SpanKey, DecodedSpan]) -> dict[str, list[DecodedSpan]]:
    """Group spans by trace ID."""
    grouped: dict[str, list[DecodedSpan]] = {}
    for span in spans.values():
        grouped.setdefault(span.trace_id, []).append(span)
    return grouped


def _describe(span: DecodedSpan) -> str:
    return f"span {span.name!r} ({span.trace_id}/{span.span_id})"


def _first_difference(got: DecodedSpan, want: DecodedSpan) -> str:
    for field in ("name", "parent_span_id", "start_ns", "end_ns", "attributes", "events"):
        if getattr(got, field) != getattr(want, field):
            return f"{field}: got {getattr(got, field)!r}, want {getattr(want, field)!r}"
    return "other fields"
