"""``prowtrace show``: draw traces from an OTLP JSON file as waterfalls."""

from __future__ import annotations

import argparse
import sys

NAME = "show"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command and its flags."""
    parser = commands.add_parser(
        NAME,
        help="draw traces from an OTLP JSON file as waterfalls (terminal or HTML)",
        description=(
            "Read an OTLP JSON file (the OpenTelemetry file-exporter format: one "
            "ExportTraceServiceRequest per line, as `prowtrace demo` and `replay --otlp-json` "
            "write) and draw each trace as a waterfall: nesting, bars to scale, durations, "
            "status colours and the job's key attributes. --html writes a self-contained page."
        ),
    )
    parser.add_argument("file", nargs="?", default="-", help="OTLP JSON file; - for stdin")
    parser.add_argument(
        "--html", metavar="OUT.html", help="write a self-contained HTML page (- for stdout)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Draw the file's traces."""
    from processor.tools.show import show_main  # noqa: PLC0415 - keep --help fast

    return show_main(args.file, args.html, sys.stdout)
