"""The border: whatever the artifacts hold, a job's spans encode, fit a request, keep no secret."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processor.artifacts.mirror import MirrorArtifactStore
from processor.core import border, redact
from processor.core.ids import IdMode, identity_from_uid
from processor.core.message import Delivery
from processor.core.redact import MAX_ATTRIBUTE_CHARS
from processor.core.spans import SpanEvent, SpanRecord, identify
from processor.export.otel import SpanConverter
from processor.export.otlp_encode import encode_spans
from processor.pipeline import Outcome, Pipeline, PipelineSettings
from processor.tools.replay import parse_line

REAL_PROW = Path(__file__).parents[1] / "data" / "real-prow"
GRPC_DEFAULT_MAX_BYTES = 4 * 1024 * 1024  # grpc's default max receive size, the Collector's too
LONE_SURROGATE = "\ud800"


def _encode(records: tuple[SpanRecord, ...]) -> int:
    """Encode records as an OTLP request the way the exporters do; return its byte size."""
    identity = identity_from_uid("8d6e3f2a-1b4c-4d5e-9f60-7a8b9c0d1e2f")
    spans = SpanConverter(Resource({})).convert(identify(identity, records))
    return encode_spans(spans).ByteSize()


def _root(**changes: object) -> SpanRecord:
    fields: dict[str, object] = {
        "path": "",
        "parent": None,
        "name": "RUN job",
        "start_ns": 1_600_000_000 * 10**9,
        "end_ns": 1_600_000_100 * 10**9,
    }
    fields.update(changes)
    return SpanRecord(**fields)  # type: ignore[arg-type] # test data built from keywords


def test_times_outside_otlp_range_are_clamped_and_encode() -> None:
    """A start before 1970 and an end after 2554 become 0 and 2**64-1; the request encodes."""
    record = _root(start_ns=-5 * 10**18, end_ns=10**21)

    (clean,) = border.enforce([record]).records

    assert (clean.start_ns, clean.end_ns) == (0, border.MAX_TIME_NS)
    assert _encode((clean,)) > 0


def test_an_end_before_the_start_becomes_a_zero_length_span() -> None:
    """Negative durations cannot reach a backend."""
    (clean,) = border.enforce([_root(start_ns=50, end_ns=10)]).records
    assert clean.end_ns == clean.start_ns == 50


def test_lone_surrogates_are_replaced_everywhere_a_string_goes() -> None:
    """Names, keys, values, events and status texts: each lone surrogate becomes U+FFFD."""
    bad = f"job{LONE_SURROGATE}"
    record = _root(
        name=bad,
        attributes={bad: bad, "list": (bad,)},
        events=(SpanEvent(bad, 1_600_000_001 * 10**9, {"reason": bad}),),
        error=bad,
    )

    (clean,) = border.enforce([record]).records

    assert clean.name == "job\ufffd"
    assert clean.attributes == {"job\ufffd": "job\ufffd", "list": ("job\ufffd",)}
    assert clean.events[0].name == "job\ufffd"
    assert clean.events[0].attributes == {"reason": "job\ufffd"}
    assert clean.error == "job\ufffd"
    assert _encode((clean,)) > 0


def test_valid_surrogate_pairs_survive() -> None:
    """An emoji (a surrogate pair in JSON) is valid text and is kept as it is."""
    assert border.valid_unicode("ok \U0001f600") == "ok \U0001f600"


def test_every_string_is_capped_at_1024_characters() -> None:
    """A 200k-character span name, attribute and event name are cut to the README's 1,024."""
    huge = "x" * 200_000
    record = _root(name=huge, attributes={"prow.job": huge}, events=(SpanEvent(huge, 0),))

    (clean,) = border.enforce([record]).records

    lengths = {len(clean.name), len(str(clean.attributes["prow.job"])), len(clean.events[0].name)}
    assert lengths == {MAX_ATTRIBUTE_CHARS}


def test_integers_are_clamped_into_int64() -> None:
    """An exit code of 2**70 would make protobuf refuse the whole request."""
    record = _root(attributes={"code": 2**70, "codes": (-(2**70), 1)})
    (clean,) = border.enforce([record]).records
    assert clean.attributes == {"code": 2**63 - 1, "codes": (-(2**63), 1)}
    assert _encode((clean,)) > 0


def test_events_per_span_stop_at_the_sdk_default() -> None:
    """20,000 pod events become 128; the rest are counted as dropped."""
    events = tuple(SpanEvent(f"e{i}", 1_600_000_001 * 10**9) for i in range(20_000))

    enforced = border.enforce([_root(events=events)])

    assert len(enforced.records[0].events) == border.MAX_EVENTS_PER_SPAN
    assert enforced.dropped_events == 20_000 - border.MAX_EVENTS_PER_SPAN


def test_spans_per_job_are_bounded_and_children_of_dropped_spans_go_too() -> None:
    """50k clone commands become at most MAX_SPANS_PER_JOB spans with no orphan."""
    root = _root()
    children = [
        SpanRecord(f"c{i}", "", f"git {i}", root.start_ns, root.end_ns) for i in range(50_000)
    ]
    grandchild = SpanRecord("g", "c49999", "inner", root.start_ns, root.end_ns)

    enforced = border.enforce([root, *children, grandchild])

    kept = {record.path for record in enforced.records}
    assert len(enforced.records) == border.MAX_SPANS_PER_JOB
    assert all(r.parent is None or r.parent in kept for r in enforced.records)
    assert enforced.dropped_spans == 50_000 + 2 - border.MAX_SPANS_PER_JOB


def test_a_job_always_fits_one_request_below_4_mib() -> None:
    """Thousands of spans full of 1 KiB attributes are trimmed under the per-job byte budget."""
    root = _root()
    fat = {f"k{i}": "v" * 1024 for i in range(100)}
    children = [
        SpanRecord(
            f"c{i}",
            "",
            "step",
            root.start_ns,
            root.end_ns,
            attributes=fat,
            events=tuple(SpanEvent("e", root.start_ns, fat) for _ in range(3)),
        )
        for i in range(2_000)
    ]

    enforced = border.enforce([root, *children])

    real_bytes = _encode(enforced.records)
    assert real_bytes < GRPC_DEFAULT_MAX_BYTES
    assert real_bytes <= sum(border.record_bytes(r) for r in enforced.records)  # generous
    assert enforced.dropped_spans > 0
    assert enforced.records[0].path == ""


def test_the_request_estimate_is_never_below_the_encoded_size() -> None:
    """estimated_bytes over SDK spans bounds the OTLP request the exporters will build."""
    record = _root(
        attributes={"a": "é" * 1000, "n": 5, "t": ("x", "y")},
        events=(SpanEvent("ev", 1, {"k": "v" * 50}),),
        error="failed " * 20,
    )
    identity = identity_from_uid("8d6e3f2a-1b4c-4d5e-9f60-7a8b9c0d1e2f")
    spans = SpanConverter(Resource({})).convert(identify(identity, [record] * 50))

    assert encode_spans(spans).ByteSize() <= border.estimated_bytes(spans)


def test_secrets_are_stripped_at_the_border_whatever_the_build_site() -> None:
    """A URL with user:password copied onto a span by any build site leaves without it."""
    record = _root(attributes={"url.full": "https://bot:hunter2hunter2@prow.example/view/1"})
    (clean,) = border.enforce([record]).records
    assert "hunter2" not in json.dumps(clean.attributes)


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


@pytest.mark.parametrize("corpus", [REAL_PROW, REAL_PROW / "variants"], ids=["jobs", "variants"])
def test_the_real_corpus_crosses_the_border_untouched(corpus: Path) -> None:
    """Every real Prow message is traced with nothing trimmed: the caps only bite hostile input."""
    collect = _Collect()
    pipeline = Pipeline(
        MirrorArtifactStore(corpus / "mirror"),
        collect,
        SpanConverter(Resource({})),
        PipelineSettings(id_mode=IdMode.UID),
        clock=lambda: datetime(2100, 1, 1, tzinfo=UTC),
    )
    deliveries = [
        parse_line(line, datetime(2026, 12, 1, tzinfo=UTC))
        for line in (corpus / "messages.jsonl").read_text().splitlines()
    ]

    with structlog.testing.capture_logs() as logs:
        outcomes = [
            pipeline.handle(delivery).outcome
            for delivery in deliveries
            if isinstance(delivery, Delivery)
        ]

    assert outcomes.count(Outcome.EXPORTED) >= 4
    assert not [log for log in logs if log["event"] == "spans_trimmed"]
    for span in collect.spans:
        assert len(span.name) <= MAX_ATTRIBUTE_CHARS
        assert len(span.events) <= border.MAX_EVENTS_PER_SPAN


@pytest.mark.parametrize("value", ["plain", "é" * 10, "x" * 5000])
def test_text_is_idempotent(value: str) -> None:
    """Crossing the border twice changes nothing more than crossing it once."""
    assert border.text(border.text(value)) == border.text(value)


@pytest.mark.parametrize("length", [10, 256, 257, 5000])
def test_text_scrubs_alike_below_and_above_the_remembered_length(length: int) -> None:
    """Short strings (remembered) and long ones come out scrubbed and capped the same way."""
    value = ("x" * length)[: max(0, length - 30)] + " password=hunter2hunter2"
    expected = redact.cap(redact.strip_secrets(value), redact.MAX_ATTRIBUTE_CHARS)
    assert border.text(value) == border.text(value) == expected
    assert "hunter2" not in border.text(value)
