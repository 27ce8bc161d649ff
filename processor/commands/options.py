"""The flags every trace-producing command shares, and the settings they give."""

from __future__ import annotations

import argparse
import os

from processor.config import Settings, default_log_format, load_settings


def add_core_options(parser: argparse.ArgumentParser, *, grace_default: float | None) -> None:
    """Add the trace-derivation flags; ``grace_default`` is the command's own grace default."""
    group = parser.add_argument_group("trace derivation (flags override PROWTRACE_* variables)")
    group.add_argument(
        "--id-mode",
        choices=["uid", "build-id"],
        help="uid: trace ID = ProwJob UID, as Istio's tracing.sh (default; needs prowjob.json); "
        "build-id: hash of job name and build ID, for deployments that cannot read artifacts "
        "or whose runs have no prowjob.json (crier's GCS reporter off)",
    )
    group.add_argument(
        "--artifacts",
        metavar="SOURCE",
        help="where job artifacts are read: gcs (default, Application Default Credentials), "
        "none, or a local mirror directory",
    )
    group.add_argument(
        "--artifacts-mirror",
        metavar="DIR",
        help=(
            "read artifacts from DIR, which mirrors buckets: gs://BUCKET/PATH is "
            "DIR/BUCKET/PATH, s3://BUCKET/PATH is DIR/s3/BUCKET/PATH"
        ),
    )
    grace_help = "seconds after a message's publish time to keep waiting (retrying) for late "
    grace_help += "artifacts before emitting what exists"
    if grace_default is not None:
        grace_help += f" (default here {grace_default:g})"
    group.add_argument("--grace-seconds", type=float, metavar="N", help=grace_help)
    group.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO"
    )
    group.add_argument(
        "--log-format",
        choices=["json", "console"],
        help="json (Cloud Logging fields) or console; default console on a terminal, else json",
    )


METRICS_FLAG_HELP = (
    "also record CI/CD metrics as OTEL_METRICS_EXPORTER says (off by default: replaying "
    "history into live counters would distort them)"
)


def settings_from_args(args: argparse.Namespace, *, grace_default: float | None = None) -> Settings:
    """Return the settings: flags, then ``PROWTRACE_*`` variables, then the command's defaults."""
    return load_settings(
        os.environ,
        defaults={"grace_seconds": grace_default, "log_format": default_log_format()},
        id_mode=args.id_mode,
        artifacts=args.artifacts_mirror or args.artifacts,
        grace_seconds=args.grace_seconds,
        log_level=args.log_level,
        log_format=args.log_format,
    )
