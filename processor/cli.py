"""The ``prowtrace`` command line: one subcommand per way of feeding the core."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from processor import __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="prowtrace",
        description=(
            "Turn Prow's crier job-state messages into OpenTelemetry traces. "
            "Every trace and span ID derives from the ProwJob's UID, so any number of "
            "instances can process the same stream without shared state."
        ),
    )
    parser.add_argument("--version", action="version", version=f"prowtrace {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return 0
