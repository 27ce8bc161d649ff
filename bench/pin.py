"""Run a command pinned to some CPUs: ``python -m bench.pin 0 -- prowtrace serve``.

The affinity is set before ``exec``, so every thread the command ever starts inherits it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def parse_cpus(text: str) -> set[int]:
    """Parse ``0`` or ``0,1`` into a CPU set."""
    cpus = {int(part) for part in text.split(",") if part.strip()}
    if not cpus:
        raise ValueError(f"no CPU in {text!r}")
    return cpus


def main(argv: Sequence[str]) -> None:
    """Pin this process to ``argv[0]``'s CPUs, then exec the command after ``--``."""
    if len(argv) < 3 or argv[1] != "--":  # noqa: PLR2004 - CPUS, "--", then the command
        raise SystemExit("usage: python -m bench.pin CPUS -- COMMAND [ARG...]")
    os.sched_setaffinity(0, parse_cpus(argv[0]))
    command = list(argv[2:])
    os.execvp(command[0], command)  # noqa: S606 - the benchmark's own, fixed commands


if __name__ == "__main__":
    main(sys.argv[1:])
