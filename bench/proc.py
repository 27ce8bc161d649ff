"""Reading a process's CPU time and memory from /proc (Linux), and starting helper processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    # After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(status_text: str) -> dict[str, int]:
    """Parse VmRSS and VmHWM (peak RSS) in KiB from /proc/PID/status text."""
    values: dict[str, int] = {}
    for line in status_text.splitlines():
        key, sep, rest = line.partition(":")
        if sep and key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0])
    return values


def own_memory_kib() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB."""
    return memory_kib(Path("/proc/self/status").read_text(encoding="ascii"))


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_http_ok(url: str, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until it answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with status {process.returncode} before ready")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=1) as answer,  # noqa: S310 - loopback URL we built
        ):
            if answer.status == 200:  # noqa: PLR2004 - HTTP OK
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM the process (a service drains on it), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def pin_all_threads(pid: int, cpus: frozenset[int]) -> None:
    """Pin every current thread of ``pid`` (threads it starts later inherit the affinity)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError, OSError):
            os.sched_setaffinity(int(task.name), cpus)
