"""``prowtrace pull``: the streaming-pull worker (e.g. a Cloud Run worker pool)."""

from __future__ import annotations

import argparse
import os
import sys

from processor.commands.options import add_core_options, settings_from_args
from processor.exit_codes import ExitCode
from processor.logs import configure_logging

NAME = "pull"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command and its flags."""
    parser = commands.add_parser(
        NAME,
        help="consume a Pub/Sub subscription with streaming pull (a worker, e.g. a worker pool)",
        description=(
            "Stream messages from a Pub/Sub subscription and trace each job. A message is acked "
            "only after its spans were exported; retryable failures are nacked (the "
            "subscription's backoff applies); invalid messages are nacked to the dead-letter "
            "topic when the subscription has one, else acked and logged at ERROR. Honours "
            "PUBSUB_EMULATOR_HOST. SIGTERM/SIGINT stop pulling, finish what is in flight, flush "
            "and exit. Flow control: PROWTRACE_MAX_OUTSTANDING_MESSAGES, "
            "PROWTRACE_MAX_OUTSTANDING_BYTES, PROWTRACE_PULL_THREADS."
        ),
    )
    parser.add_argument(
        "--subscription",
        metavar="projects/P/subscriptions/S",
        help="the subscription to consume (default: PROWTRACE_SUBSCRIPTION)",
    )
    add_core_options(parser, grace_default=None)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Pull until SIGTERM/SIGINT (exit 0) or until the stream fails (exit 1)."""
    from processor.app import STOP_REQUESTED, run_pull  # noqa: PLC0415 - keep --help fast
    from processor.config import load_pull_settings  # noqa: PLC0415

    settings = settings_from_args(args)
    pull_settings = load_pull_settings(os.environ, args.subscription)
    configure_logging(settings.log_level, settings.log_format)
    ended = run_pull(settings, pull_settings)
    if ended != STOP_REQUESTED:
        print(f"prowtrace pull: {ended}", file=sys.stderr)  # noqa: T201
        return ExitCode.NOT_ALL_TRACED
    return ExitCode.OK
