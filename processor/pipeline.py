"""One message in, one outcome out: classify, gather artifacts, build spans, export.

This is the only place that sequences the pure core (:mod:`processor.core`) with I/O, and it does
that I/O only through two injected interfaces: an :class:`~processor.artifacts.ArtifactStore` and an
OpenTelemetry ``SpanExporter``. It knows nothing of Pub/Sub or HTTP; transports map its
:class:`Outcome` to acknowledgements:

============  ==========================================  ====================================
outcome       meaning                                     what a transport does with it
============  ==========================================  ====================================
EXPORTED      spans built and the exporter said SUCCESS   ack
SKIPPED       well-formed, nothing to trace               ack (INFO log)
INVALID       malformed message: can never succeed        dead-letter, or ack + ERROR log
FAILED        well-formed, but can never be traced        dead-letter, or ack + ERROR log
RETRY         transient: artifacts not there yet,         nack (the subscription's backoff
              storage or exporter unavailable             applies), or hold and re-check soon
                                                          when ``late`` (see below)
============  ==========================================  ====================================

A RETRY with ``Result.late`` set means only that a file crier writes after the message is not
written (or not up to date) yet, inside the grace period: the same message will succeed once it is,
which is typically seconds away, so a transport that can keep the message should re-check it soon
rather than hand it back to Pub/Sub's minutes-scale backoff. ``Result.reads`` counts the storage
reads the attempt made (each one a billed operation).
With a :class:`MetricsSink`, each final outcome is also counted (:mod:`processor.core.metrics`):
an exported message's run metrics, or a system error for a poison message or a failed export.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

import structlog
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from processor.artifacts import (
    FILE_LIMITS,
    ArtifactError,
    ArtifactStore,
    ArtifactTooLarge,
    ArtifactUnavailable,
    parse_location,
)
from processor.artifacts.fetch import DEFAULT_READ_CONCURRENCY, Fetched, ReadPool
from processor.core import border, facts
from processor.core.build import job_spans
from processor.core.ids import IdMode, JobIdentity, identity_from_build, identity_from_uid
from processor.core.jsonshape import ShapeError
from processor.core.junit import JunitResults
from processor.core.labels import KEEP_ALL_LABELS, LabelFilter
from processor.core.message import (
    Delivery,
    Invalid,
    JobState,
    Skip,
    Traceable,
    classify,
)
from processor.core.metrics import MetricPoint, SystemErrorType, run_points, system_error_point
from processor.core.spans import TraceSpan, identify
from processor.export.group_commit import ExportRejected
from processor.export.otel import SpanConverter
from processor.junit_gather import JUNIT_LISTING, JunitLimits, gather_junit, within_limits

log = structlog.get_logger("prowtrace.pipeline")
T = TypeVar("T")

_STATE_RANK = {
    JobState.SCHEDULING: 0,
    JobState.TRIGGERED: 0,
    JobState.PENDING: 1,
    JobState.SUCCESS: 2,
    JobState.FAILURE: 2,
    JobState.ABORTED: 2,
    JobState.ERROR: 2,
}


class Outcome(StrEnum):
    """What became of one message; see the module docstring for what transports do with each."""

    EXPORTED = "exported"
    SKIPPED = "skipped"
    INVALID = "invalid"
    FAILED = "failed"
    RETRY = "retry"

    @property
    def is_poison(self) -> bool:
        """True when retrying can never help (the message belongs in a dead-letter topic)."""
        return self in {Outcome.INVALID, Outcome.FAILED}


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one message, with what a log line or a summary needs to say about it."""

    outcome: Outcome
    reason: str = ""
    job: str = ""
    state: str = ""
    build_id: str = ""
    trace_id: str = ""
    span_count: int = 0
    has_root: bool = False
    late: bool = False
    """RETRY only because a file crier writes after the message is not there yet (in grace)."""
    awaiting: str = ""
    """When ``late``: the file waited for (``prowjob.json`` or ``podinfo.json``)."""
    reads: int = 0
    """Storage reads this attempt made."""


@dataclass(frozen=True, slots=True)
class Ready:
    """A message whose spans are built and waiting to be exported."""

    spans: tuple[TraceSpan, ...]
    result: Result


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """The deployment choices the pipeline needs."""

    id_mode: IdMode = IdMode.UID
    grace: timedelta = timedelta(minutes=5)
    """How long after the publish time missing or stale artifacts are waited for (RETRY)."""
    read_concurrency: int = DEFAULT_READ_CONCURRENCY
    """Pooled storage reads in flight at once, over all messages (a terminal message reads 5
    files); 0 reads each file on the handling thread, one after another (for a local mirror)."""
    junit: JunitLimits | None = field(default_factory=JunitLimits)
    """Test spans from the job's JUnit files within these limits; ``None``: no test spans."""
    labels: LabelFilter = KEEP_ALL_LABELS
    """Which ProwJob labels go onto the root span."""
    artifact_buckets: frozenset[str] = frozenset()
    """``SCHEME://BUCKET`` a message's folder must be in (empty: any). Whoever can publish to
    the topic chooses the folder: the allowlist keeps them to the buckets Prow writes."""


class MetricsSink(Protocol):
    """Where the CI/CD metric points go (:class:`processor.export.metrics.MetricsRecorder`)."""

    def record(self, points: Sequence[MetricPoint]) -> None:
        """Take ``points``; must neither block on a backend nor raise."""


_SYSTEM_ERRORS = {
    Outcome.INVALID: SystemErrorType.INVALID_MESSAGE,
    Outcome.FAILED: SystemErrorType.UNTRACEABLE_MESSAGE,
}


class Pipeline:
    """Turns deliveries into exported spans; safe to call from many threads at once."""

    def __init__(  # noqa: PLR0913 - each is one injected edge or setting
        self,
        store: ArtifactStore | None,
        exporter: SpanExporter,
        converter: SpanConverter,
        settings: PipelineSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        metrics: MetricsSink | None = None,
    ) -> None:
        """Wire the pipeline to its artifact store (``None``: read none), exporter and metrics."""
        if store is None and settings.id_mode is IdMode.UID:
            raise ValueError(
                "uid mode needs artifacts: the ProwJob UID is only in prowjob.json "
                "(configure an artifact store, or use build-id mode)"
            )
        self._store = store
        self._reads = (
            ReadPool(store, concurrency=settings.read_concurrency) if store is not None else None
        )
        self._exporter = exporter
        self._converter = converter
        self._settings = settings
        self._clock = clock
        self._metrics = metrics

    def handle(self, delivery: Delivery) -> Result:
        """Process one delivery to its final outcome, exporting its spans if it has any."""
        planned = self.plan(delivery)
        if isinstance(planned, Result):
            self._count(planned, ())
            return planned
        result = self.export(planned)
        self._count(result, planned.spans)
        return result

    def _count(self, result: Result, spans: Sequence[TraceSpan]) -> None:
        """Record the metrics of a final outcome: the run's once exported, or a system error."""
        if self._metrics is None:
            return
        if result.outcome is Outcome.EXPORTED:
            self._metrics.record(run_points(spans))
        elif result.outcome in _SYSTEM_ERRORS:
            self._metrics.record([system_error_point(_SYSTEM_ERRORS[result.outcome])])
        elif spans:  # RETRY after building spans: the exporter failed them
            self._metrics.record([system_error_point(SystemErrorType.EXPORT_FAILED)])

    def recheck(self, delivery: Delivery, late: Result) -> Result:
        """Run a ``late`` message again, reading only the file it awaits until that is there.

        A held message is re-checked every second or so; reading all of its files each time would
        multiply a job's billed reads. While the awaited file is still missing (or, for
        prowjob.json, still older than the message) this costs one read and returns ``late``
        again; otherwise, and once the grace period is over, the message is handled in full.
        """
        classified = classify(delivery.data)
        in_grace = self._clock() < delivery.publish_time + self._settings.grace
        if not (late.awaiting and in_grace and self._store and isinstance(classified, Traceable)):
            return self.handle(delivery)
        try:
            data = self._store.read(classified.message.gcs_path, late.awaiting)
            still = data is None or (
                late.awaiting == facts.PROWJOB
                and bool(_why_wait_for_prowjob(facts.parse_prowjob(data), classified.state))
            )
        except (ArtifactError, ShapeError, ValueError, OverflowError, RecursionError):
            still = False  # the full path reports what is wrong with it
        if still:
            return replace(late, reads=1)
        result = self.handle(delivery)
        return replace(result, reads=result.reads + 1)

    def plan(self, delivery: Delivery) -> Ready | Result:
        """Classify the message, read its artifacts and build its spans, without exporting."""
        classified = classify(delivery.data)
        if isinstance(classified, Invalid):
            return Result(Outcome.INVALID, classified.reason)
        if isinstance(classified, Skip):
            message = classified.message
            return Result(
                Outcome.SKIPPED, classified.reason, job=message.job_name, state=message.status
            )
        return self._plan_traceable(classified, delivery)

    def export(self, ready: Ready) -> Result:
        """Export planned spans; the result is EXPORTED only if the exporter reported success."""
        try:
            outcome = self._exporter.export(self._converter.convert(ready.spans))
        except ExportRejected as error:
            return _with(ready.result, Outcome.FAILED, f"spans cannot be exported: {error}")
        except Exception as error:  # noqa: BLE001 - an exporter must not take the worker down
            return _with(ready.result, Outcome.RETRY, f"exporter raised {error!r}")
        if outcome is not SpanExportResult.SUCCESS:
            return _with(ready.result, Outcome.RETRY, "exporter reported failure")
        return ready.result

    def _plan_traceable(self, traceable: Traceable, delivery: Delivery) -> Ready | Result:
        message = traceable.message
        base = Result(
            Outcome.EXPORTED,
            job=message.job_name,
            state=message.status,
            build_id=traceable.build_id,
        )
        refused = self._outside_allowlist(message.gcs_path)
        if refused:
            return _with(base, Outcome.INVALID, refused)
        in_grace = self._clock() < delivery.publish_time + self._settings.grace
        files = self._fetch(traceable)
        try:
            gathered = self._gather(traceable, in_grace=in_grace, files=files)
        finally:
            if files is not None:
                files.discard()
        reads = files.reads if files is not None else 0
        base = replace(base, reads=reads)
        if isinstance(gathered, _Late):
            return replace(
                base,
                outcome=Outcome.RETRY,
                reason=gathered.reason,
                late=True,
                awaiting=gathered.awaiting,
            )
        if isinstance(gathered, tuple):
            outcome, reason = gathered
            return _with(base, outcome, reason)
        identity = self._identity(traceable, gathered)
        if identity is None:
            if gathered.prowjob:
                reason = (
                    "prowjob.json has no metadata.name: without the ProwJob UID the trace ID "
                    "cannot be derived in uid mode"
                )
            else:
                reason = (
                    "prowjob.json is missing past the grace period: uid mode needs it (the "
                    "ProwJob UID is the trace ID). If crier's GCS reporter is off in this Prow, "
                    "no run has one: deploy with PROWTRACE_ID_MODE=build-id (--id-mode build-id)"
                )
            return _with(base, Outcome.FAILED, reason)
        try:
            records = job_spans(traceable, gathered, delivery.publish_time, self._settings.labels)
        except (ValueError, OverflowError) as error:
            return _with(base, Outcome.FAILED, f"could not build spans: {error}")
        enforced = border.enforce(records)
        if enforced.trimmed:
            log.warning(
                "spans_trimmed",
                folder=message.gcs_path,
                dropped_spans=enforced.dropped_spans,
                dropped_events=enforced.dropped_events,
                dropped_attributes=enforced.dropped_attributes,
            )
        records = list(enforced.records)
        job = gathered.prowjob.job if gathered.prowjob and gathered.prowjob.job else base.job
        result = Result(
            Outcome.EXPORTED,
            job=job,
            state=message.status,
            build_id=traceable.build_id,
            trace_id=identity.trace_id_hex,
            span_count=len(records),
            has_root=any(record.parent is None for record in records),
            reads=reads,
        )
        if not records:
            return _with(result, Outcome.SKIPPED, "nothing to emit for this state yet")
        return Ready(spans=tuple(identify(identity, records)), result=result)

    def _outside_allowlist(self, folder: str) -> str:
        """Say why ``folder`` may not be read ('' when it may)."""
        allowed = self._settings.artifact_buckets
        if not allowed:
            return ""
        try:
            location = parse_location(folder)
        except ArtifactError as error:
            return str(error)
        bucket = f"{location.scheme}://{location.bucket}"
        if bucket in allowed:
            return ""
        return (
            f"gcs_path bucket {bucket} is not in PROWTRACE_ARTIFACT_BUCKETS "
            f"({', '.join(sorted(allowed))}): not read, not traced"
        )

    def _identity(self, traceable: Traceable, gathered: facts.JobArtifacts) -> JobIdentity | None:
        prowjob = gathered.prowjob
        if self._settings.id_mode is IdMode.BUILD_ID:
            name = traceable.message.job_name or (prowjob.job if prowjob else "")
            return identity_from_build(name, traceable.build_id)
        if prowjob is None or not prowjob.uid:
            return None
        return identity_from_uid(prowjob.uid)

    def _fetch(self, traceable: Traceable) -> Fetched | None:
        """Start reading every file the message's state needs, all at once."""
        if self._reads is None:
            return None
        if not traceable.state.is_terminal:
            return self._reads.fetch(traceable.message.gcs_path, (facts.PROWJOB,))
        folder = traceable.message.gcs_path
        limits = self._settings.junit
        if limits is None:
            return self._reads.fetch(folder, _TERMINAL_FILES)
        # The JUnit files go out the moment the listing answers, not once the five are parsed.
        chosen = functools.partial(within_limits, limits=limits)
        return self._reads.fetch(folder, _TERMINAL_FILES, JUNIT_LISTING, then=chosen)

    def _gather(
        self, traceable: Traceable, *, in_grace: bool, files: ArtifactStore | None = None
    ) -> facts.JobArtifacts | tuple[Outcome, str] | _Late:
        """Read what the state needs; a tuple or _Late means the message cannot proceed now."""
        if self._store is None:
            return facts.JobArtifacts()
        folder = traceable.message.gcs_path
        try:
            prowjob, _ = self._read(
                folder, facts.PROWJOB, facts.parse_prowjob, required=True, store=files
            )
        except _Stop as stop:
            return stop.outcome, stop.reason
        waiting = _why_wait_for_prowjob(prowjob, traceable.state)
        if waiting and in_grace:
            return _Late(waiting, facts.PROWJOB)
        if not traceable.state.is_terminal:
            return facts.JobArtifacts(prowjob=prowjob)
        try:
            podinfo, podinfo_exists = self._read(
                folder, facts.PODINFO, facts.parse_podinfo, store=files
            )
            if not podinfo_exists and in_grace and prowjob is not None and prowjob.pod_name:
                return _Late(
                    "podinfo.json not written yet (crier writes it after completion)",
                    facts.PODINFO,
                )
            junit = self._junit(folder, files)
            return facts.JobArtifacts(
                prowjob=prowjob,
                podinfo=podinfo,
                junit=junit,
                started=self._read(folder, facts.STARTED, facts.parse_started, store=files)[0],
                finished=self._read(folder, facts.FINISHED, facts.parse_finished, store=files)[0],
                clone_records=self._read(
                    folder, facts.CLONE_RECORDS, facts.parse_clone_records, store=files
                )[0],
            )
        except _Stop as stop:
            return stop.outcome, stop.reason

    def _junit(self, folder: str, files: ArtifactStore | None = None) -> JunitResults | None:
        """Read the job's JUnit results if test spans are on; a storage outage means RETRY."""
        store = files or self._store
        if self._settings.junit is None or store is None:
            return None
        try:
            return gather_junit(store, folder, self._settings.junit)
        except ArtifactUnavailable as error:
            raise _Stop(Outcome.RETRY, str(error)) from None
        except ArtifactError as error:
            log.warning("junit_skipped", folder=folder, reason=str(error))
            return None

    def _read(
        self,
        folder: str,
        name: str,
        parse: Callable[[bytes], T],
        *,
        required: bool = False,
        store: ArtifactStore | None = None,
    ) -> tuple[T | None, bool]:
        """Read and parse one file from ``store`` (default: the pipeline's); say if it exists.

        Optional files that exist but are unusable (malformed, too large) are logged and left
        out; waiting for them would not help, so the caller must not treat them as missing.
        """
        store = store or self._store
        assert store is not None  # noqa: S101 - _gather returns early without a store
        try:
            data = store.read(folder, name)
        except ArtifactUnavailable as error:
            raise _Stop(Outcome.RETRY, str(error)) from None
        except ArtifactTooLarge as error:
            if required:
                raise _Stop(Outcome.FAILED, str(error)) from None
            log.warning("artifact_skipped", folder=folder, file=name, reason=str(error))
            return None, True
        except ArtifactError as error:
            raise _Stop(Outcome.FAILED, str(error)) from None
        if data is None:
            return None, False
        limit = FILE_LIMITS.get(name, len(data))
        if len(data) > limit:
            # The stores stop reading there; this holds for any store (parsing is what costs).
            reason = f"{folder}/{name} is {len(data)} bytes, over the {limit}-byte limit for it"
            if required:
                raise _Stop(Outcome.FAILED, reason)
            log.warning("artifact_skipped", folder=folder, file=name, reason=reason)
            return None, True
        try:
            return parse(data), True
        except (ShapeError, ValueError, OverflowError, RecursionError) as error:
            if required:
                raise _Stop(Outcome.FAILED, f"{folder}/{name} is malformed: {error}") from None
            log.warning("artifact_skipped", folder=folder, file=name, reason=str(error))
            return None, True


_TERMINAL_FILES = (
    facts.PROWJOB,
    facts.PODINFO,
    facts.STARTED,
    facts.FINISHED,
    facts.CLONE_RECORDS,
)
"""What a terminal message reads, all at once (see :mod:`processor.artifacts.fetch`)."""


@dataclass(frozen=True, slots=True)
class _Late:
    """_gather's answer when a file crier writes after the message is not there yet."""

    reason: str
    awaiting: str


class _Stop(Exception):
    """Control flow inside Pipeline: stop gathering with this outcome; never escapes it."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def _why_wait_for_prowjob(prowjob: facts.ProwJob | None, state: JobState) -> str:
    """Say why prowjob.json is not yet good enough for a message in ``state`` ('' if it is)."""
    if prowjob is None:
        return "prowjob.json not written yet (crier's GCS reporter races the Pub/Sub message)"
    try:
        written = JobState(prowjob.state)
    except ValueError:
        return ""
    if _STATE_RANK[written] < _STATE_RANK[state]:
        return f"prowjob.json still says {written}, the message says {state}: waiting for crier"
    return ""


def _with(result: Result, outcome: Outcome, reason: str) -> Result:
    return replace(result, outcome=outcome, reason=reason)
