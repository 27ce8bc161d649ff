"""End-to-end harness: real ``prowtrace`` consumers between the Pub/Sub emulator and a receiver.

The end-to-end tests, the fault-injection suite and the benchmarks all run the same loop: write
a corpus's artifacts to a local mirror, start the CLI (``prowtrace pull`` or ``prowtrace serve``)
as a child process pointed at Google's Pub/Sub emulator and an :class:`OtlpReceiver`, publish the
corpus's crier messages, and wait until the receiver holds exactly the span set the oracle
expects::

    corpus = prepare_corpus(tmp_path, n_jobs=40)
    route = create_route(emulator, "proj", "pull")
    with OtlpReceiver() as receiver, ConsumerSet(tmp_path / "logs") as consumers:
        env = consumer_env(emulator.host, receiver, corpus.mirror)
        consumers.start_pull(route.subscription, env)
        publish_messages(emulator, route.topic, corpus.messages)
        wait_for_traces(receiver, corpus.expected, timeout=30, consumers=consumers)

Every child process writes its standard output and error to a log file; :class:`ConsumerSet`
stops every process it started (SIGTERM, then SIGKILL) when its ``with`` block ends, even on
failure, and prints each log's tail then so that pytest shows it with the failing test.

Emulator defect this harness works around (measured on 0.8.20, with google-cloud-pubsub 2.44):
the emulator never notices that a streaming pull has ended, whether the client cancelled it
(a graceful stop: the emulator's gRPC server fails on the RST_STREAM with
``NoSuchMethodError: io.grpc.InternalStatus.asRuntimeException``) or its process died. The dead
stream stays registered and keeps taking messages: whatever its consumer nacked on the way out,
whatever its leases released, and a share of new messages, each leased to nobody for the
stream's ack deadline (60 s, the Python client's default) and then taken again. A restarted
consumer on that subscription never sees them. The real service ends the stream, redelivers
nacked messages at once and expired leases after the ack deadline. :func:`evict_dead_streams`
ends every stream of a subscription (so do it before a new consumer connects), and
:func:`redeliver_unacked` makes every message not yet acked deliverable at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from google.pubsub_v1 import PubsubMessage, PushConfig, ReceivedMessage
from opentelemetry.sdk.resources import Resource

from processor.export.otlp_json import DecodedSpan
from processor.local_service import LocalService
from processor.synthetic import Published, generate, message_bytes, stream, write_mirror
from support.oracle import SpanKey, expected_spans, trace_problems
from support.otlp_receiver import OtlpReceiver, SpanConflict
from support.pubsub_admin import EmulatorForTests

CONSUMER_STOP_SECONDS = 10.0
"""Cloud Run's budget between SIGTERM and SIGKILL: a consumer must exit within it."""
_READY_TIMEOUT_SECONDS = 20.0
_POLL_SECONDS = 0.1
_LOG_TAIL_LINES = 60
_DROPPED_PREFIXES = ("OTEL_", "PROWTRACE_", "PUBSUB_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_")
"""Variables of the test run's own environment that would change what a consumer does."""
_DROPPED_NAMES = ("K_SERVICE", "PORT", "STORAGE_EMULATOR_HOST")
_EVICTION_ENDPOINT = "http://127.0.0.1:9/"
"""A push endpoint nobody listens on (the discard port): only set for a moment, see below."""
_UNACKED_PULL_SECONDS = 0.5
_EVICTION_SECONDS = 0.5
"""The emulator's streaming-pull loops look at their subscription every 50 ms."""


# -- the corpus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class E2eCorpus:
    """A corpus ready for an end-to-end run: messages, their artifacts, the spans they must give."""

    messages: tuple[Published, ...]
    """Crier's messages in publish order."""
    mirror: Path
    """The artifact mirror (``PROWTRACE_ARTIFACTS``): ``gs://B/P`` is ``mirror/B/P``."""
    expected: Mapping[SpanKey, DecodedSpan]
    """Exactly the spans a consumer must export for ``messages``, by ``(trace_id, span_id)``."""

    @property
    def trace_ids(self) -> frozenset[str]:
        """The traces the corpus must produce (one per job that ran)."""
        return frozenset(trace_id for trace_id, _ in self.expected)

    def payloads(self) -> list[bytes]:
        """Every message's bytes, as crier published them, in publish order."""
        return [message_bytes(message) for message in self.messages]


def prepare_corpus(
    root: Path, n_jobs: int = 40, *, seed: int = 0, resource: Resource | None = None
) -> E2eCorpus:
    """Generate ``n_jobs`` lifecycles, write their artifacts under ``root`` and compute the oracle.

    ``resource`` must be the one the consumers build from their environment (by default
    ``service.name=prow``, what :func:`consumer_env` gives). The emulator stamps its own publish
    times, not the corpus's, so the expected spans must not depend on publish times: this raises
    ``ValueError`` naming the spans that do.
    """
    jobs = list(generate(n_jobs, seed=seed))
    mirror = root / "mirror"
    write_mirror(jobs, mirror)
    messages = tuple(stream(jobs))
    dependent = publish_time_dependent_spans(messages, mirror, resource=resource)
    if dependent:
        raise ValueError(
            "these expected spans change with the messages' publish times, so an emulator run "
            "(which stamps its own) cannot be compared with the oracle:\n  "
            + "\n  ".join(dependent)
        )
    return E2eCorpus(
        messages=messages,
        mirror=mirror,
        expected=expected_spans(messages, mirror, resource=resource),
    )


def publish_time_dependent_spans(
    messages: Sequence[Published],
    mirror: Path,
    *,
    resource: Resource | None = None,
    now: datetime | None = None,
) -> list[str]:
    """List the differences between the spans for the corpus's publish times and for recent ones.

    The recent times keep the stream's order and lie in the past (``now`` minus a minute and
    upwards, a millisecond apart), as an emulator's would by the time a consumer reads them.
    """
    recent = (now or datetime.now(UTC)) - timedelta(minutes=1)
    shifted = [
        replace(message, publish_time=recent + timedelta(milliseconds=index))
        for index, message in enumerate(messages)
    ]
    return trace_problems(
        expected_spans(shifted, mirror, resource=resource),
        expected_spans(messages, mirror, resource=resource),
    )


# -- Pub/Sub ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A topic and its subscription, plus the dead-letter topic and its subscription if any."""

    topic: str
    subscription: str
    dead_letter_topic: str | None = None
    dead_letter_subscription: str | None = None


def unique_name(prefix: str) -> str:
    """Return ``prefix`` plus a short random suffix: fresh resources in a shared emulator."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_route(  # noqa: PLR0913 - each keyword is one subscription setting
    emulator: EmulatorForTests,
    project: str,
    prefix: str,
    *,
    dead_letter_attempts: int | None = None,
    push_endpoint: str | None = None,
    ack_deadline_seconds: int = 10,
    retry_min_backoff_seconds: float | None = None,
) -> Route:
    """Create a fresh topic and subscription (names start with ``prefix``) in the emulator.

    ``dead_letter_attempts`` adds a dead-letter topic, with a pull subscription of its own so
    nothing it receives is lost, and a policy of that many delivery attempts (5..100).
    ``push_endpoint`` makes the subscription a push one. See :mod:`pubsub_emulator` for how the
    emulator's redelivery timing depends on ``retry_min_backoff_seconds``.
    """
    name = unique_name(prefix)
    topic = emulator.create_topic(project, name)
    dead_letter_topic = dead_letter_subscription = None
    if dead_letter_attempts is not None:
        dead_letter_topic = emulator.create_topic(project, f"{name}-dead")
        dead_letter_subscription = emulator.create_subscription(
            project, f"{name}-dead", dead_letter_topic
        )
    subscription = emulator.create_subscription(
        project,
        name,
        topic,
        dead_letter_topic=dead_letter_topic,
        max_delivery_attempts=dead_letter_attempts or 5,
        push_endpoint=push_endpoint,
        ack_deadline_seconds=ack_deadline_seconds,
        retry_min_backoff_seconds=retry_min_backoff_seconds,
    )
    return Route(topic, subscription, dead_letter_topic, dead_letter_subscription)


def publish_messages(
    emulator: EmulatorForTests, topic: str, messages: Iterable[Published], *, batch_size: int = 1
) -> list[str]:
    """Publish crier messages' bytes in order; return the message IDs (see publish_payloads)."""
    payloads = (message_bytes(message) for message in messages)
    return publish_payloads(emulator, topic, payloads, batch_size=batch_size)


def publish_payloads(
    emulator: EmulatorForTests, topic: str, payloads: Iterable[bytes], *, batch_size: int = 1
) -> list[str]:
    """Publish raw message bodies in order; return the message IDs.

    One publish call per message by default, as crier does; ``batch_size`` messages per call
    publish large streams (benchmarks) much faster, in the same order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if batch_size == 1:
        return [emulator.publish(topic, payload) for payload in payloads]
    publisher = emulator.publisher()
    message_ids: list[str] = []
    pending: list[PubsubMessage] = []
    for payload in payloads:
        pending.append(PubsubMessage(data=payload))
        if len(pending) == batch_size:
            message_ids += publisher.publish(topic=topic, messages=pending).message_ids
            pending = []
    if pending:
        message_ids += publisher.publish(topic=topic, messages=pending).message_ids
    return message_ids


def count_unacked(emulator: EmulatorForTests, subscription: str) -> int:
    """Count the messages of ``subscription`` nobody acked, leaving them unacked.

    Call it once every consumer of the subscription has stopped (see
    :func:`redeliver_after_stop`): it pulls every unacked message and nacks them back.
    """
    redeliver_after_stop(emulator, subscription)
    unacked: dict[str, ReceivedMessage] = {}
    while batch := emulator.pull(subscription, wait_seconds=_UNACKED_PULL_SECONDS):
        unacked.update((message.message.message_id, message) for message in batch)
    emulator.nack(subscription, list(unacked.values()))
    return len(unacked)


def redeliver_after_stop(emulator: EmulatorForTests, subscription: str) -> None:
    """Do what the real service does once a subscription's consumers are gone (emulator defect).

    End their streams (:func:`evict_dead_streams`), then make every message they did not ack
    deliverable at once (:func:`redeliver_unacked`). Call it before a new consumer starts.
    """
    evict_dead_streams(emulator, subscription)
    redeliver_unacked(emulator, subscription)


def evict_dead_streams(emulator: EmulatorForTests, subscription: str) -> None:
    """End every streaming pull of ``subscription``, the dead ones included (emulator defect).

    Each of the emulator's streaming-pull loops ends when it finds its subscription turned into a
    push subscription, so the subscription is pushed to a closed port for a moment and then
    turned back into a pull one. Live consumers' streams end too, so call it while none runs.
    Messages leased to a dead stream stay leased until their ack deadline, as in the real service.
    """
    admin = emulator.subscriber()
    admin.modify_push_config(
        subscription=subscription, push_config=PushConfig(push_endpoint=_EVICTION_ENDPOINT)
    )
    time.sleep(_EVICTION_SECONDS)
    admin.modify_push_config(subscription=subscription, push_config=PushConfig())


def redeliver_unacked(emulator: EmulatorForTests, subscription: str) -> None:
    """Make every message of ``subscription`` not acked yet deliverable now: snapshot, then seek.

    A snapshot holds exactly the unacked messages, and seeking to it drops their leases. This is
    what the real service does for nacked messages at once and for a dead consumer's leases at
    its ack deadline; acked messages stay acked, so a consumer that acked before exporting still
    loses those traces. Call :func:`evict_dead_streams` first, or a dead stream takes them again.
    """
    project = subscription.split("/")[1]
    admin = emulator.subscriber()
    snapshot = admin.create_snapshot(
        name=f"projects/{project}/snapshots/{unique_name('redeliver')}", subscription=subscription
    )
    try:
        admin.seek(request={"subscription": subscription, "snapshot": snapshot.name})
    finally:
        admin.delete_snapshot(snapshot=snapshot.name)


# -- consumer processes ------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def otlp_endpoint(receiver: OtlpReceiver, protocol: str = "grpc") -> str:
    """Return the receiver's ``OTEL_EXPORTER_OTLP_ENDPOINT`` for ``grpc`` or ``http/protobuf``.

    The HTTP exporter appends ``/v1/traces`` to this base itself; an ``http://`` gRPC endpoint
    means an insecure channel.
    """
    if protocol == "grpc":
        return f"http://{receiver.grpc_endpoint}"
    if protocol == "http/protobuf":
        return receiver.http_endpoint.removesuffix("/v1/traces")
    raise ValueError(f"unknown OTLP protocol {protocol!r}: use grpc or http/protobuf")


def consumer_env(  # noqa: PLR0913 - each keyword is one documented consumer setting
    pubsub_host: str,
    receiver: OtlpReceiver,
    mirror: Path,
    *,
    protocol: str = "grpc",
    export_timeout_seconds: float | None = None,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of a consumer process aimed at the emulator and ``receiver``.

    Starts from ``base`` (default: this process's environment) without any ``OTEL_*``,
    ``PROWTRACE_*``, ``PUBSUB_*``, ``GOOGLE_*`` or Cloud Run variable, so the run does not depend
    on the caller's shell. Grace is 0 (every artifact is already written and the emulator's
    publish times are "now"), logs are JSON. ``export_timeout_seconds`` bounds each OTLP export
    (``OTEL_EXPORTER_OTLP_TIMEOUT``), which matters when the receiver refuses. ``extra`` wins.
    """
    inherited = {
        name: value
        for name, value in (os.environ if base is None else base).items()
        if not name.startswith(_DROPPED_PREFIXES) and name not in _DROPPED_NAMES
    }
    env = inherited | {
        "PUBSUB_EMULATOR_HOST": pubsub_host,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint(receiver, protocol),
        "PROWTRACE_ARTIFACTS": str(mirror),
        "PROWTRACE_GRACE_SECONDS": "0",
        "PROWTRACE_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    if export_timeout_seconds is not None:
        env["OTEL_EXPORTER_OTLP_TIMEOUT"] = f"{export_timeout_seconds:g}"
    return env | dict(extra or {})


class ConsumerFailed(AssertionError):
    """A consumer process did not do what the test needed; the message carries its log."""


@dataclass(frozen=True)
class Exit:
    """How a consumer process ended."""

    returncode: int
    seconds: float
    """From the signal to the process's exit."""
    killed: bool = False
    """True if it outlived its time and had to be killed."""


class ConsumerProcess(LocalService):
    """One ``prowtrace`` command (``pull``, ``serve``, ...) run as ``python -m processor``.

    Standard output and error go to ``log_path``. Use it as a context manager, or ``start()``
    and ``stop()``; ``stop()`` is idempotent and never raises, so it is safe in cleanup code.
    """

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str], log_path: Path, *, name: str = ""
    ) -> None:
        """Prepare ``prowtrace ARGS`` with exactly ``env`` as its environment."""
        self.args = tuple(args)
        self.env = dict(env)
        self.log_path = log_path
        self.name = name or log_path.stem
        self._process: subprocess.Popen[bytes] | None = None
        self._exit: Exit | None = None

    def start(self) -> Self:
        """Start the process (it is not ready yet: see ``wait_for_log``)."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "processor", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        """The process ID."""
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        """The exit status, or ``None`` while it runs."""
        return self._started().poll()

    @property
    def exit(self) -> Exit | None:
        """How it ended, once ``terminate``, ``kill`` or ``stop`` ended it."""
        return self._exit

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._process

    def terminate(self, timeout: float = CONSUMER_STOP_SECONDS) -> Exit:
        """Send SIGTERM and wait up to ``timeout`` s; SIGKILL it if it is still running then."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> Exit:
        """Send SIGKILL and reap the process: the abrupt end of a crash or an OOM kill."""
        return self._signal(signal.SIGKILL, CONSUMER_STOP_SECONDS)

    def _signal(self, signum: signal.Signals, timeout: float) -> Exit:
        process = self._started()
        if self._exit is not None:
            return self._exit
        began = time.monotonic()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
        killed = False
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            killed = True
        self._exit = Exit(process.returncode, time.monotonic() - began, killed=killed)
        return self._exit

    def stop(self) -> None:
        """End the process if it runs (SIGTERM, then SIGKILL after the stop budget)."""
        if self._process is not None and self._exit is None:
            self.terminate()

    # Its log

    def log_text(self) -> str:
        """Everything the process wrote so far (standard output and error)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        """Return the JSON log records written so far (library warnings in plain text are skipped).

        A record is read from the start of its line even when text follows it on that line: the
        standard library's log lines can land between a structlog record and its newline.
        """
        records: list[dict[str, Any]] = []
        decoder = json.JSONDecoder()
        for line in self.log_text().splitlines():
            if not line.startswith("{"):
                continue
            with contextlib.suppress(json.JSONDecodeError):
                record, _ = decoder.raw_decode(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def message_records(self) -> list[dict[str, Any]]:
        """Return the log lines that record what became of one message."""
        return [record for record in self.log_records() if record.get("message") == "message"]

    def acked_message_ids(self) -> set[str]:
        """Return the IDs of the messages the process logged as acked (whatever the outcome)."""
        return {
            str(record.get("message_id"))
            for record in self.message_records()
            if str(record.get("action", "")).startswith("ack")
        }

    def outcomes(self) -> Counter[str]:
        """How many messages ended in each outcome, from the log."""
        return Counter(str(record.get("outcome")) for record in self.message_records())

    def describe(self, tail_lines: int = _LOG_TAIL_LINES) -> str:
        """Name, state, outcome counts and the log's last lines: for failure messages."""
        if self._process is None:
            state = "not started"
        elif self._exit is not None:
            state = f"exited {self._exit.returncode} after {self._exit.seconds:.1f} s"
        elif (code := self._process.poll()) is not None:
            state = f"exited {code} on its own"
        else:
            state = "running"
        lines = self.log_text().splitlines()
        shown = "\n    ".join(lines[-tail_lines:])
        return (
            f"--- {self.name} (prowtrace {' '.join(self.args)}): {state}; "
            f"outcomes {dict(self.outcomes())}; log {self.log_path} "
            f"(last {min(len(lines), tail_lines)} of {len(lines)} lines):\n    {shown}"
        )

    def wait_for_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = _READY_TIMEOUT_SECONDS
    ) -> dict[str, Any]:
        """Wait for a JSON log line matching ``predicate`` and return it.

        Raises ``ConsumerFailed`` (with the log) if the process exits or ``timeout`` passes first.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = next((record for record in self.log_records() if predicate(record)), None)
            if found is not None:
                return found
            if self.returncode is not None:
                raise ConsumerFailed(f"{self.name} exited while awaited:\n{self.describe()}")
            if time.monotonic() > deadline:
                raise ConsumerFailed(
                    f"{self.name}: no awaited log line in {timeout} s\n" + (self.describe())
                )
            time.sleep(_POLL_SECONDS)

    def wait_until_healthy(self, url: str, timeout: float = _READY_TIMEOUT_SECONDS) -> None:
        """Poll ``url`` (e.g. ``/healthz``) until it answers 200, or raise ``ConsumerFailed``."""
        deadline = time.monotonic() + timeout
        while True:
            with (
                contextlib.suppress(OSError),  # refused while starting; URLError is an OSError
                urllib.request.urlopen(url, timeout=1) as response,  # noqa: S310 - a local http URL we built
            ):
                if response.status == HTTPStatus.OK:
                    return
            if self.returncode is not None:
                raise ConsumerFailed(f"{self.name} exited before serving:\n{self.describe()}")
            if time.monotonic() > deadline:
                raise ConsumerFailed(
                    f"{self.name}: {url} not healthy in {timeout} s\n" + (self.describe())
                )
            time.sleep(_POLL_SECONDS)


class ConsumerSet:
    """The consumer processes of one run: started here, all stopped when the block ends.

    On leaving the ``with`` block every process still running gets SIGTERM (SIGKILL after the
    stop budget); if the block raised, every process's description and log tail is printed, so
    pytest shows them with the failure.
    """

    def __init__(self, log_dir: Path) -> None:
        """Write each process's log to ``log_dir/NAME.log``."""
        self.log_dir = log_dir
        self.processes: list[ConsumerProcess] = []

    def start(self, args: Sequence[str], env: Mapping[str, str], name: str) -> ConsumerProcess:
        """Start ``prowtrace ARGS`` named ``name`` (its log is ``NAME.log``; names are unique)."""
        if any(process.name == name for process in self.processes):
            raise ValueError(f"a consumer named {name!r} already ran in this set")
        process = ConsumerProcess(args, env, self.log_dir / f"{name}.log", name=name)
        self.processes.append(process)
        return process.start()

    def start_pull(
        self, subscription: str, env: Mapping[str, str], name: str = "pull"
    ) -> ConsumerProcess:
        """Start ``prowtrace pull --subscription SUBSCRIPTION``; return once it is subscribed."""
        process = self.start(["pull", "--subscription", subscription], env, name)
        process.wait_for_log(lambda record: record.get("message") == "pull_started")
        return process

    def start_serve(
        self, env: Mapping[str, str], port: int | None = None, name: str = "serve"
    ) -> tuple[ConsumerProcess, str]:
        """Start ``prowtrace serve`` on 127.0.0.1; return it and its base URL once healthy."""
        port = port or free_port()
        process = self.start(["serve", "--host", "127.0.0.1", "--port", str(port)], env, name)
        base_url = f"http://127.0.0.1:{port}"
        process.wait_until_healthy(f"{base_url}/healthz")
        return process, base_url

    def running(self) -> list[ConsumerProcess]:
        """Return the processes that have not exited."""
        return [process for process in self.processes if process.returncode is None]

    def message_records(self) -> list[dict[str, Any]]:
        """Every process's per-message log lines."""
        return [record for process in self.processes for record in process.message_records()]

    def acked_message_ids(self) -> set[str]:
        """Return the IDs of the messages any process logged as acked."""
        return {
            message_id for process in self.processes for message_id in process.acked_message_ids()
        }

    def describe(self) -> str:
        """Every process's description and log tail."""
        return "\n".join(process.describe() for process in self.processes)

    def stop_all(self) -> None:
        """Stop every process still running."""
        for process in self.processes:
            process.stop()

    def __enter__(self) -> Self:
        """Nothing to start: processes are started one by one."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop every process; on failure, print their logs."""
        self.stop_all()
        if exc is not None:
            print(self.describe())  # noqa: T201 - pytest shows captured output with the failure


# -- waiting for the oracle ---------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; raise ``TimeoutError`` saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(_POLL_SECONDS)


def received_keys(receiver: OtlpReceiver) -> set[SpanKey]:
    """Return the ``(trace_id, span_id)`` of every span received so far."""
    return {span.key for span in receiver.spans()}


def wait_for_traces(
    receiver: OtlpReceiver,
    expected: Mapping[SpanKey, DecodedSpan],
    *,
    timeout: float,
    consumers: ConsumerSet | Iterable[ConsumerProcess] = (),
    complete: bool = True,
) -> None:
    """Wait until every expected span arrived, then assert the received set is exactly it.

    Exactly: nothing missing, nothing extra, no span ID with two contents, no orphan.
    ``complete=False`` checks only that the expected spans arrived unchanged, for the first part
    of a stream (others may have arrived too, and traces may still lack their root). Fails
    early if a watched consumer exits. The ``AssertionError`` lists the differences, the
    receiver's counters and each consumer's log tail.
    """
    processes = list(consumers.processes if isinstance(consumers, ConsumerSet) else consumers)
    watched = [process for process in processes if process.returncode is None]
    wanted = set(expected)
    deadline = time.monotonic() + timeout
    failure = ""
    while not failure:
        if receiver.wait_for(lambda r: wanted <= received_keys(r), timeout=_POLL_SECONDS * 2):
            break
        dead = [process.name for process in watched if process.returncode is not None]
        if dead:
            failure = f"consumer(s) {', '.join(dead)} exited before every trace was complete"
        elif time.monotonic() > deadline:
            failure = f"not every expected span arrived within {timeout} s"
    try:
        received = receiver.unique_spans()
    except SpanConflict as conflict:
        problems = [str(conflict)]
    else:
        if not complete:
            received = {key: span for key, span in received.items() if key in wanted}
        problems = [] if received == expected else trace_problems(received, expected)
    if failure or problems:
        raise AssertionError(
            f"{failure or 'the received spans are not exactly the expected set'}\n"
            f"receiver: {len(receiver.spans())} spans in {receiver.export_requests} exports "
            f"({receiver.refused_requests} refused); expected {len(expected)} spans\n  "
            + "\n  ".join(problems)
            + "\n"
            + "\n".join(process.describe() for process in processes)
        )


@contextlib.contextmanager
def refusing(receiver: OtlpReceiver) -> Iterator[None]:
    """Refuse every export (UNAVAILABLE / HTTP 503) inside the block; accept again after it."""
    receiver.refuse()
    try:
        yield
    finally:
        receiver.accept()


__all__ = [
    "CONSUMER_STOP_SECONDS",
    "ConsumerFailed",
    "ConsumerProcess",
    "ConsumerSet",
    "E2eCorpus",
    "Exit",
    "Route",
    "consumer_env",
    "count_unacked",
    "create_route",
    "evict_dead_streams",
    "free_port",
    "otlp_endpoint",
    "prepare_corpus",
    "publish_messages",
    "publish_payloads",
    "publish_time_dependent_spans",
    "received_keys",
    "redeliver_after_stop",
    "redeliver_unacked",
    "refusing",
    "unique_name",
    "wait_for_traces",
    "wait_until",
]
