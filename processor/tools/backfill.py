"""``prowtrace backfill``: trace runs that finished before anyone listened, from their folders.

Crier publishes only while a job runs, so runs from before prowtrace was deployed, from a time it
was down, or of jobs without the Pub/Sub annotations exist only as folders in the artifact bucket.
Backfill lists the folders holding ``prowjob.json`` under each prefix, rebuilds from each ProwJob
the terminal-state message crier would have published
(:func:`~processor.tools.backfill_runs.report_message`), and either runs it through the same
:class:`~processor.pipeline.Pipeline` as the services (publish time = ``completionTime``, grace 0:
the artifacts are as complete as they will ever be) or publishes it to a Pub/Sub topic so the
deployed fleet does the work in parallel.

Every folder found ends as exactly one of traced (published), skipped or failed:

- skipped, not read at all: the folder's job segment (the second-to-last path segment in every
  Prow layout) does not match ``--job``;
- failed: prowjob.json cannot be read (after the store's own retries) or is malformed;
- skipped: ``spec.job`` does not match ``--job`` (``re.search``: anchor with ``^...$``);
- skipped as superseded: the folder is not the one the ProwJob names as its run, i.e. its last
  segment differs from ``status.build_id`` or from the last segment of ``status.url``. A
  revived pod's first build is such a folder once its ProwJob moved on; skipping it keeps one job
  to one trace;
- skipped as not finished: prowjob.json's state is not success, failure, aborted or error (a
  running job, or a revived pod's first folder, whose last prowjob.json says ``pending``);
- skipped as never started: no ``status.url``. Crier's message then has no ``gcs_path`` (the pod
  was never created, e.g. refused by a quota) and the services skip it too;
- skipped as never started: a pod-run job whose pod never ran its containers: started.json is
  missing or crier's stand-in (initupload replaces it when the pod starts) and podinfo.json, if
  any, shows no container started ("Pod pending timeout.", aborted while pending). The services
  still trace such a run from crier's message (root, queue and an estimated pod);
- skipped: the run ended outside ``--since``/``--until``. The end is ``status.completionTime``
  (``startTime`` for a terminal ProwJob without one): the moment crier published the terminal
  message, so a window means "runs that finished then". ``since`` is inclusive, ``until``
  exclusive;
- otherwise the message goes out; the pipeline may still skip it or fail it, with its own reason.

Reruns are safe and complete an interrupted backfill: trace and span IDs derive from the ProwJob,
so a rerun exports the same spans under the same IDs (and publishes the same messages); it never
makes a second trace of a run. Failures are worth a rerun: transient ones usually pass.

Exit status: 0 every run traced or deliberately skipped; 1 some run failed or a prefix could not be
listed; 2 usage or configuration error; 130 interrupted (Ctrl-C or SIGTERM: no new runs start,
those in flight finish, the summary is printed).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO, TypeVar, cast

from processor.app import stop_on_signals
from processor.artifacts import (
    ArtifactError,
    ArtifactStore,
    ListedFile,
    UnsupportedLocation,
    open_store,
)
from processor.config import ConfigError, Settings
from processor.core import facts
from processor.core.jsonshape import ShapeError
from processor.core.message import Delivery
from processor.exit_codes import ExitCode
from processor.pipeline import Outcome, Pipeline, Result
from processor.tools.backfill_progress import (
    DEFAULT_LINE_INTERVAL_SECONDS,
    CurrentStream,
    Summary,
    Tally,
    show_progress,
    write_line,
)
from processor.tools.backfill_runs import (
    RunMessage,
    RunOutcome,
    RunResult,
    Selection,
    assess,
    independent_prefixes,
    job_segment,
    never_ran,
    parse_moment,
)

T = TypeVar("T")
DEFAULT_CONCURRENCY = 8
LOOKAHEAD_PER_WORKER = 2
"""Runs queued per worker: discovery stays this far ahead of the workers and no further, so a
listing of millions of folders never sits in memory."""
PUBLISH_TIMEOUT_SECONDS = 60.0
TOPIC_PATTERN = re.compile(r"^projects/[^/]+/topics/[^/]+$")


# Where synthesized messages go.


class Sink(Protocol):
    """Sends one run's message on; called from several worker threads at once."""

    def __call__(self, run: RunMessage) -> RunResult:
        """Send ``run`` and say what became of it; never raises except :class:`StopBackfill`."""
        ...


class StopBackfill(Exception):
    """A sink's failure that every further run would repeat (e.g. the topic does not exist)."""


class PipelineSink:
    """Runs each message through the pipeline, as the services would on crier's message."""

    def __init__(self, pipeline: Pipeline) -> None:
        """Send to ``pipeline`` (build it with grace 0: backfilled artifacts are final)."""
        self._pipeline = pipeline

    def __call__(self, run: RunMessage) -> RunResult:
        """Handle the message with its run's end as the publish time."""
        return result_of(self._pipeline.handle(Delivery(data=run.data, publish_time=run.ended)))


def result_of(result: Result) -> RunResult:
    """Map the pipeline's outcome onto backfill's: anything not exported or skipped failed."""
    if result.outcome is Outcome.EXPORTED:
        return RunResult(RunOutcome.SENT)
    if result.outcome is Outcome.SKIPPED:
        return RunResult(RunOutcome.SKIPPED, result.reason)
    return RunResult(RunOutcome.FAILED, f"{result.outcome}: {result.reason}")


class PublishSink:
    """Publishes each message to a topic with a batching ``google.cloud.pubsub_v1`` publisher.

    A run counts as sent once the service accepted its message; the message has no attributes and
    no ordering key, as crier's.
    """

    def __init__(
        self,
        publisher: Any,  # noqa: ANN401 - google.cloud.pubsub_v1's PublisherClient is untyped
        topic: str,
        timeout: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        """Publish through ``publisher`` to ``topic`` (``projects/P/topics/T``)."""
        self._publisher = publisher
        self._topic = topic
        self._timeout = timeout

    def __call__(self, run: RunMessage) -> RunResult:
        """Publish and wait for the message ID; a missing topic or permission stops backfill."""
        # Imported here: only --publish needs the Pub/Sub client's exception types.
        from google.api_core import exceptions  # noqa: PLC0415

        try:
            future = self._publisher.publish(self._topic, run.data, timeout=self._timeout)
            future.result(timeout=self._timeout)
        except (exceptions.NotFound, exceptions.PermissionDenied) as error:
            raise StopBackfill(f"cannot publish to {self._topic}: {error}") from error
        except Exception as error:  # noqa: BLE001 - any publish failure is this run's outcome
            return RunResult(RunOutcome.FAILED, f"publish failed: {error}")
        return RunResult(RunOutcome.SENT)


class TextSink(Protocol):
    """Where text goes: a text file, or :class:`CurrentStream`."""

    def write(self, text: str, /) -> int:
        """Write ``text``."""
        ...

    def flush(self) -> None:
        """Push buffered text out."""
        ...


class DryRunSink:
    """Writes each message as one JSON line instead of sending it (input for ``replay``)."""

    def __init__(self, out: TextSink) -> None:
        """Write to ``out``; lines from concurrent workers never interleave."""
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, run: RunMessage) -> RunResult:
        """Write the message; a closed output (``| head``) stops the backfill."""
        line = run.data.decode() + "\n"
        with self._lock:
            try:
                self._out.write(line)
                self._out.flush()
            except BrokenPipeError as error:
                raise StopBackfill("the output was closed") from error
        return RunResult(RunOutcome.SENT)


# Running: discovery in the calling thread, runs on a bounded pool.


def run_backfill(  # noqa: PLR0913 - each keyword is one independent knob of a run
    store: ArtifactStore,
    prefixes: Sequence[str],
    selection: Selection,
    sink: Sink,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    tally: Tally | None = None,
) -> Tally:
    """Find the runs under ``prefixes``, send each finished one to ``sink``; return the tally.

    At most ``concurrency`` runs are processed at once and at most ``LOOKAHEAD_PER_WORKER`` times
    that many found folders wait for a worker: discovery pulls the next folder only when there is
    room. Setting ``tally.stop`` stops discovery; runs already handed to workers finish, so every
    folder counted as found has an outcome when this returns. ``prefixes`` should be
    :func:`independent_prefixes` (a folder under two of them is processed twice).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    tally = tally or Tally()
    room = threading.BoundedSemaphore(concurrency * (1 + LOOKAHEAD_PER_WORKER))

    def release(_: Future[None]) -> None:
        room.release()

    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="backfill")
    try:
        for folder in _discover(store, prefixes, tally):
            if not _wait_for_room(room, tally.stop):
                break
            tally.add_found()
            pool.submit(_process, store, folder, selection, sink, tally).add_done_callback(release)
    except BaseException:
        # KeyboardInterrupt (a second Ctrl-C): drop queued runs, let those running end alone.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    tally.discovery_finished()
    return tally


def _wait_for_room(room: threading.BoundedSemaphore, stop: threading.Event) -> bool:
    """Wait until a worker slot frees up; ``False`` if the backfill is stopped meanwhile."""
    while not stop.is_set():
        if room.acquire(timeout=0.05):
            if stop.is_set():
                room.release()
                return False
            return True
    return False


def _discover(store: ArtifactStore, prefixes: Sequence[str], tally: Tally) -> Iterator[str]:
    """Yield run folders under each prefix; a prefix that cannot be listed is recorded, skipped."""
    for prefix in prefixes:
        if tally.stop.is_set():
            return
        try:
            for folder in store.find(prefix, facts.PROWJOB):
                yield folder
                if tally.stop.is_set():
                    return
        except ArtifactError as error:
            tally.add_listing_error(f"{prefix}: {error}")
        except Exception as error:  # noqa: BLE001 - a listing bug must still end in a summary
            tally.add_listing_error(f"{prefix}: unexpected error: {error!r}")


def _process(
    store: ArtifactStore, folder: str, selection: Selection, sink: Sink, tally: Tally
) -> None:
    try:
        result = process_run(store, folder, selection, sink)
    except StopBackfill as stop:
        result = RunResult(RunOutcome.FAILED, str(stop))
        tally.set_fatal(str(stop))
    except Exception as error:  # noqa: BLE001 - one run's bug must not end the backfill silently
        result = RunResult(RunOutcome.FAILED, f"unexpected error: {error!r}")
    tally.add(folder, result)


def process_run(store: ArtifactStore, folder: str, selection: Selection, sink: Sink) -> RunResult:
    """Read one folder's prowjob.json, decide, and send its message if it is a finished run."""
    if selection.job is not None:
        segment = job_segment(folder)
        if segment and not selection.job_matches(segment):
            return RunResult(RunOutcome.SKIPPED, "job name does not match --job")
    try:
        data = store.read(folder, facts.PROWJOB)
    except ArtifactError as error:
        return RunResult(RunOutcome.FAILED, f"cannot read prowjob.json: {error}")
    if data is None:
        return RunResult(RunOutcome.SKIPPED, "prowjob.json disappeared after it was listed")
    assessed = assess(folder, data, selection)
    if isinstance(assessed, RunResult):
        return assessed
    not_ran = _pod_never_ran(store, folder, data)
    if not_ran:
        return RunResult(RunOutcome.SKIPPED, not_ran)
    with _read_ahead(store, folder, data):
        return sink(assessed)


def _pod_never_ran(store: ArtifactStore, folder: str, prowjob_data: bytes) -> str:
    """Read what shows whether the pod ran; an unreadable file leaves it to the pipeline."""
    try:
        prowjob = facts.parse_prowjob(prowjob_data)
        if not prowjob.runs_in_a_pod:
            return ""
        # Most runs show a pod-utils started.json: one read decides them.
        started = _parsed(store, folder, facts.STARTED, facts.parse_started)
        if started is not None and not started.by_crier:
            return ""
        finished = _parsed(store, folder, facts.FINISHED, facts.parse_finished)
        podinfo = _parsed(store, folder, facts.PODINFO, facts.parse_podinfo)
    except (ArtifactError, ShapeError, ValueError, RecursionError):
        return ""
    return never_ran(prowjob, started, finished, podinfo)


def _parsed(store: ArtifactStore, folder: str, name: str, parse: Callable[[bytes], T]) -> T | None:
    data = store.read(folder, name)
    return parse(data) if data is not None else None


class ReadAheadStore:
    """A store that serves the prowjob.json a worker just read, instead of reading it again.

    The pipeline may read prowjob.json on a thread of its read pool as well as on the calling
    one; the worker that calls it has that file in hand. Remembered per folder while the
    worker's pipeline call runs (so at most one per worker), then forgotten.
    """

    def __init__(self, inner: ArtifactStore) -> None:
        """Read everything else from ``inner``."""
        self._inner = inner
        self._lock = threading.Lock()
        self._held: dict[str, bytes] = {}

    def remember(self, folder: str, data: bytes | None) -> None:
        """Serve ``data`` as ``folder``'s prowjob.json (``None``: forget it)."""
        # Crier's gcs_path may end in "/" where the listed folder does not.
        key = folder.rstrip("/")
        with self._lock:
            if data is None:
                self._held.pop(key, None)
            else:
                self._held[key] = data

    def read(self, folder: str, name: str) -> bytes | None:
        """Return the remembered prowjob.json, else read from the inner store."""
        if name == facts.PROWJOB:
            with self._lock:
                held = self._held.get(folder.rstrip("/"))
            if held is not None:
                return held
        return self._inner.read(folder, name)

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """List through the inner store."""
        return self._inner.list_files(folder, under, name_glob, limit)

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """List through the inner store."""
        return self._inner.find(prefix, name)


@contextmanager
def _read_ahead(store: ArtifactStore, folder: str, data: bytes) -> Iterator[None]:
    if not isinstance(store, ReadAheadStore):
        yield
        return
    store.remember(folder, data)
    try:
        yield
    finally:
        store.remember(folder, None)


# The command.


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    """The ``prowtrace backfill`` command line, minus the core options."""

    prefixes: tuple[str, ...]
    since: str | None = None
    until: str | None = None
    job: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    publish: str | None = None
    dry_run: bool = False
    metrics: bool = False
    """Record CI/CD metrics (``OTEL_METRICS_EXPORTER``) for the traced runs: off by default,
    since history replayed into live counters distorts them."""


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    """A validated command line: what to list, which runs to keep, where their messages go."""

    prefixes: tuple[str, ...]
    selection: Selection
    concurrency: int
    topic: str | None = None
    dry_run: bool = False
    metrics: bool = False

    @property
    def sent_label(self) -> str:
        """What "sent" means in this mode, for the progress and the summary."""
        if self.dry_run:
            return "would be sent"
        return "published" if self.topic else "traced"


def plan_from_options(options: BackfillOptions, now: datetime) -> BackfillPlan:
    """Validate the options; raise :class:`~processor.config.ConfigError` naming the bad one."""
    if not options.prefixes:
        raise ConfigError("give at least one artifact prefix, e.g. gs://BUCKET/logs/JOB/")
    try:
        prefixes = independent_prefixes(options.prefixes)
    except UnsupportedLocation as error:
        raise ConfigError(f"prefix: {error}") from None
    try:
        since = parse_moment(options.since, now) if options.since else None
        until = parse_moment(options.until, now) if options.until else None
    except ValueError as error:
        raise ConfigError(f"--since/--until: {error}") from None
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since ({since:%Y-%m-%dT%H:%M:%SZ}) must be before --until")
    try:
        job = re.compile(options.job) if options.job else None
    except re.error as error:
        raise ConfigError(f"--job {options.job!r} is not a regular expression: {error}") from None
    if options.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {options.concurrency}")
    if options.publish is not None and not TOPIC_PATTERN.match(options.publish):
        raise ConfigError(f"--publish {options.publish!r}: expected projects/PROJECT/topics/TOPIC")
    return BackfillPlan(
        prefixes=tuple(prefixes),
        selection=Selection(since=since, until=until, job=job),
        concurrency=options.concurrency,
        topic=options.publish,
        dry_run=options.dry_run,
        metrics=options.metrics,
    )


def backfill_settings(settings: Settings, *, grace_given: bool) -> Settings:
    """Return ``settings`` with grace 0 unless ``--grace-seconds`` was given.

    A deployment's ``PROWTRACE_GRACE_SECONDS`` is for live messages; backfilled runs are over.
    """
    if settings.artifacts == "none":
        raise ConfigError(
            "backfill finds runs by listing artifact folders: it needs an artifact store "
            "(--artifacts gcs or --artifacts-mirror DIR), not none"
        )
    return settings if grace_given else replace(settings, grace=timedelta(0))


@dataclass
class Edges:
    """The I/O a backfill command uses; tests replace what they need."""

    store: ArtifactStore
    sink: Sink
    close: list[Callable[[], None]] = field(default_factory=list)
    """Called in order when the backfill is over (flush exporters, stop publishers)."""


def run_command(  # noqa: PLR0913 - the plan, its edges, and where output goes
    plan: BackfillPlan,
    edges: Edges,
    *,
    progress: TextIO,
    out: TextIO,
    stop: threading.Event | None = None,
    interval: float = DEFAULT_LINE_INTERVAL_SECONDS,
) -> Summary:
    """Run ``plan`` with ``edges``, showing progress on ``progress``; print the summary to ``out``.

    Returns the summary; its ``exit_code`` is the command's exit status.
    """
    tally = Tally(stop)
    try:
        with show_progress(tally, progress, sent_label=plan.sent_label, interval=interval):
            run_backfill(
                edges.store,
                plan.prefixes,
                plan.selection,
                edges.sink,
                concurrency=plan.concurrency,
                tally=tally,
            )
    finally:
        for close in edges.close:
            close()
    summary = tally.summary(plan.sent_label)
    out.write(summary.render() + "\n")
    out.flush()
    return summary


def build_edges(
    plan: BackfillPlan, settings: Settings, env: Mapping[str, str], *, dry_run_out: TextSink
) -> Edges:
    """Build the store and the sink the plan needs, as a deployment would configure them.

    Pipeline mode exports as ``OTEL_*`` say, through a group-commit exporter shared by the
    workers; ``--publish`` uses a batching publisher (honours ``PUBSUB_EMULATOR_HOST``).
    """
    store = open_store(settings.artifacts, max_bytes=settings.max_artifact_bytes)
    if store is None:  # backfill_settings refuses "none"; this keeps mypy and readers sure
        raise ConfigError("backfill needs an artifact store")
    reader = ReadAheadStore(store)
    if plan.dry_run:
        return Edges(reader, DryRunSink(dry_run_out))
    if plan.topic:
        publisher = _publisher(plan.concurrency)
        return Edges(
            reader,
            PublishSink(publisher, plan.topic),
            close=[publisher.stop, publisher.transport.close],
        )
    # Imported here: the exporters pull in gRPC and HTTP clients only this mode needs.
    from processor.app import build_pipeline, service_exporter, service_metrics  # noqa: PLC0415
    from processor.export.metrics import OFFLINE_FLUSH_SECONDS  # noqa: PLC0415

    exporter = service_exporter(env)
    metrics = service_metrics(env, wanted=plan.metrics)
    pipeline = build_pipeline(settings, env, exporter=exporter, store=reader, metrics=metrics)
    return Edges(
        reader,
        PipelineSink(pipeline),
        close=[exporter.shutdown, lambda: metrics.shutdown(OFFLINE_FLUSH_SECONDS)],
    )


def _publisher(concurrency: int) -> Any:  # noqa: ANN401 - the untyped PublisherClient
    """Return a batching publisher: each worker's message joins whichever batch is open."""
    # Imported here: the Pub/Sub client is heavy and only --publish needs it.
    from google.auth.exceptions import DefaultCredentialsError  # noqa: PLC0415
    from google.cloud.pubsub_v1 import PublisherClient  # noqa: PLC0415
    from google.cloud.pubsub_v1.types import BatchSettings  # noqa: PLC0415

    batching = BatchSettings(max_messages=concurrency, max_latency=0.01)
    try:
        return PublisherClient(batch_settings=batching)
    except DefaultCredentialsError as error:
        raise ConfigError(
            "--publish needs Application Default Credentials (or PUBSUB_EMULATOR_HOST for the "
            f"emulator): {error}"
        ) from error


def backfill_main(
    options: BackfillOptions,
    settings: Settings,
    *,
    grace_given: bool,
    env: Mapping[str, str],
) -> int:
    """Run ``prowtrace backfill``; return its exit status (see the module docstring).

    Progress goes to standard error; the summary to standard output, except in a dry run, whose
    standard output is the messages (JSON lines, ready for ``prowtrace replay``).
    """
    plan = plan_from_options(options, datetime.now(UTC))
    settings = backfill_settings(settings, grace_given=grace_given)
    edges = build_edges(plan, settings, env, dry_run_out=CurrentStream("stdout"))
    stop = threading.Event()
    try:
        with stop_on_signals(stop.set):
            summary = run_command(
                plan,
                edges,
                progress=sys.stderr,
                out=sys.stderr if plan.dry_run else sys.stdout,
                stop=stop,
            )
    except KeyboardInterrupt:  # the second Ctrl-C: the user wants out now
        write_line(sys.stderr, "backfill: quit; runs in flight were cut short")
        return ExitCode.INTERRUPTED
    return summary.exit_code


def log_stream() -> TextIO:
    """Return the stream logs should go to: standard error, above the progress bar if shown."""
    return cast("TextIO", CurrentStream("stderr"))
