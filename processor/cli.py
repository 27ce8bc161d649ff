"""The ``prowtrace`` command line: dispatch to one module per command (:mod:`processor.commands`).

Exit status (:class:`~processor.exit_codes.ExitCode`): 0 success; 1 the command ran but some
messages were not traced (details printed); 2 usage or configuration error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from processor import __version__
from processor.commands import COMMANDS
from processor.config import ConfigError
from processor.exit_codes import ExitCode

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="prowtrace",
        description=(
            "Turn Prow's crier job-state messages into OpenTelemetry traces. "
            "Every trace and span ID derives from the ProwJob's UID, so any number of "
            "instances can process the same stream without shared state. "
            "Spans are exported as the standard OTEL_* variables say "
            "(OTEL_TRACES_EXPORTER=otlp|gcp_otlp|gcp_trace|console|none); CI/CD metrics only "
            "when OTEL_METRICS_EXPORTER=otlp|gcp_otlp|console is set."
        ),
    )
    parser.add_argument("--version", action="version", version=f"prowtrace {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    from processor.artifacts import StoreSetupError  # noqa: PLC0415 - keep --help fast

    try:
        return run(args)
    except (ConfigError, StoreSetupError) as error:
        print(f"prowtrace {args.command}: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return ExitCode.USAGE
