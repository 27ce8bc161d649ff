"""The machine a run measured, and how its cores are split between the measured side and helpers."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cores:
    """The core the measured process gets, and the ones its helpers share."""

    measured: frozenset[int]
    helpers: frozenset[int]

    @property
    def shared(self) -> bool:
        """True when there is one core only, so helpers compete with the measured process."""
        return self.measured == self.helpers


def split_cores(available: set[int]) -> Cores:
    """Give the lowest core to the measured process and the rest to helpers (all if only one)."""
    if not available:
        raise ValueError("no CPU available")
    ordered = sorted(available)
    measured = frozenset(ordered[:1])
    helpers = frozenset(ordered[1:]) or measured
    return Cores(measured=measured, helpers=helpers)


def available_cores() -> Cores:
    """Split the cores this process may run on."""
    return split_cores(set(os.sched_getaffinity(0)))


def cpu_list(cpus: frozenset[int]) -> str:
    """Format a CPU set as ``bench.pin`` takes it."""
    return ",".join(str(cpu) for cpu in sorted(cpus))


def cpu_model(cpuinfo: str) -> str:
    """Return the first ``model name`` of /proc/cpuinfo's text ('' if none)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip()
    return ""


def describe() -> dict[str, Any]:
    """Return what a reader needs to compare runs: cores, CPU model, memory, Python."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        cpuinfo = ""
    cores = available_cores()
    return {
        "nproc": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(cpuinfo) or platform.processor(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "cores": {k: sorted(v) for k, v in asdict(cores).items()},
    }
