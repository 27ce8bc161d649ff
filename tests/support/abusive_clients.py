"""HTTP clients that misbehave on purpose, and a probe that measures whether a server still answers.

For the push endpoint's abuse tests: :class:`SlowLoris` holds many connections open with half-sent
requests (headers never finished, or a body that never comes); :func:`raw_request` sends exactly
the bytes a test wants (wrong lengths, chunked bodies) and reads the status; :class:`LatencyProbe`
GETs a health URL on a steady beat from its own thread and reports latency percentiles.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Self

from processor.local_service import LocalService

_CONNECT_TIMEOUT_SECONDS = 5.0


def _header_block(headers: Mapping[str, str]) -> bytes:
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers.items())


def status_of(reply: bytes) -> int | None:
    """Return the status code of a raw HTTP response (``None`` if there is none)."""
    line = reply.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None


def raw_request(  # noqa: PLR0913 - each keyword is one part of the request a test bends
    host: str,
    port: int,
    *,
    path: str = "/",
    headers: Mapping[str, str],
    body_parts: Sequence[bytes] = (),
    pause_between_parts: float = 0.0,
    timeout: float = 15.0,
) -> int | None:
    """Send a POST with exactly these headers and body parts; return the answer's status.

    The body parts are sent as given (a test frames chunked encoding itself), ``pause`` seconds
    apart. ``None`` means the server closed the connection without answering.
    """
    request = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + _header_block(headers)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request + b"\r\n")
        for index, part in enumerate(body_parts):
            if index and pause_between_parts:
                time.sleep(pause_between_parts)
            try:
                sock.sendall(part)
            except OSError:  # the server answered early and closed: read what it said
                break
        return status_of(_read_reply(sock))


def _read_reply(sock: socket.socket) -> bytes:
    reply = b""
    with contextlib.suppress(OSError):
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


class SlowLoris(LocalService):
    """Many connections, each holding a half-sent request open until :meth:`close`.

    ``phase="headers"`` stops in the middle of the header block (the server cannot even route the
    request); ``phase="body"`` sends complete headers announcing ``body_bytes`` and then one byte
    of body, so the server must time the body out. ``headers`` are sent in full in the body phase
    (e.g. a valid ``Authorization``), so the request gets as far as reading the body.
    """

    def __init__(  # noqa: PLR0913 - each keyword is one documented way to be slow
        self,
        host: str,
        port: int,
        connections: int,
        *,
        phase: Literal["headers", "body"] = "headers",
        path: str = "/",
        headers: Mapping[str, str] | None = None,
        body_bytes: int = 1000,
    ) -> None:
        """Prepare ``connections`` slow clients against ``host:port``; :meth:`open` connects."""
        self.host = host
        self.port = port
        self.connections = connections
        self.phase = phase
        self.path = path
        self.headers = dict(headers or {})
        self.body_bytes = body_bytes
        self._sockets: list[socket.socket] = []

    def start(self) -> Self:
        """Connect every client and send its partial request."""
        base = {"Content-Type": "application/json"}
        start = f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n".encode()
        if self.phase == "headers":
            partial = start + _header_block(base)  # no blank line: the headers never end
        else:
            announced = base | self.headers | {"Content-Length": str(self.body_bytes)}
            partial = start + _header_block(announced) + b"\r\n{"
        for _ in range(self.connections):
            sock = socket.create_connection((self.host, self.port), _CONNECT_TIMEOUT_SECONDS)
            self._sockets.append(sock)
            sock.sendall(partial)
        return self

    def replies(self, timeout: float = 1.0) -> list[int | None]:
        """Read the status each connection was answered (``None``: none within ``timeout``)."""
        replies: list[int | None] = []
        for sock in self._sockets:
            sock.settimeout(timeout)
            replies.append(status_of(_read_reply(sock)))
        return replies

    def stop(self) -> None:
        """Close every connection."""
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets = []


@dataclass(frozen=True)
class LatencyStats:
    """What a :class:`LatencyProbe` measured."""

    probes: int
    failures: int
    """Probes that did not get a 200 (error, timeout or another status)."""
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class LatencyProbe(LocalService):
    """GETs a URL every ``interval`` seconds on its own thread; ``stop()`` returns the latencies."""

    def __init__(
        self, host: str, port: int, path: str = "/healthz", interval: float = 0.05
    ) -> None:
        """Probe ``http://host:port/path``; each request has a 5 s timeout."""
        self.host = host
        self.port = port
        self.path = path
        self.interval = interval
        self.latencies_ms: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)

    def start(self) -> Self:
        """Start probing."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            ok = False
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
                try:
                    connection.request("GET", self.path)
                    response = connection.getresponse()
                    response.read()
                    ok = response.status == 200
                finally:
                    connection.close()
            elapsed_ms = (time.monotonic() - began) * 1000
            self.latencies_ms.append(elapsed_ms)
            if not ok:
                self.failures += 1
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop probing (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def stats(self) -> LatencyStats:
        """Summarise the probes so far."""
        latencies = list(self.latencies_ms)
        return LatencyStats(
            probes=len(latencies),
            failures=self.failures,
            p50_ms=percentile(latencies, 0.50),
            p99_ms=percentile(latencies, 0.99),
            max_ms=max(latencies, default=0.0),
        )
