"""Resident memory of another process, from Linux's /proc: now, at its peak, and sampled over time.

``VmHWM`` is the kernel's own high-water mark of the resident set, so the peak is exact even
between samples; the samples show whether memory grows with the work or stays flat.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Self

from processor.local_service import LocalService


def _status_kib(pid: int, field: str) -> int:
    """Return ``field`` (e.g. ``VmRSS``) of /proc/PID/status in KiB; raise if absent."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/status has no {field} line")


def rss_bytes(pid: int) -> int:
    """Return the process's resident set size now, in bytes."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """Return the process's peak resident set size so far (``VmHWM``), in bytes."""
    return _status_kib(pid, "VmHWM") * 1024


class RssSampler(LocalService):
    """Samples a process's RSS every ``interval`` seconds on a thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        """Sample ``pid``; the samples are ``(seconds since start, bytes)``."""
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.peak_bytes = 0
        """``VmHWM`` at the last sample: the peak including moments between samples."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> Self:
        """Start sampling."""
        self._thread.start()
        return self

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - began, rss_bytes(self.pid)))
                self.peak_bytes = peak_rss_bytes(self.pid)
            except (OSError, LookupError):  # the process is gone: keep what was sampled
                return
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop sampling (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def max_sampled_bytes(self) -> int:
        """Return the largest sampled RSS."""
        return max((sample for _, sample in self.samples), default=0)
