"""``prowtrace serve``: the Pub/Sub push endpoint for Cloud Run.

A 2xx answer acks the message; anything else nacks it and the subscription's retry policy
applies. Every request is checked in this order, and refused before any processing:

1. draining after SIGTERM                          → 503 (Pub/Sub retries elsewhere)
2. compressed (``Content-Encoding``), or not ``application/json`` → 415
3. declared body larger than the limit             → 413
4. OIDC token (when enabled): missing or invalid   → 401; email not allowed → 403;
   Google's keys unreachable                       → 503
5. body not received within the read timeout       → 408 (slow-loris style clients)

Before any of that, :class:`ConnectionGuard` caps open connections (503 and close past the cap)
and closes a connection that sits outside a request (half-sent headers, idle keep-alive) for
``header_timeout`` seconds.
6. not a Pub/Sub push envelope                     → 400

Then the pipeline runs on a thread pool (it blocks on storage reads and exports; concurrent
requests meet in the group-commit exporter) and the outcome maps to the answer: ack → 204,
retryable → 503, poison with a dead-letter policy → 422 (nack, so Pub/Sub dead-letters it),
poison without one → 204 after an ERROR log (see :mod:`processor.transports.disposition`). A
pipeline that raises is poison too (FAILED), never a 500 that Pub/Sub would retry forever.

A message whose only problem is a late file (``Result.late``) is held: the request stays open,
costing no thread and no CPU while it sleeps, and the pipeline runs again on the pull worker's
schedule (:func:`processor.transports.holding.next_recheck`) until the file is there, the grace
period after the publish time ends, or ``hold_seconds`` pass (then 503: Pub/Sub's backoff takes
over). Why hold rather than nack: a nack is redelivered after the retry policy's minimum backoff
(Terraform: 10 s, doubling), so a file 3 s late costs ~10 s and one 30 s late ~70 s, against about
a second when held (docs/PERFORMANCE.md, "Freshness"); what holding costs is a Cloud Run
concurrency slot per held request, so at most ``max_held`` are held and further ones are nacked.
Draining wakes held requests at once and they answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import structlog
from aiohttp import web

from processor.config import PushSettings
from processor.core.message import Delivery
from processor.core.redact import strip_secrets
from processor.pipeline import Outcome, Result
from processor.transports.envelope import InvalidEnvelope, delivery_from_push
from processor.transports.holding import next_recheck
from processor.transports.oidc import (
    OidcVerifier,
    Rejection,
    Unauthenticated,
    VerifierUnavailable,
)
from processor.transports.settle import decide, drain, process

log = structlog.get_logger("prowtrace.push")

STATUS_ACK = 204
STATUS_RETRY = 503
STATUS_POISON = 422


class _Refused(Exception):
    """A request turned away before processing, with the status that says why."""

    def __init__(self, status: int, reason: str, logged: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.logged = logged or reason
        """What the log says: may be more detailed than the answer's ``reason``."""


class PushEndpoint:
    """The request handlers, their shared state, and the thread pool the pipeline runs on."""

    def __init__(  # noqa: PLR0913 - each keyword is one thing the endpoint is wired to
        self,
        handle: Callable[[Delivery], Result],
        settings: PushSettings,
        *,
        verifier: OidcVerifier | None,
        project: str = "",
        abort_exports: Callable[[], None] | None = None,
        hold_for: timedelta = timedelta(0),
        recheck: Callable[[Delivery, Result], Result] | None = None,
    ) -> None:
        """Serve ``handle``; ``verifier`` ``None`` means authentication is off.

        ``hold_for`` (the pipeline's grace period) bounds how long after its publish time a
        message with a late file may be held (also bounded by ``settings.hold_seconds``);
        ``recheck`` (the pipeline's) runs a held message again cheaply, else ``handle`` does.

        ``abort_exports`` (e.g. the exporter's ``shutdown``) is called while draining if requests
        are still in flight when only ``settle.ABORT_RESERVE_SECONDS`` of the budget remain: an
        exporter retrying a down backend would otherwise hold them past Cloud Run's SIGKILL.
        """
        self._handle = handle
        self._abort_exports = abort_exports
        self._settings = settings
        self._verifier = verifier
        self._project = project
        self._pool = ThreadPoolExecutor(
            max_workers=settings.handler_threads, thread_name_prefix="prowtrace-push"
        )
        self._hold_for = hold_for
        self._recheck = recheck
        self.draining = False
        self.in_flight = 0
        self.held = 0
        self.rechecks = 0
        self._stop_holding = asyncio.Event()
        self._idle = threading.Event()  # the drain waits on it in a thread (settle.drain)
        self._idle.set()

    async def push(self, request: web.Request) -> web.Response:
        """Take one push envelope; the status code is the ack (2xx) or the nack."""
        try:
            self._admit(request)
            await self._authenticate(request)
            delivery = await self._read_envelope(request)
        except _Refused as refused:
            log.warning("push_refused", status=refused.status, reason=refused.logged)
            return web.Response(status=refused.status, text=refused.reason)
        self.in_flight += 1
        self._idle.clear()
        try:
            result = await self._run(delivery)
            if result.late:
                result = await self._hold(delivery, result)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        disposition = decide(result, delivery, project=self._project, log=log)
        if disposition.ack:
            return web.Response(status=STATUS_ACK)
        status = STATUS_RETRY if result.outcome is Outcome.RETRY else STATUS_POISON
        return web.Response(status=status, text=result.reason)

    async def _run(self, delivery: Delivery, late: Result | None = None) -> Result:
        """Run the pipeline (a re-check when ``late``) on the pool; a crash is poison."""
        run = self._handle
        recheck = self._recheck
        if late is not None and recheck is not None:
            run = lambda again: recheck(again, late)  # noqa: E731 - the same shape as handle
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: process(run, delivery, log=log))

    async def _hold(self, delivery: Delivery, result: Result) -> Result:
        """Re-run a message with a late file until it is not late or the hold must end."""
        if self.held >= self._settings.max_held:
            return result
        started = time.monotonic()
        until = min(
            delivery.publish_time + self._hold_for,
            datetime.now(UTC) + timedelta(seconds=self._settings.hold_seconds),
        )
        self.held += 1
        try:
            wait: float | None = None
            while result.late:
                left = (until - datetime.now(UTC)).total_seconds()
                if left <= 0 or self._stop_holding.is_set():
                    break
                wait = min(next_recheck(wait, time.monotonic() - started), left)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_holding.wait(), wait)
                if self._stop_holding.is_set():
                    break
                self.rechecks += 1
                result = await self._run(delivery, result)
        finally:
            self.held -= 1
        return result

    def _admit(self, request: web.Request) -> None:
        if self.draining:
            raise _Refused(STATUS_RETRY, "shutting down; Pub/Sub will redeliver")
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in {"", "identity"}:
            # Pub/Sub sends the envelope as a plain JSON body (cloud.google.com/pubsub/docs/push):
            # refusing here, before aiohttp would inflate it, keeps zip bombs off the CPU.
            raise _Refused(415, "compressed bodies are refused: Pub/Sub never compresses pushes")
        if request.content_type != "application/json":
            raise _Refused(415, f"expected application/json, got {request.content_type}")
        length = request.content_length
        if length is not None and length > self._settings.max_body_bytes:
            raise _Refused(413, f"body of {length} bytes exceeds {self._settings.max_body_bytes}")

    async def _authenticate(self, request: web.Request) -> None:
        if self._verifier is None:
            return
        header = request.headers.get("Authorization")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._verifier.verify, header)
        except Unauthenticated as error:
            status = 403 if error.reason is Rejection.EMAIL_NOT_ALLOWED else 401
            # The answer names the reason alone: the details can quote the header. The log has
            # them, scrubbed, for the operator; a token reaches neither.
            logged = f"{error.reason}: {strip_secrets(str(error))}"
            raise _Refused(status, str(error.reason), logged) from None
        except VerifierUnavailable as error:
            raise _Refused(STATUS_RETRY, f"cannot verify tokens now: {error}") from None

    async def _read_envelope(self, request: web.Request) -> Delivery:
        limit = self._settings.max_body_bytes
        try:
            body = await asyncio.wait_for(request.read(), self._settings.body_timeout)
        except TimeoutError:
            timeout = self._settings.body_timeout
            raise _Refused(408, f"body not received within {timeout:g} s") from None
        except web.HTTPRequestEntityTooLarge:
            raise _Refused(413, f"body exceeds {limit} bytes") from None
        try:
            return delivery_from_push(body)
        except InvalidEnvelope as error:
            raise _Refused(400, str(error)) from None

    async def healthz(self, _request: web.Request) -> web.Response:
        """Liveness: the process answers."""
        return web.Response(text="ok")

    async def readyz(self, _request: web.Request) -> web.Response:
        """Readiness: not draining."""
        if self.draining:
            return web.Response(status=503, text="draining")
        return web.Response(text="ready")

    async def drain(self) -> None:
        """Refuse new messages and wait (bounded) for in-flight ones to finish.

        In-flight requests may finish normally until only ``settle.ABORT_RESERVE_SECONDS`` of
        the budget remain; then the exports they wait on are aborted, so they answer 503 (nack).
        The wait runs on a thread of its own: the event loop keeps answering meanwhile.
        """
        self.draining = True
        self._stop_holding.set()
        log.info("serve_draining", in_flight=self.in_flight, held=self.held)
        await asyncio.to_thread(
            drain,
            self._idle.wait,
            self._settings.shutdown_timeout,
            self._abort_exports,
            in_flight=lambda: self.in_flight,
            log=log,
            event="serve_drain",
        )

    async def close(self, _app: web.Application) -> None:
        """Release the thread pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Refusal(asyncio.Protocol):
    """A connection over the cap: answered 503 and closed before anything is read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_REFUSAL)
        transport.close()


_REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_SWEEP_SECONDS = 1.0
_CONNECTING_SECONDS = 2.0
_REFUSAL_LOG_SECONDS = 10.0
_FD_RESERVE = 64
"""File descriptors kept free of connections (logs, artifact reads, exporter sockets)."""


class ConnectionGuard:
    """Bounds what connections can hold: how many are open, how long one sits outside a request.

    aiohttp has no header read timeout: a client that sends half a request line keeps its
    connection (and a file descriptor) forever, and 1,100 of them exhausted the process's
    descriptors, after which asyncio's accept loop logged thousands of errors a second. Here every
    connection outside a request handler for ``idle_timeout`` seconds (half-sent headers, or idle
    keep-alive) is closed, and connections past ``limit`` get a 503 and are closed at once.
    """

    def __init__(self, limit: int, idle_timeout: float) -> None:
        """Allow ``limit`` connections (kept below the descriptor limit), idle ``idle_timeout``."""
        soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft_limit != resource.RLIM_INFINITY:
            limit = min(limit, max(1, soft_limit - _FD_RESERVE))
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.refused = 0
        self.closed_idle = 0
        self._busy: dict[object, int] = {}  # transport -> requests in progress on it
        self._idle_since: dict[object, float] = {}
        self._logged_refusals = 0
        self._last_refusal_log = 0.0
        self._handed: dict[web.RequestHandler, float] = {}

    def factory(self, server: web.Server) -> Callable[[], asyncio.BaseProtocol]:
        """Return the protocol factory for ``loop.create_server``: ``server``'s, capped."""

        def make() -> asyncio.BaseProtocol:
            # asyncio accepts a burst before any of it is connected, so handlers handed out but
            # not yet connected count too (briefly: connecting takes microseconds).
            now = time.monotonic()
            self._handed = {
                handler: at
                for handler, at in self._handed.items()
                if handler.transport is None and now - at < _CONNECTING_SECONDS
            }
            if len(server.connections) + len(self._handed) >= self.limit:
                self.refused += 1
                if now - self._last_refusal_log >= _REFUSAL_LOG_SECONDS:  # one line, not a flood
                    log.warning(
                        "push_connections_refused",
                        limit=self.limit,
                        refused_since_last_log=self.refused - self._logged_refusals,
                    )
                    self._last_refusal_log, self._logged_refusals = now, self.refused
                return _Refusal()
            handler = server()
            self._handed[handler] = now
            return handler

        return make

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Mark the request's connection busy while its handler runs."""
        transport = request.transport
        self._busy[transport] = self._busy.get(transport, 0) + 1
        try:
            return await handler(request)
        finally:
            remaining = self._busy.pop(transport, 1) - 1
            if remaining:
                self._busy[transport] = remaining
            self._idle_since[transport] = time.monotonic()

    async def sweep(self, server: web.Server) -> None:
        """Every second, close connections that sat outside a request for ``idle_timeout``."""
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = time.monotonic()
            open_transports = set()
            for connection in server.connections:
                transport = connection.transport
                if transport is None:
                    continue
                open_transports.add(transport)
                if transport in self._busy:
                    continue
                since = self._idle_since.setdefault(transport, now)
                if now - since >= self.idle_timeout:
                    self.closed_idle += 1
                    transport.close()
            for gone in set(self._idle_since) - open_transports:
                del self._idle_since[gone]


ENDPOINT = web.AppKey("endpoint", PushEndpoint)
GUARD = web.AppKey("guard", ConnectionGuard)


def create_app(endpoint: PushEndpoint, settings: PushSettings) -> web.Application:
    """Return the aiohttp application routing to ``endpoint``."""
    guard = ConnectionGuard(settings.max_connections, settings.header_timeout)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[guard.middleware])
    app[ENDPOINT] = endpoint
    app[GUARD] = guard
    app.router.add_post(settings.path, endpoint.push)
    app.router.add_get("/healthz", endpoint.healthz)
    app.router.add_get("/readyz", endpoint.readyz)
    app.on_cleanup.append(endpoint.close)
    return app


async def serve(
    app: web.Application,
    settings: PushSettings,
    stop: asyncio.Event,
    *,
    started: Callable[[int], None] | None = None,
) -> None:
    """Serve ``app`` until ``stop`` is set, then drain in-flight requests and close.

    ``started`` is called with the bound port once listening (useful with port 0).
    """
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    handlers = runner.server
    assert handlers is not None  # noqa: S101 - setup() creates it
    guard = app[GUARD]
    # Our own listener rather than a TCPSite: its protocol factory is where the cap applies.
    listener = await asyncio.get_running_loop().create_server(
        guard.factory(handlers), settings.host, settings.port, backlog=512
    )
    sweeper = asyncio.create_task(guard.sweep(handlers))
    port = listener.sockets[0].getsockname()[1] if listener.sockets else settings.port
    # What startup built (modules, app, exporters) lives as long as the process: moved out of the
    # collector's view, it is not rescanned by every full collection under load (tail latency).
    gc.freeze()
    log.info("serve_started", host=settings.host, port=port, path=settings.path)
    if started is not None:
        started(port)
    await stop.wait()
    await app[ENDPOINT].drain()
    listener.close()
    sweeper.cancel()
    await runner.cleanup()
    log.info("serve_stopped", connections_refused=guard.refused, idle_closed=guard.closed_idle)
