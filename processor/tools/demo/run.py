"""``prowtrace demo``: a bundled Prow job stream through the Pub/Sub emulator and the pull worker.

Steps: generate a small fleet of jobs with their artifacts (a local bucket mirror in a temporary
directory); start Google's Pub/Sub emulator; create crier's topic and a subscription; start the
pull worker (the same ``PullWorker``, pipeline and group-commit exporter as ``prowtrace pull``,
grace 0 since the artifacts are already written); publish the stream in order; wait until every
message is acked (the worker acks a message only once its spans are exported, so the OTLP JSON
file then holds every span); stop everything; draw the waterfalls from that file. Spans also go,
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to that endpoint. Without the
emulator the demo says so, writes the same jobs to a directory it keeps, and prints the
``prowtrace replay`` and ``show`` commands that trace them without Pub/Sub.

Everything the demo starts (the emulator's java process, threads, channels, the temporary
directory) is stopped or removed on success, failure, Ctrl-C and SIGTERM alike. The worker's logs
go to a file in the temporary directory (kept with ``--keep``), not the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import structlog
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExporter
from rich.console import Console

from processor.app import build_pipeline, pull_worker, service_exporter
from processor.config import PullSettings, Settings
from processor.exit_codes import ExitCode, killed_by
from processor.export.exporters import FanOutExporter, build_exporter
from processor.export.group_commit import GroupCommitExporter
from processor.export.metrics import MetricsRecorder, build_metrics
from processor.export.otlp_json import DecodedSpan, OtlpJsonFileExporter, read_otlp_json
from processor.logs import configure_logging
from processor.synthetic import write_jsonl
from processor.tools.demo import report
from processor.tools.demo.fleet import DEFAULT_JOBS, DemoFleet, build_fleet
from processor.tools.demo.pubsub import (
    EmulatorUnavailable,
    create_topic_and_subscription,
    publish_in_order,
    start_emulator,
)
from processor.tools.demo.pubsub_emulator import PubSubEmulator
from processor.tools.demo.sinks import (
    EndpointDelivery,
    EndpointForwarder,
    endpoint_hint,
    otlp_endpoint,
    otlp_protocol,
    unreachable_reason,
)
from processor.tools.waterfall import format_duration, unique_spans
from processor.transports.pull import PullWorker

DEFAULT_OUTPUT = "prowtrace-demo-traces.jsonl"
MAX_JOBS = 1000
STALL_SECONDS = 20.0
"""Give up when no message was acked for this long."""
ENDPOINT_FLUSH_SECONDS = 15.0
PULL_THREADS = 8
LOG_FILE = "prowtrace.log"
_LOG_TAIL_LINES = 15
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class DemoOptions:
    """The command's flags."""

    jobs: int = DEFAULT_JOBS
    seed: int | None = None
    """``None``: a fresh seed each run (printed, so ``--seed`` can replay it)."""
    output: Path = Path(DEFAULT_OUTPUT)
    keep: bool = False
    metrics: bool = False
    """Record the CI/CD metrics in memory and print a summary of them."""


@dataclass(frozen=True)
class DemoResult:
    """What a finished demo did."""

    emulator_pid: int
    seed: int
    jobs: int
    messages: int
    traces: int
    spans: int
    output: Path
    kept: Path | None
    endpoint: str
    delivery: EndpointDelivery | None
    elapsed: float


class DemoFailed(RuntimeError):
    """The demo could not finish; the message says why, ``log_tail`` what the worker logged."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        """Keep the reason and the end of the worker's log."""
        super().__init__(message)
        self.log_tail = log_tail


class EmulatorMissing(Exception):
    """No emulator: the fleet was written to ``fleet_dir`` (kept) for ``prowtrace replay``."""

    def __init__(self, reason: str, fleet_dir: Path, messages: Path, mirror: Path) -> None:
        """Keep why, and where the messages and the bucket mirror are."""
        super().__init__(reason)
        self.reason = reason
        self.fleet_dir = fleet_dir
        self.messages = messages
        self.mirror = mirror


class UsageError(ValueError):
    """A flag has a value the demo cannot use."""


class Interrupted(BaseException):
    """SIGTERM arrived; raised in the main thread so every cleanup runs."""

    def __init__(self, signum: int) -> None:
        """Remember the signal, for the exit status."""
        super().__init__(f"signal {signum}")
        self.signum = signum


def check_options(options: DemoOptions) -> None:
    """Refuse flags that cannot work before starting anything."""
    if not 1 <= options.jobs <= MAX_JOBS:
        raise UsageError(f"--jobs must be between 1 and {MAX_JOBS}, got {options.jobs}")
    directory = options.output.parent
    if not directory.is_dir():
        raise UsageError(f"--output {options.output}: directory {directory} does not exist")
    if options.output.is_dir():
        raise UsageError(f"--output {options.output} is a directory; give a file name")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"--output {options.output}: cannot write in {directory}")


def demo_main(
    options: DemoOptions,
    console: Console | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Run the demo as the ``prowtrace demo`` command; return the exit status."""
    out = console or Console(highlight=False)
    try:
        check_options(options)
    except UsageError as error:
        out.print(f"prowtrace demo: {error}", markup=False, highlight=False)
        return ExitCode.USAGE
    with _sigterm_interrupts():
        try:
            run_demo(options, out, environ=environ)
        except (KeyboardInterrupt, Interrupted) as stop:
            signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
            removed = "" if options.keep else " and removed its files"
            out.print(f"\nInterrupted: stopped everything the demo started{removed}.")
            return killed_by(signum)
        except EmulatorMissing as missing:
            for line in report.replay_offer(
                missing.reason,
                missing.messages,
                missing.mirror,
                options.output,
                report.command_prefix(environ),
            ):
                out.print(line, soft_wrap=True)
            return ExitCode.NOT_ALL_TRACED
        except DemoFailed as error:
            out.print(f"prowtrace demo failed: {error}", style="red", markup=False)
            if error.log_tail:
                out.print("The worker's last log lines:", style="dim")
                out.print(error.log_tail, style="dim", markup=False, highlight=False)
            return ExitCode.NOT_ALL_TRACED
    return ExitCode.OK


def run_demo(  # noqa: PLR0913 - the keyword-only ones are seams for tests
    options: DemoOptions,
    console: Console,
    *,
    environ: Mapping[str, str] = os.environ,
    temp_parent: Path | None = None,
    emulator_factory: Callable[[], PubSubEmulator] = PubSubEmulator,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DemoResult:
    """Run the demo, printing to ``console``; raise ``DemoFailed`` if it cannot finish.

    ``environ`` supplies the OTEL_* settings of the user's endpoint (the OTLP exporters also read
    the process environment themselves); ``temp_parent`` is where the temporary directory goes
    (default: the system's); the jobs end a minute before ``now()``. Everything started is
    stopped before this returns or raises.
    """
    started = time.monotonic()
    seed = options.seed if options.seed is not None else secrets.randbelow(10_000)
    workdir: Path | None = None
    keep = options.keep
    stack = ExitStack()
    try:
        workdir = Path(tempfile.mkdtemp(prefix="prowtrace-demo-", dir=temp_parent))
        log_path = workdir / LOG_FILE
        stack.enter_context(_logs_to(log_path))
        try:
            context = _Context(
                seed, console, stack, workdir, environ, emulator_factory, now, started
            )
            return _run(options, context)
        except EmulatorMissing:
            keep = True  # it holds the fleet the user is told to replay
            raise
        except DemoFailed as error:
            raise DemoFailed(str(error), _tail(log_path)) from error
        except Exception as error:
            raise DemoFailed(f"{type(error).__name__}: {error}", _tail(log_path)) from error
    finally:
        with _signals_held():  # a second Ctrl-C must not leave java or files behind
            stack.close()
            if workdir is not None and not keep:
                shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class _Context:
    """What one run works with."""

    seed: int
    console: Console
    stack: ExitStack
    """Stops everything started, in reverse order, when the run ends however it ends."""
    workdir: Path
    environ: Mapping[str, str]
    emulator_factory: Callable[[], PubSubEmulator]
    now: Callable[[], datetime]
    started: float

    @property
    def otel_env(self) -> dict[str, str]:
        """The environment for exporters: never a cloud one, whatever OTEL_TRACES_EXPORTER says."""
        return {**self.environ, "OTEL_TRACES_EXPORTER": "otlp"}


def _run(options: DemoOptions, context: _Context) -> DemoResult:
    console, workdir, environ, seed = (
        context.console,
        context.workdir,
        context.environ,
        context.seed,
    )
    otel_env = context.otel_env
    console.print(report.header(console, options.jobs, seed))
    steps = report.Steps(console)
    fleet = build_fleet(
        options.jobs,
        seed,
        workdir / "bucket-mirror",
        now=context.now(),
    )
    steps.done(
        f"Generated {len(fleet.jobs)} jobs: {len(fleet.messages)} crier messages, "
        f"{fleet.artifact_files} artifact files"
    )
    sink = _Sink.open(workdir, environ=environ, otel_env=otel_env, steps=steps, stack=context.stack)
    reader = InMemoryMetricReader() if options.metrics else None
    metrics = build_metrics(otel_env, readers=[reader]) if reader else MetricsRecorder(None)
    try:
        emulator_pid, spans = _trace_through_pubsub(fleet, sink, steps, context, metrics=metrics)
    except EmulatorUnavailable as error:
        raise _fleet_for_replay(fleet, workdir, error.reason) from error
    delivery = sink.finish_endpoint(console, steps)
    shutil.move(sink.file_path, options.output)

    views = report.print_waterfalls(console, spans, fleet.scenario_by_trace)
    report.print_summary(console, views, fleet.scenario_by_trace)
    if reader is not None:
        report.print_metrics(console, reader.get_metrics_data())
        metrics.shutdown()
    console.print()
    elapsed = time.monotonic() - context.started
    kept = workdir if options.keep else None
    closing = report.Closing(
        jobs=len(views),
        spans=len(spans),
        elapsed=elapsed,
        output=options.output,
        command=report.command_prefix(environ),
        endpoint=sink.endpoint,
        delivery=delivery,
        skipped_endpoint=sink.skipped_endpoint,
        kept=kept,
    )
    report.print_closing(console, closing)
    return DemoResult(
        emulator_pid=emulator_pid,
        seed=seed,
        jobs=len(fleet.jobs),
        messages=len(fleet.messages),
        traces=len(views),
        spans=len(spans),
        output=options.output,
        kept=kept,
        endpoint=sink.endpoint,
        delivery=delivery,
        elapsed=elapsed,
    )


@dataclass
class _Sink:
    """Where the worker's spans go: the OTLP JSON file, and the user's endpoint."""

    file_path: Path
    endpoint: str
    forwarder: EndpointForwarder | None
    skipped_endpoint: str

    @classmethod
    def open(
        cls,
        workdir: Path,
        *,
        environ: Mapping[str, str],
        otel_env: Mapping[str, str],
        steps: report.Steps,
        stack: ExitStack,
    ) -> _Sink:
        """Prepare the destinations; the endpoint only if something listens there."""
        endpoint = otlp_endpoint(environ)
        forwarder, skipped = None, ""
        if endpoint:
            forwarder, skipped = _endpoint_forwarder(endpoint, otel_env, steps)
            if forwarder is not None:
                stack.callback(forwarder.finish, 0)
        return cls(workdir / "traces.jsonl", endpoint, forwarder, skipped)

    def exporter(self, otel_env: Mapping[str, str]) -> GroupCommitExporter:
        """One exporter for the pipeline; a message is acked once the file has its spans.

        The services' exporter (:func:`processor.app.service_exporter`) around these destinations.
        """
        destinations: list[SpanExporter] = [OtlpJsonFileExporter(self.file_path)]
        if self.forwarder is not None:
            destinations.append(self.forwarder)
        return service_exporter(otel_env, inner=FanOutExporter(destinations))

    def finish_endpoint(self, console: Console, steps: report.Steps) -> EndpointDelivery | None:
        """Wait (bounded) for the endpoint to take the spans; report how it went."""
        if self.forwarder is None:
            return None
        with console.status(f"Sending the spans to {self.endpoint} ..."):
            delivery = self.forwarder.finish(ENDPOINT_FLUSH_SECONDS)
        if delivery.ok:
            steps.done(f"Sent every span to {self.endpoint}")
        else:
            steps.warn(f"{self.endpoint} did not take every span (see the end)")
        return delivery


def _fleet_for_replay(fleet: DemoFleet, workdir: Path, reason: str) -> EmulatorMissing:
    """Write crier's messages beside the bucket mirror, for ``prowtrace replay``."""
    messages = workdir / "messages.jsonl"
    write_jsonl(fleet.messages, messages, envelope=True)  # publish times kept, as replay reads
    return EmulatorMissing(reason, workdir, messages, fleet.mirror_root)


def _trace_through_pubsub(
    fleet: DemoFleet,
    sink: _Sink,
    steps: report.Steps,
    context: _Context,
    *,
    metrics: MetricsRecorder,
) -> tuple[int, list[DecodedSpan]]:
    """Start Pub/Sub and the worker, publish the stream, wait for every ack, stop them.

    Return the emulator's process ID (for the record: it is stopped by then) and the spans.
    """
    # Stopped in reverse order of registration: worker, exporters, clients, Pub/Sub. On failure
    # the caller's stack stops them (with signals held), so a Ctrl-C anywhere leaves nothing.
    running = context.stack.enter_context(ExitStack())
    emulator = start_emulator(running, context.emulator_factory)
    steps.done(f"Started Google's Pub/Sub emulator on {emulator.host} (pid {emulator.pid})")
    emulator_pid = emulator.pid
    topic, subscription = create_topic_and_subscription(emulator)
    steps.done(f"Created topic {_short(topic)} and subscription {_short(subscription)}")

    exporter = sink.exporter(context.otel_env)
    running.callback(exporter.shutdown)
    pipeline = build_pipeline(
        Settings(artifacts=str(fleet.mirror_root), grace=timedelta(0)),
        context.otel_env,
        exporter=exporter,
        metrics=metrics,
    )
    worker = pull_worker(
        emulator.streaming_subscriber(),
        PullSettings(subscription=subscription, threads=PULL_THREADS),
        pipeline.handle,
        context.otel_env,
    )
    worker.start()
    running.callback(worker.stop)
    steps.done("Started the pull worker (grace 0: the artifacts are already written)")

    published = publish_in_order(emulator, topic, fleet.messages)
    spread = format_duration(int(fleet.timeline.total_seconds() * 1e9))
    steps.done(f"Published crier's {published} messages in order: {spread} of activity, at once")
    _await_acks(steps.console, worker, published)
    spans = _read_spans(sink.file_path)
    traces = len({span.trace_id for span in spans})
    steps.done(f"Traced {traces} jobs: {len(spans)} spans, all {published} messages acked")
    with _signals_held():
        running.close()
    steps.done("Stopped the worker and the emulator")
    return emulator_pid, spans


def _short(path: str) -> str:
    """``projects/P/topics/NAME`` -> ``NAME``."""
    return path.rsplit("/", 1)[-1]


def _endpoint_forwarder(
    endpoint: str, otel_env: Mapping[str, str], steps: report.Steps
) -> tuple[EndpointForwarder | None, str]:
    """Build the user's OTLP exporter behind a forwarder, unless nothing listens there."""
    hint = endpoint_hint(otel_env)
    if hint:
        steps.warn(f"{endpoint}: {hint}")
    reason = unreachable_reason(endpoint)
    if reason:
        steps.warn(f"Not sending to {endpoint}: {reason}")
        return None, reason
    forwarder = EndpointForwarder(build_exporter(otel_env))
    steps.done(f"Will also send every span to {endpoint} ({otlp_protocol(otel_env)})")
    return forwarder, ""


def _await_acks(console: Console, worker: PullWorker, messages: int) -> None:
    """Wait until every message was acked: its spans were exported before the ack."""
    stop = threading.Event()
    ended: list[str] = []
    watcher = threading.Thread(
        target=lambda: ended.append(worker.wait(stop)), name="demo-worker-watch", daemon=True
    )
    watcher.start()
    try:
        _watch(console, worker, messages, ended)
    finally:
        stop.set()
        watcher.join()


def _watch(console: Console, worker: PullWorker, messages: int, ended: list[str]) -> None:
    last_acked = -1
    last_change = time.monotonic()
    with console.status("Traces arriving ...") as status:
        while (acked := worker.acked) < messages:
            if ended:
                raise DemoFailed(f"the pull worker's stream ended: {ended[0]}")
            if acked != last_acked:
                last_acked, last_change = acked, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                raise DemoFailed(
                    f"no message acked for {STALL_SECONDS:g} s: {acked}/{messages} acked; "
                    f"outcomes so far: {dict(worker.outcomes) or 'none'}"
                )
            status.update(f"Traces arriving: {acked}/{messages} messages acked")
            time.sleep(_POLL_SECONDS)


def _read_spans(path: Path) -> list[DecodedSpan]:
    """Read back what the worker wrote, each span once (a redelivery writes it again)."""
    with path.open(encoding="utf-8") as lines:
        return unique_spans(read_otlp_json(lines))


@contextlib.contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Send structlog and standard logging to ``path`` for the demo; restore them afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    with path.open("a", encoding="utf-8") as out:
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)  # first, so configure_logging's basicConfig adds no other
        try:
            configure_logging("INFO", "json", out)
            yield
        finally:
            root.removeHandler(handler)
            structlog.configure(**saved)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into ``Interrupted`` in the main thread, so cleanup runs as on Ctrl-C."""
    if not _in_main_thread():
        yield
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM while cleaning up (main thread only), then restore them."""
    if not _in_main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler installed outside Python, which cannot be put back; use the default
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
