"""Google's real Pub/Sub emulator, started and stopped, with clients aimed at it.

``PubSubEmulator`` starts the emulator's launcher (from the Debian package
``google-cloud-cli-pubsub-emulator``) on a free port of 127.0.0.1, in its own process group, and
kills that whole group on ``stop()``, so no java process outlives it::

    with PubSubEmulator() as emulator:
        topic = emulator.create_topic("proj", "crier")
        sub = emulator.create_subscription("proj", "crier-sub", topic)
        emulator.publish(topic, b"{}")

Clients are built explicitly on an insecure channel to the emulator; the process environment is
never touched (``environ()`` gives the variables for a child process instead).

The test suite's ``support.pubsub_admin.EmulatorForTests`` adds dead-letter, push and
retry subscriptions and unary pull/ack/nack, and lists the emulator's quirks.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Self

import grpc
from google.cloud.pubsub_v1 import (  # untyped: see pyproject mypy overrides
    SubscriberClient as StreamingSubscriberClient,
)
from google.pubsub_v1 import PublisherClient, PubsubMessage, SubscriberClient, Subscription
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from processor.local_service import LocalService

DEBIAN_PACKAGE = "google-cloud-cli-pubsub-emulator"
LAUNCHER_IN_SDK = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
DEFAULT_SDK_ROOT = Path("/usr/lib/google-cloud-sdk")
LAUNCHER_NAME = "cloud-pubsub-emulator"
READY_LINE = "Server started"
BIND_FAILURE = "Address already in use"
_STOP_TIMEOUT_SECONDS = 5.0
_GCLOUD_INFO_TIMEOUT_SECONDS = 10.0
# A port picked free can be taken before java binds it; a new one is tried this many times.
_START_ATTEMPTS = 3


class EmulatorNotFound(RuntimeError):
    """The Pub/Sub emulator's launcher is not installed where we looked."""


class EmulatorFailed(RuntimeError):
    """The emulator exited or did not report ready in time; the message carries its output."""


def launcher_candidates(
    environ: Mapping[str, str], sdk_root_from_gcloud: Path | None
) -> list[Path]:
    """List, in search order, where the emulator's launcher may be (no file-system access)."""
    roots: list[Path] = []
    if environ.get("CLOUDSDK_ROOT"):
        roots.append(Path(environ["CLOUDSDK_ROOT"]))
    roots.append(DEFAULT_SDK_ROOT)
    if sdk_root_from_gcloud is not None:
        roots.append(sdk_root_from_gcloud)
    unique_roots = list(dict.fromkeys(roots))
    return [root / LAUNCHER_IN_SDK for root in unique_roots]


def _sdk_root_from_gcloud() -> Path | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=_GCLOUD_INFO_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    root = result.stdout.strip()
    return Path(root) if result.returncode == 0 and root else None


def find_launcher(launcher: Path | None = None) -> Path:
    """Return the emulator's launcher: ``launcher`` if given, else the first one installed.

    Looks under ``$CLOUDSDK_ROOT``, /usr/lib/google-cloud-sdk, the root ``gcloud info`` reports
    (asked only if the first two miss) and then ``cloud-pubsub-emulator`` on ``PATH``. Raises
    ``EmulatorNotFound`` naming every place it looked and the Debian package that provides it.
    """
    if launcher is not None:
        if _is_executable(launcher):
            return launcher
        raise _not_found([str(launcher)])
    candidates = launcher_candidates(os.environ, None)
    found = _first_executable(candidates)
    if found is None:  # asking gcloud takes about a second, so only when the usual places miss
        candidates = launcher_candidates(os.environ, _sdk_root_from_gcloud())
        found = _first_executable(candidates)
    if found is None and (on_path := shutil.which(LAUNCHER_NAME)) is not None:
        found = Path(on_path)
    if found is None:
        raise _not_found([*map(str, candidates), f"{LAUNCHER_NAME} on PATH"])
    return found


def _not_found(looked: Sequence[str]) -> EmulatorNotFound:
    return EmulatorNotFound(
        f"Google's Pub/Sub emulator is not installed: looked for its launcher at "
        f"{', '.join(looked)}. It comes from the Debian package {DEBIAN_PACKAGE} (from Google's "
        f"Cloud SDK apt repository); the emulator tests cannot run without it."
    )


def _first_executable(paths: Iterable[Path]) -> Path | None:
    return next((path for path in paths if _is_executable(path)), None)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PubSubEmulator(LocalService):
    """Google's Pub/Sub emulator on 127.0.0.1, started fresh on a free port.

    Use it as a context manager, or ``start()`` / ``stop()``. The launcher execs java in its own
    process group; ``stop()`` kills the group (SIGTERM, then SIGKILL) and closes every client this
    object built, and an ``atexit`` hook stops it if the caller never did.
    """

    def __init__(
        self,
        launcher: Path | None = None,
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        """Prepare an emulator.

        ``launcher`` overrides the search ``find_launcher`` does; ``port`` fixes the port (by
        default a free one is picked, and another tried if it is taken before java binds it).
        """
        self._launcher = launcher
        self._fixed_port = port
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._output: list[str] = []
        self._port = 0
        self._channels: list[grpc.Channel] = []
        self._admin_publisher: PublisherClient | None = None
        self._admin_subscriber: SubscriberClient | None = None

    # Lifecycle

    def start(self) -> Self:
        """Start the emulator and wait for it to report ready.

        Raises ``EmulatorNotFound`` if the launcher is missing and ``EmulatorFailed`` if it exits
        or is not ready within ``startup_timeout`` seconds.
        """
        if self._process is not None:
            raise RuntimeError("the emulator is already started")
        launcher = find_launcher(self._launcher)
        attempts = 1 if self._fixed_port is not None else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(launcher, self._fixed_port or _free_port())
            except EmulatorFailed as error:
                if BIND_FAILURE not in str(error) or attempt == attempts:
                    raise
            else:
                break
        return self

    def _start_once(self, launcher: Path, port: int) -> None:
        self._port = port
        self._output = []
        ready = threading.Event()
        bind_failed = threading.Event()
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
            [str(launcher), "--host=127.0.0.1", f"--port={self._port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, killed whole on stop()
        )
        atexit.register(self.stop)
        self._reader = threading.Thread(
            target=self._read_output,
            args=(self._process.stdout, ready, bind_failed),
            name="pubsub-emulator-output",
            daemon=True,
        )
        self._reader.start()
        deadline = time.monotonic() + self._startup_timeout
        while not ready.wait(0.05):
            # After a failed bind java's main thread dies but netty's threads keep it alive.
            if bind_failed.is_set():
                reason = f"could not bind port {port}"
            elif self._process.poll() is not None:
                reason = f"exited with status {self._process.returncode}"
            elif time.monotonic() > deadline:
                reason = f"did not log {READY_LINE!r} within {self._startup_timeout} s"
            else:
                continue
            self.stop()
            raise EmulatorFailed(
                f"the Pub/Sub emulator ({launcher}) {reason}; its output:\n{self.output()}"
            )

    def _read_output(
        self, stream: Iterable[str] | None, ready: threading.Event, bind_failed: threading.Event
    ) -> None:
        # Drains the pipe for the emulator's whole life: a full pipe would block java.
        if stream is None:
            return
        for line in stream:
            self._output.append(line)
            if READY_LINE in line:
                ready.set()
            elif BIND_FAILURE in line:
                bind_failed.set()

    def stop(self) -> None:
        """Close the clients built here and kill the emulator's process group. Idempotent."""
        for channel in self._channels:
            channel.close()
        self._channels = []
        self._admin_publisher = None
        self._admin_subscriber = None
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop)
            _kill_group(process)
        # java held the pipe's only write end: now dead, the reader sees EOF and ends.
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join(_STOP_TIMEOUT_SECONDS)
        if process is not None and process.stdout is not None:
            process.stdout.close()

    # Where it is

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the value ``PUBSUB_EMULATOR_HOST`` takes."""
        if self._process is None:
            raise RuntimeError("the emulator is not started")
        return f"127.0.0.1:{self._port}"

    @property
    def pid(self) -> int:
        """The java process's ID (the launcher execs java); also its process group's ID."""
        if self._process is None:
            raise RuntimeError("the emulator is not started")
        return self._process.pid

    def environ(self) -> dict[str, str]:
        """Return the environment variables that point a child process's clients here."""
        return {"PUBSUB_EMULATOR_HOST": self.host}

    def output(self) -> str:
        """Return what the emulator has printed so far (stdout and stderr)."""
        return "".join(self._output)

    # Clients

    def publisher(self) -> PublisherClient:
        """Build a publisher client on an insecure channel here; ``stop()`` closes it."""
        return PublisherClient(transport=PublisherGrpcTransport(channel=self._channel()))

    def subscriber(self) -> SubscriberClient:
        """Build a (GAPIC) subscriber client on an insecure channel here; ``stop()`` closes it.

        It has the unary calls (``pull``, ``acknowledge``, ``create_subscription``...). For
        streaming pull (``subscribe()``) use ``streaming_subscriber()``.
        """
        return SubscriberClient(transport=SubscriberGrpcTransport(channel=self._channel()))

    def streaming_subscriber(self) -> StreamingSubscriberClient:
        """Build google.cloud.pubsub_v1's ``SubscriberClient`` (with ``subscribe()``) aimed here.

        That wrapper ships no type information, so mypy sees ``Any``; ``stop()`` closes it.
        """
        return StreamingSubscriberClient(transport=SubscriberGrpcTransport(channel=self._channel()))

    def _channel(self) -> grpc.Channel:
        channel = grpc.insecure_channel(self.host)
        self._channels.append(channel)
        return channel

    def _publisher(self) -> PublisherClient:
        if self._admin_publisher is None:
            self._admin_publisher = self.publisher()
        return self._admin_publisher

    def _subscriber(self) -> SubscriberClient:
        if self._admin_subscriber is None:
            self._admin_subscriber = self.subscriber()
        return self._admin_subscriber

    # Administration

    def create_topic(self, project: str, name: str) -> str:
        """Create ``projects/{project}/topics/{name}`` and return that path (name: 3+ chars)."""
        return self._publisher().create_topic(name=f"projects/{project}/topics/{name}").name

    def create_subscription(
        self, project: str, name: str, topic_path: str, *, ack_deadline_seconds: int = 10
    ) -> str:
        """Create ``projects/{project}/subscriptions/{name}`` on ``topic_path``; return its path."""
        return self._create_subscription(
            Subscription(
                name=f"projects/{project}/subscriptions/{name}",
                topic=topic_path,
                ack_deadline_seconds=ack_deadline_seconds,
            )
        )

    def _create_subscription(self, subscription: Subscription) -> str:
        return self._subscriber().create_subscription(request=subscription).name

    def publish(
        self, topic_path: str, data: bytes, attributes: Mapping[str, str] | None = None
    ) -> str:
        """Publish one message and return its message ID."""
        message = PubsubMessage(data=data, attributes=dict(attributes or {}))
        response = self._publisher().publish(topic=topic_path, messages=[message])
        return response.message_ids[0]


def _kill_group(process: subprocess.Popen[str]) -> None:
    # The group ID is the launcher's PID (start_new_session); the launcher exec'd java into it.
    for sig, wait_seconds in ((signal.SIGTERM, _STOP_TIMEOUT_SECONDS), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait_seconds)
        except subprocess.TimeoutExpired:
            continue
        return


__all__ = [
    "DEBIAN_PACKAGE",
    "EmulatorFailed",
    "EmulatorNotFound",
    "PubSubEmulator",
    "find_launcher",
    "launcher_candidates",
]
