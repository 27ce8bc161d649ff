"""``prowtrace replay``: recorded messages through the services' pipeline, then a summary."""

from __future__ import annotations

import argparse
import os
import sys

from processor.commands.options import METRICS_FLAG_HELP, add_core_options, settings_from_args
from processor.exit_codes import ExitCode
from processor.logs import configure_logging

NAME = "replay"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command and its flags."""
    parser = commands.add_parser(
        NAME,
        help="process recorded messages (JSON lines) and export their traces",
        description=(
            "Read JSON lines, each a Pub/Sub push envelope or a bare crier message, process "
            "them through the same pipeline as the services, export the spans, and print a "
            "summary (traced, skipped, invalid, failed). Exit 0 when every line was exported "
            "or deliberately skipped, 1 otherwise. Invalid lines never stop the others."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="JSON lines file, or - for standard input")
    parser.add_argument(
        "--otlp-json",
        metavar="OUT",
        help="also append the spans to OUT as OTLP JSON lines, for `prowtrace show` "
        "(with OTEL_TRACES_EXPORTER=none, only there)",
    )
    parser.add_argument("--metrics", action="store_true", help=METRICS_FLAG_HELP)
    add_core_options(parser, grace_default=0)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Replay ``args.file``; exit 1 unless every message was traced or deliberately skipped."""
    from processor.app import build_pipeline, service_metrics  # noqa: PLC0415 - keep --help fast
    from processor.export.exporters import FanOutExporter, build_exporter  # noqa: PLC0415
    from processor.export.metrics import OFFLINE_FLUSH_SECONDS  # noqa: PLC0415
    from processor.export.otlp_json import OtlpJsonFileExporter  # noqa: PLC0415
    from processor.tools.replay import open_input, replay  # noqa: PLC0415

    settings = settings_from_args(args, grace_default=0)
    configure_logging(settings.log_level if args.log_level else "WARNING", settings.log_format)
    exporter = build_exporter(os.environ)
    if args.otlp_json:
        exporter = FanOutExporter([exporter, OtlpJsonFileExporter(args.otlp_json)])
    metrics = service_metrics(os.environ, wanted=args.metrics)
    pipeline = build_pipeline(settings, exporter=exporter, metrics=metrics)
    with open_input(args.file, sys.stdin) as lines:
        summary = replay(lines, pipeline.handle)
    exporter.shutdown()
    metrics.shutdown(OFFLINE_FLUSH_SECONDS)
    print(summary.render())  # noqa: T201 - the summary is the command's output
    if not summary.ok:
        print(  # noqa: T201
            "prowtrace replay: not every message was traced (see above)", file=sys.stderr
        )
        return ExitCode.NOT_ALL_TRACED
    return ExitCode.OK
