"""Starting the real ``prowtrace serve`` / ``prowtrace pull`` commands as pinned subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.machine import cpu_list
from bench.receiver import otlp_environ

REPO_ROOT = Path(__file__).resolve().parents[1]
"""Where ``bench`` is importable from (``python -m bench.pin`` runs in the child)."""


def prowtrace_command(cpus: frozenset[int], *args: str) -> list[str]:
    """Return the command line that runs ``prowtrace ARGS`` pinned to ``cpus``."""
    script = Path(sys.executable).with_name("prowtrace")
    program = [str(script)] if script.exists() else [sys.executable, "-m", "processor"]
    return [sys.executable, "-m", "bench.pin", cpu_list(cpus), "--", *program, *args]


def service_environ(mirror: Path, endpoint: str, *, group_commit: bool) -> dict[str, str]:
    """Environment of a service under test: the mirror, no grace, OTLP/gRPC to ``endpoint``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.pop("K_SERVICE", None)
    env.update(otlp_environ(endpoint))
    env.update(
        {
            "PROWTRACE_ARTIFACTS": str(mirror),
            "PROWTRACE_GRACE_SECONDS": "0",
            "PROWTRACE_GROUP_COMMIT": "on" if group_commit else "off",
            "PROWTRACE_LOG_LEVEL": "INFO",  # production's level: a log line per message
            "PROWTRACE_LOG_FORMAT": "json",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        }
    )
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a service with its output (the per-message logs) going to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own fixed command line
            command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
