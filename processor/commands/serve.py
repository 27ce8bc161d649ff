"""``prowtrace serve``: the Pub/Sub push endpoint (Cloud Run)."""

from __future__ import annotations

import argparse
import os

from processor.commands.options import add_core_options, settings_from_args
from processor.exit_codes import ExitCode
from processor.logs import configure_logging

NAME = "serve"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command and its flags."""
    parser = commands.add_parser(
        NAME,
        help="serve the Pub/Sub push endpoint (Cloud Run)",
        description=(
            "Listen on $PORT (default 8080) for Pub/Sub push requests at PROWTRACE_PUSH_PATH "
            "(default /). 2xx acks; other statuses nack. Verifies the push subscription's OIDC "
            "token (PROWTRACE_PUSH_AUDIENCE, PROWTRACE_PUSH_ALLOWED_EMAILS): Google's signature "
            "with PROWTRACE_PUSH_AUTH=oidc (the default); with cloud-run-iam, on Cloud Run "
            "behind its invoker IAM check, also tokens whose signature Cloud Run verified and "
            "removed (claims still checked); off is for local use and refused on Cloud Run. "
            "GET /healthz is liveness, GET /readyz readiness. SIGTERM drains and exits."
        ),
    )
    parser.add_argument("--host", help="interface to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default $PORT or 8080)")
    add_core_options(parser, grace_default=None)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, drain, exit 0."""
    from processor.app import run_push  # noqa: PLC0415 - keep --help fast
    from processor.config import load_push_settings  # noqa: PLC0415

    settings = settings_from_args(args)
    push_settings = load_push_settings(os.environ, host=args.host, port=args.port)
    configure_logging(settings.log_level, settings.log_format)
    run_push(settings, push_settings)
    return ExitCode.OK
