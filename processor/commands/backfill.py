"""``prowtrace backfill``: trace runs that already finished, found in the artifact bucket."""

from __future__ import annotations

import argparse
import os

from processor.commands.options import METRICS_FLAG_HELP, add_core_options, settings_from_args
from processor.logs import configure_logging

NAME = "backfill"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command and its flags."""
    parser = commands.add_parser(
        NAME,
        help="trace runs that already finished, found in the artifact bucket",
        description=(
            "Find finished runs under artifact prefixes (folders holding prowjob.json), rebuild "
            "for each the terminal-state message crier would have published, and trace it "
            "through the same pipeline as the services (grace 0 unless --grace-seconds), or "
            "with --publish send the messages to a topic for the deployed fleet. Skipped: "
            "unfinished runs, a revived pod's superseded first folder, runs whose pod never "
            "started, and runs outside the filters. Safe to interrupt (Ctrl-C finishes the "
            "runs in flight and prints the summary) and to rerun: IDs derive from the ProwJob, "
            "so a rerun gives the same spans, never a second trace. Exit 0 if every run was "
            "traced or skipped, 1 if some failed, 2 on usage errors, 130 if interrupted."
        ),
    )
    parser.add_argument(
        "prefixes",
        nargs="+",
        metavar="PREFIX",
        help="artifact folder to search, e.g. gs://BUCKET/logs/JOB/ or gs://BUCKET/pr-logs/",
    )
    parser.add_argument(
        "--since",
        metavar="DATE",
        help="only runs that finished (status.completionTime) at or after DATE: "
        "2026-11-01, 2026-11-01T12:00:00Z (UTC if no offset), or an age: 90m, 36h, 7d, 2w",
    )
    parser.add_argument(
        "--until", metavar="DATE", help="only runs that finished before DATE (same forms)"
    )
    parser.add_argument(
        "--job",
        metavar="REGEX",
        help="only jobs whose name matches REGEX (searched: use ^name$ for one job)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="runs processed at once (default 8)",
    )
    parser.add_argument(
        "--publish",
        metavar="projects/P/topics/T",
        help="publish the messages to this topic instead of tracing here "
        "(honours PUBSUB_EMULATOR_HOST)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: print the messages as JSON lines (input for `prowtrace replay`); "
        "the summary goes to standard error",
    )
    parser.add_argument("--metrics", action="store_true", help=METRICS_FLAG_HELP)
    add_core_options(parser, grace_default=0)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Backfill; the exit status is the summary's (0, 1, or 130 if interrupted)."""
    from processor.tools.backfill import BackfillOptions, backfill_main, log_stream  # noqa: PLC0415 - keep --help fast

    settings = settings_from_args(args, grace_default=0)
    level = settings.log_level if args.log_level else "WARNING"
    configure_logging(level, settings.log_format, stream=log_stream())
    options = BackfillOptions(
        prefixes=tuple(args.prefixes),
        since=args.since,
        until=args.until,
        job=args.job,
        concurrency=args.concurrency,
        publish=args.publish,
        dry_run=args.dry_run,
        metrics=args.metrics,
    )
    return backfill_main(
        options, settings, grace_given=args.grace_seconds is not None, env=os.environ
    )
