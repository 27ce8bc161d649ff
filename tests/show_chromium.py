"""Debian's headless Chromium driven over the Chrome DevTools Protocol, for the HTML view's tests.

No browser download and no driver: the system ``chromium`` binary is started with a private
profile and ``--remote-debugging-port=0``; the chosen port is read from the profile's
``DevToolsActivePort`` file and the page target is driven over its WebSocket. Everything the
page does is recorded: console calls, uncaught exceptions, log entries, and every network request.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

INSTALL_HINT = "apt-get update && apt-get install -y chromium"
_STARTUP_SECONDS = 30.0
_CALL_SECONDS = 15.0

# Flags that keep Chromium from reaching anything but the page it is given.
_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--metrics-recording-only",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)


class ChromiumMissing(RuntimeError):
    """The ``chromium`` binary is not installed."""


@dataclass
class PageRecord:
    """What a page did while it loaded."""

    console: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Return console errors/warnings, uncaught exceptions and error log entries."""
        found = [
            f"console.{call['type']}: {_console_text(call)}"
            for call in self.console
            if call["type"] in {"error", "warning", "assert"}
        ]
        found += [
            f"uncaught: {detail.get('exception', {}).get('description') or detail.get('text')}"
            for detail in self.exceptions
        ]
        found += [
            f"log {entry['level']}: {entry.get('text')} ({entry.get('url', '')})"
            for entry in self.log_entries
            if entry["level"] in {"error", "warning"}
        ]
        return found


def _console_text(call: dict[str, Any]) -> str:
    return " ".join(str(arg.get("value", arg.get("description", ""))) for arg in call["args"])


class Page:
    """One browser tab, driven over CDP."""

    def __init__(self, socket: ClientConnection) -> None:
        """Drive the tab behind ``socket``."""
        self._socket = socket
        self._next_id = 0
        self.record = PageRecord()
        self._events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:  # noqa: ANN401 - CDP params are JSON
        """Send one CDP command and return its result, recording events that arrive meanwhile."""
        self._next_id += 1
        call_id = self._next_id
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + _CALL_SECONDS
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._note(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        """Wait for an event (recording everything else that arrives)."""
        for seen in self._events:
            if seen.get("method") == event:
                self._events.remove(seen)
                return seen
        deadline = time.monotonic() + _CALL_SECONDS
        while True:
            message = self._receive(deadline, event)
            self._note(message)
            if message.get("method") == event:
                self._events.remove(message)
                return message

    def evaluate(self, expression: str) -> Any:  # noqa: ANN401 - whatever the script returns
        """Evaluate JavaScript in the page and return its JSON value."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, url: str) -> PageRecord:
        """Navigate to ``url``, wait for its load event and a settled frame, return the record."""
        self.record = PageRecord()
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        # Two animation frames: scripts that ran on load have had their effect painted.
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return self.record

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the whole page (for looking at it during development)."""
        import base64  # noqa: PLC0415 - only this development aid needs it

        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        try:
            text = self._socket.recv(timeout=max(deadline - time.monotonic(), 0.01))
        except TimeoutError as error:
            raise TimeoutError(f"chromium sent no {waiting_for} in {_CALL_SECONDS}s") from error
        message: dict[str, Any] = json.loads(text)
        return message

    def _note(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            self.record.console.append(params)
        elif method == "Runtime.exceptionThrown":
            self.record.exceptions.append(params["exceptionDetails"])
        elif method == "Log.entryAdded":
            self.record.log_entries.append(params["entry"])
        elif method == "Network.requestWillBeSent":
            self.record.requests.append(params["request"]["url"])
        if method is not None:
            self._events.append(message)


@contextlib.contextmanager
def chromium_page() -> Iterator[Page]:
    """Start a private headless Chromium and yield its blank tab; stop it and its children after."""
    binary = shutil.which("chromium")
    if binary is None:
        raise ChromiumMissing(f"Debian's chromium is not installed: run `{INSTALL_HINT}`")
    with tempfile.TemporaryDirectory(prefix="prowtrace-chromium-") as profile:
        log_path = Path(profile) / "chromium.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed flags and a binary from PATH
                [binary, *_FLAGS, f"--user-data-dir={profile}/data", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its own process group, so all its helpers stop with it
            )
            try:
                port = _devtools_port(Path(profile) / "data", process, log_path)
                with connect(_page_socket_url(port), proxy=None, max_size=None) as socket:
                    yield Page(socket)
            finally:
                _stop(process)


def _devtools_port(data_dir: Path, process: subprocess.Popen[bytes], log_path: Path) -> int:
    port_file = data_dir / "DevToolsActivePort"
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")
            raise RuntimeError(f"chromium exited with {process.returncode}:\n{log}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(port_file.read_text().splitlines()[0])
        time.sleep(0.05)
    raise RuntimeError(f"chromium did not open its DevTools port in {_STARTUP_SECONDS}s")


def _page_socket_url(port: int) -> str:
    # A direct opener: proxy settings from the environment must not apply to loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
            targets = json.load(response)
        pages = [target for target in targets if target.get("type") == "page"]
        if pages:
            url: str = pages[0]["webSocketDebuggerUrl"]
            return url
        time.sleep(0.05)
    raise RuntimeError("chromium has no page target")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium's own process group (the browser and the helpers it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # Helpers may outlive the browser by a moment: end what is left of the group and wait
    # until it is gone, so no test leaves a process behind.
    deadline = time.monotonic() + 10
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)  # raises ProcessLookupError once the group is empty
            time.sleep(0.02)
