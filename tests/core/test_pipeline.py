"""The pipeline's outcomes, with the shipped in-memory artifact store and a recording exporter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from core_fixtures import (
    BUILD_ID,
    GCS_PATH,
    JOB,
    PENDING_PUBLISH,
    PUBLISH,
    UID,
    clone_records_doc,
    crier_message,
    encode,
    finished_doc,
    podinfo_doc,
    prowjob_doc,
    started_doc,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.memory_store import MemoryArtifactStore

from processor.core import facts
from processor.core import semconv as sc
from processor.core.ids import IdMode, identity_from_build
from processor.core.message import Delivery
from processor.export.otel import SpanConverter
from processor.pipeline import Outcome, Pipeline, PipelineSettings, Ready

GRACE = timedelta(minutes=5)
IN_GRACE = PUBLISH + timedelta(seconds=30)
PAST_GRACE = PUBLISH + GRACE + timedelta(seconds=1)
TERMINAL_SPANS = 20


class RaisingExporter(SpanExporter):
    """An exporter whose backend connection breaks mid-call (raises instead of returning)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Raise as a misbehaving exporter would."""
        raise ConnectionResetError(f"connection reset while sending {len(spans)} spans")


def full_store(**overrides: Any) -> MemoryArtifactStore:  # noqa: ANN401 - JSON documents or None
    """Return a store holding every artifact of the failed run; ``name=None`` removes a file."""
    documents: dict[str, Any] = {
        facts.PROWJOB: prowjob_doc(),
        facts.PODINFO: podinfo_doc(),
        facts.CLONE_RECORDS: clone_records_doc(),
        facts.STARTED: started_doc(),
        facts.FINISHED: finished_doc(),
    }
    documents.update({name.replace("_", "-") + ".json": doc for name, doc in overrides.items()})
    store = MemoryArtifactStore()
    for name, doc in documents.items():
        if doc is not None:
            store.put(GCS_PATH, name, doc if isinstance(doc, bytes) else encode(doc))
    return store


def delivery(status: str = "failure", publish: datetime = PUBLISH) -> Delivery:
    """Return crier's message for the run in ``status``, as a transport delivers it."""
    return Delivery(data=encode(crier_message(status)), publish_time=publish, message_id="42")


def pipeline(
    store: MemoryArtifactStore | None,
    exporter: SpanExporter,
    *,
    now: datetime = IN_GRACE,
    mode: IdMode = IdMode.UID,
) -> Pipeline:
    """Wire a pipeline to ``store`` and ``exporter`` with a fixed clock."""
    return Pipeline(
        store,
        exporter,
        SpanConverter(Resource.create({"service.name": "prowtrace-test"})),
        PipelineSettings(id_mode=mode, grace=GRACE),
        clock=lambda: now,
    )


def span_facts(span: ReadableSpan) -> tuple[object, ...]:
    """Everything an exported span says, in a comparable form."""
    assert span.context is not None
    return (
        span.context.trace_id,
        span.context.span_id,
        span.parent.span_id if span.parent else None,
        span.name,
        span.kind,
        span.start_time,
        span.end_time,
        dict(span.attributes or {}),
        [(event.name, event.timestamp, dict(event.attributes or {})) for event in span.events],
        span.status.status_code,
        span.status.description,
    )


def by_name(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    """Index exported spans by name (the first of each name)."""
    index: dict[str, ReadableSpan] = {}
    for span in spans:
        index.setdefault(span.name, span)
    return index


# --- exported --------------------------------------------------------------------------------


def test_terminal_message_with_all_artifacts_is_exported() -> None:
    """With every artifact present, the whole tree is exported and the outcome is EXPORTED."""
    exporter = InMemorySpanExporter()
    result = pipeline(full_store(), exporter).handle(delivery())
    assert result.outcome is Outcome.EXPORTED
    assert (result.job, result.state, result.build_id) == (JOB, "failure", BUILD_ID)
    assert result.span_count == TERMINAL_SPANS == len(exporter.get_finished_spans())
    assert result.has_root


def test_exported_trace_follows_the_tracing_sh_convention() -> None:
    """The trace ID is the ProwJob UID and the root's span ID its first 8 bytes."""
    exporter = InMemorySpanExporter()
    result = pipeline(full_store(), exporter).handle(delivery())
    root = by_name(exporter.get_finished_spans())[f"RUN {JOB}"]
    assert root.context is not None
    assert result.trace_id == f"{root.context.trace_id:032x}" == UID.replace("-", "")
    assert f"{root.context.span_id:016x}" == UID.replace("-", "")[:16]
    assert root.parent is None


def test_pending_message_exports_only_the_queue_span() -> None:
    """A pending message exports the queue span, parented to the root that comes later."""
    exporter = InMemorySpanExporter()
    store = full_store(prowjob=prowjob_doc(state="pending", completion=None))
    result = pipeline(store, exporter, now=PENDING_PUBLISH).handle(
        delivery("pending", PENDING_PUBLISH)
    )
    assert (result.outcome, result.span_count, result.has_root) == (Outcome.EXPORTED, 1, False)
    [queue] = exporter.get_finished_spans()
    assert queue.name == "queue"
    assert queue.parent is not None
    assert f"{queue.parent.span_id:016x}" == UID.replace("-", "")[:16]


def test_pending_message_reads_only_prowjob() -> None:
    """A pending message needs prowjob.json alone; the other files are not read."""
    store = full_store(prowjob=prowjob_doc(state="pending", completion=None))
    pipeline(store, InMemorySpanExporter(), now=PENDING_PUBLISH).handle(
        delivery("pending", PENDING_PUBLISH)
    )
    assert store.reads == 1


def test_replayed_pending_message_with_final_artifacts_is_exported_at_once() -> None:
    """Artifacts ahead of the message (a replay) are normal: no waiting, same queue span."""
    replay, original = InMemorySpanExporter(), InMemorySpanExporter()
    result = pipeline(full_store(), replay, now=PAST_GRACE + timedelta(days=30)).handle(
        delivery("pending", PENDING_PUBLISH)
    )
    pipeline(full_store(), original).handle(delivery())
    assert result.outcome is Outcome.EXPORTED
    [queue] = replay.get_finished_spans()
    assert span_facts(queue) == span_facts(by_name(original.get_finished_spans())["queue"])


def test_duplicate_messages_export_identical_spans() -> None:
    """The same message handled twice (at-least-once delivery) exports identical spans."""
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    pipeline(full_store(), first).handle(delivery())
    pipeline(full_store(), second, now=PAST_GRACE).handle(delivery())
    assert [span_facts(s) for s in first.get_finished_spans()] == [
        span_facts(s) for s in second.get_finished_spans()
    ]


def test_plan_builds_without_exporting() -> None:
    """plan() reads and builds but exports nothing; export() then sends the planned spans."""
    exporter = InMemorySpanExporter()
    runner = pipeline(full_store(), exporter)
    planned = runner.plan(delivery())
    assert isinstance(planned, Ready)
    assert exporter.get_finished_spans() == ()
    assert runner.export(planned).outcome is Outcome.EXPORTED
    assert len(exporter.get_finished_spans()) == len(planned.spans) == TERMINAL_SPANS


# --- waiting for artifacts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "publish"), [("pending", PENDING_PUBLISH), ("failure", PUBLISH)]
)
def test_missing_prowjob_within_grace_is_retried(status: str, publish: datetime) -> None:
    """prowjob.json not written yet (crier's GCS reporter races the message): RETRY."""
    exporter = InMemorySpanExporter()
    result = pipeline(
        full_store(prowjob=None), exporter, now=publish + timedelta(seconds=5)
    ).handle(delivery(status, publish))
    assert result.outcome is Outcome.RETRY
    assert "prowjob.json" in result.reason
    assert exporter.get_finished_spans() == ()


def test_stale_prowjob_within_grace_is_retried() -> None:
    """prowjob.json still saying pending for a terminal message: RETRY until crier catches up."""
    store = full_store(prowjob=prowjob_doc(state="pending", completion=None))
    result = pipeline(store, InMemorySpanExporter()).handle(delivery())
    assert result.outcome is Outcome.RETRY
    assert "pending" in result.reason


def test_stale_triggered_prowjob_delays_the_pending_message() -> None:
    """prowjob.json still saying triggered for a pending message: RETRY within grace."""
    store = full_store(prowjob=prowjob_doc(state="triggered", pending=None, completion=None))
    result = pipeline(store, InMemorySpanExporter(), now=PENDING_PUBLISH).handle(
        delivery("pending", PENDING_PUBLISH)
    )
    assert result.outcome is Outcome.RETRY


def test_stale_prowjob_past_grace_emits_what_exists() -> None:
    """After the grace period a stale prowjob.json is used as is; finished.json ends the root."""
    exporter = InMemorySpanExporter()
    store = full_store(prowjob=prowjob_doc(state="pending", completion=None))
    result = pipeline(store, exporter, now=PAST_GRACE).handle(delivery())
    assert result.outcome is Outcome.EXPORTED
    root = by_name(exporter.get_finished_spans())[f"RUN {JOB}"]
    assert root.attributes is not None
    assert root.attributes[sc.PROW_TIMING_SOURCE] == "artifacts"
    assert root.attributes[sc.CICD_PIPELINE_RESULT] == "failure"


def test_grace_ends_exactly_at_publish_time_plus_grace() -> None:
    """At publish time + grace the wait is over: the message is emitted, not retried."""
    store = full_store(prowjob=prowjob_doc(state="pending", completion=None))
    result = pipeline(store, InMemorySpanExporter(), now=PUBLISH + GRACE).handle(delivery())
    assert result.outcome is Outcome.EXPORTED


def test_prowjob_that_never_appears_fails_in_uid_mode() -> None:
    """Past the grace period without prowjob.json there is no UID, so no trace ID: FAILED."""
    result = pipeline(full_store(prowjob=None), InMemorySpanExporter(), now=PAST_GRACE).handle(
        delivery()
    )
    assert result.outcome is Outcome.FAILED
    assert result.outcome.is_poison
    assert "prowjob.json" in result.reason


def test_missing_podinfo_within_grace_is_retried() -> None:
    """podinfo.json is written after completion: a terminal message waits for it."""
    result = pipeline(full_store(podinfo=None), InMemorySpanExporter()).handle(delivery())
    assert result.outcome is Outcome.RETRY
    assert "podinfo.json" in result.reason


def test_missing_podinfo_past_grace_exports_estimated_pod_spans() -> None:
    """podinfo.json may be sampled away: after grace the pod spans are estimated and marked."""
    exporter = InMemorySpanExporter()
    result = pipeline(full_store(podinfo=None), exporter, now=PAST_GRACE).handle(delivery())
    assert result.outcome is Outcome.EXPORTED
    pod = by_name(exporter.get_finished_spans())["pod"]
    assert pod.attributes is not None
    assert pod.attributes[sc.PROW_TIMING_ESTIMATED] is True


def test_missing_podinfo_for_a_job_without_pod_is_not_awaited() -> None:
    """A job that never had a pod (no pod_name) has no podinfo.json to wait for."""
    store = full_store(prowjob=prowjob_doc(pod_name=""), podinfo=None)
    result = pipeline(store, InMemorySpanExporter()).handle(delivery())
    assert result.outcome is Outcome.EXPORTED


# --- storage and artifact failures -----------------------------------------------------------


def test_unavailable_store_is_retried() -> None:
    """A transient storage failure is RETRY, even past the grace period."""
    store = full_store()
    store.unavailable.add(GCS_PATH)
    exporter = InMemorySpanExporter()
    result = pipeline(store, exporter, now=PAST_GRACE).handle(delivery())
    assert result.outcome is Outcome.RETRY
    assert "unavailable" in result.reason
    assert exporter.get_finished_spans() == ()


def test_malformed_prowjob_fails() -> None:
    """A prowjob.json that is not valid JSON can never be used: FAILED, naming the file."""
    result = pipeline(full_store(prowjob=b"{not json"), InMemorySpanExporter()).handle(delivery())
    assert result.outcome is Outcome.FAILED
    assert "prowjob.json" in result.reason


def podinfo_store(problem: str) -> MemoryArtifactStore:
    """Return the full store with a podinfo.json that exists but is unusable."""
    if problem == "malformed":
        return full_store(podinfo={"pod": {"status": {"containerStatuses": "broken"}}})
    store = full_store()
    store.put(GCS_PATH, facts.PODINFO, encode(podinfo_doc()) + b" " * 200_000)
    store.max_bytes = 100_000
    return store


@pytest.mark.parametrize("problem", ["malformed", "oversized"])
def test_unusable_optional_artifact_is_left_out(problem: str) -> None:
    """An unusable podinfo.json is skipped; the rest is exported with estimated pod spans."""
    exporter = InMemorySpanExporter()
    result = pipeline(podinfo_store(problem), exporter, now=PAST_GRACE).handle(delivery())
    assert result.outcome is Outcome.EXPORTED
    pod = by_name(exporter.get_finished_spans())["pod"]
    assert pod.attributes is not None
    assert pod.attributes[sc.PROW_TIMING_ESTIMATED] is True


@pytest.mark.parametrize("problem", ["malformed", "oversized"])
def test_unusable_podinfo_is_not_awaited(problem: str) -> None:
    """A podinfo.json that exists but cannot be used is not waited for as if unwritten."""
    result = pipeline(podinfo_store(problem), InMemorySpanExporter()).handle(delivery())
    assert result.outcome is Outcome.EXPORTED


def test_oversized_prowjob_fails() -> None:
    """A prowjob.json over the store's size limit is refused: FAILED."""
    store = full_store()
    store.max_bytes = len(encode(prowjob_doc())) - 1
    result = pipeline(store, InMemorySpanExporter()).handle(delivery())
    assert result.outcome is Outcome.FAILED
    assert "limit" in result.reason


def test_prowjob_with_an_unrepresentable_time_fails_without_raising() -> None:
    """A prowjob.json with a time outside datetime's range in UTC is FAILED, not an exception."""
    doc = prowjob_doc()
    doc["status"]["completionTime"] = "9999-12-31T23:59:59-01:00"
    result = pipeline(full_store(prowjob=doc), InMemorySpanExporter()).handle(delivery())
    assert result.outcome is Outcome.FAILED


# --- exporter failures -----------------------------------------------------------------------


def test_exporter_failure_is_retried() -> None:
    """An exporter reporting FAILURE (here: shut down) leaves the message to be retried."""
    exporter = InMemorySpanExporter()
    exporter.shutdown()
    result = pipeline(full_store(), exporter).handle(delivery())
    assert result.outcome is Outcome.RETRY
    assert "failure" in result.reason


def test_exporter_exception_is_retried() -> None:
    """An exporter that raises does not take the worker down: RETRY with the error."""
    result = pipeline(full_store(), RaisingExporter()).handle(delivery())
    assert result.outcome is Outcome.RETRY
    assert "ConnectionResetError" in result.reason


def test_retry_after_exporter_failure_exports_the_same_spans() -> None:
    """The redelivered message, once the exporter is back, exports what a first success would."""
    broken = InMemorySpanExporter()
    broken.shutdown()
    pipeline(full_store(), broken).handle(delivery())
    healed, reference = InMemorySpanExporter(), InMemorySpanExporter()
    pipeline(full_store(), healed).handle(delivery())
    pipeline(full_store(), reference).handle(delivery())
    assert [span_facts(s) for s in healed.get_finished_spans()] == [
        span_facts(s) for s in reference.get_finished_spans()
    ]


# --- invalid and skipped pass through --------------------------------------------------------


def test_invalid_message_passes_through_without_io() -> None:
    """A malformed message is INVALID (poison) with its reason; nothing is read or exported."""
    store, exporter = full_store(), InMemorySpanExporter()
    doc = crier_message("failure")
    doc["refs"][0]["pulls"][0]["number"] = "123"
    result = pipeline(store, exporter).handle(Delivery(encode(doc), PUBLISH))
    assert result.outcome is Outcome.INVALID
    assert result.outcome.is_poison
    assert result.reason.startswith("refs[0].pulls[0].number")
    assert (store.reads, exporter.get_finished_spans()) == (0, ())


def test_skipped_message_passes_through_without_io() -> None:
    """A triggered message is SKIPPED with its job and state; nothing is read or exported."""
    store, exporter = full_store(), InMemorySpanExporter()
    data = encode(crier_message("triggered", gcs_path="", url=""))
    result = pipeline(store, exporter).handle(Delivery(data, PUBLISH))
    assert (result.outcome, result.job, result.state) == (Outcome.SKIPPED, JOB, "triggered")
    assert not result.outcome.is_poison
    assert (store.reads, exporter.get_finished_spans()) == (0, ())


def test_pending_message_without_creation_time_is_skipped() -> None:
    """A pending message whose prowjob.json has no startTime (past grace) has nothing to emit."""
    store = full_store(prowjob=prowjob_doc(state="pending", start=None, completion=None))
    result = pipeline(store, InMemorySpanExporter(), now=PAST_GRACE).handle(
        delivery("pending", PENDING_PUBLISH)
    )
    assert result.outcome is Outcome.SKIPPED


# --- build-ID mode ---------------------------------------------------------------------------


def test_uid_mode_refuses_to_run_without_a_store() -> None:
    """UID mode needs prowjob.json, so a pipeline without an artifact store is refused."""
    with pytest.raises(ValueError, match="uid mode"):
        pipeline(None, InMemorySpanExporter())


def test_build_id_mode_without_store_exports_a_root() -> None:
    """Without artifacts, build-ID mode exports the root under a hash of job and build ID."""
    exporter = InMemorySpanExporter()
    result = pipeline(None, exporter, mode=IdMode.BUILD_ID).handle(delivery())
    assert result.outcome is Outcome.EXPORTED
    assert result.trace_id == identity_from_build(JOB, BUILD_ID).trace_id_hex
    assert [span.name for span in exporter.get_finished_spans()] == [f"RUN {JOB}"]


def test_build_id_mode_with_store_uses_the_build_id_trace() -> None:
    """With artifacts, build-ID mode still derives the trace from job name and build ID."""
    exporter = InMemorySpanExporter()
    result = pipeline(full_store(), exporter, mode=IdMode.BUILD_ID).handle(delivery())
    assert result.trace_id == identity_from_build(JOB, BUILD_ID).trace_id_hex
    assert len(exporter.get_finished_spans()) == TERMINAL_SPANS
