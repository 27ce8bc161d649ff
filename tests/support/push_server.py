"""Run the push endpoint on a background event loop, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Self

from processor.config import PushSettings
from processor.core.message import Delivery
from processor.local_service import LocalService
from processor.pipeline import Result
from processor.transports.oidc import OidcVerifier
from processor.transports.push import PushEndpoint, create_app, serve


class PushServerThread(LocalService):
    """``prowtrace serve``'s application on 127.0.0.1, a free port, in a daemon thread."""

    def __init__(
        self,
        handle: Callable[[Delivery], Result],
        settings: PushSettings | None = None,
        *,
        verifier: OidcVerifier | None = None,
        hold_for: timedelta = timedelta(0),
        recheck: Callable[[Delivery, Result], Result] | None = None,
    ) -> None:
        """Serve ``handle`` with ``settings`` (host and port are forced to loopback and free).

        ``hold_for`` is the grace period within which a message with a late file is held, and
        ``recheck`` what runs it again (see :class:`PushEndpoint`).
        """
        self.settings = replace(settings or PushSettings(auth="off"), host="127.0.0.1", port=0)
        self.endpoint = PushEndpoint(
            handle, self.settings, verifier=verifier, hold_for=hold_for, recheck=recheck
        )
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="push-server", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start serving; return once the port is bound."""
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"push server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        """Drain and stop the server, then join its thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def started(port: int) -> None:
                self.port = port
                self._ready.set()

            await serve(
                create_app(self.endpoint, self.settings), self.settings, self._stop, started=started
            )

        try:
            asyncio.run(main())
        except BaseException as error:  # noqa: BLE001 - reported to start()'s caller
            self._error = error
            self._ready.set()
