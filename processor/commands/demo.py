"""``prowtrace demo``: a bundled Prow job stream through the emulator and the pull worker."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
DEFAULT_JOBS = 12
DEFAULT_OUTPUT = "prowtrace-demo-traces.jsonl"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command and its flags."""
    parser = commands.add_parser(
        NAME,
        help="see it work: a bundled Prow job stream through Pub/Sub and the pull worker, "
        "drawn as waterfalls (no cloud account needed)",
        description=(
            "Generate a dozen realistic Prow job lifecycles with their artifacts, publish crier's "
            "messages to Google's Pub/Sub emulator, trace them with the real pull worker and "
            "draw each job's trace (without the emulator, it writes the same jobs for "
            "`prowtrace replay` and prints the commands). "
            "The traces are also written to an OTLP JSON file for `prowtrace show`, and sent to "
            "OTEL_EXPORTER_OTLP_ENDPOINT when it is set (e.g. a local Jaeger or Tempo). Needs no "
            "network beyond 127.0.0.1 and cleans up everything it starts."
        ),
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"how many jobs to run (default {DEFAULT_JOBS})",
    )
    parser.add_argument(
        "--seed", type=int, help="replay the jobs of an earlier run (default: a new seed each run)"
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        default=DEFAULT_OUTPUT,
        help=f"OTLP JSON file to write (default {DEFAULT_OUTPUT}, replaced if present)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (artifact mirror, worker log) and print its path",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="also record the CI/CD metrics (run durations by state and result, errors) and "
        "print a summary of them",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; its exit status says whether every job was traced."""
    from processor.tools.demo import DemoOptions, demo_main  # noqa: PLC0415 - keep --help fast

    options = DemoOptions(
        jobs=args.jobs,
        seed=args.seed,
        output=Path(args.output),
        keep=args.keep,
        metrics=args.metrics,
    )
    return demo_main(options)
