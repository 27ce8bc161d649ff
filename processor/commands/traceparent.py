"""``prowtrace traceparent``: the W3C traceparent of a job's root span, inside its pod."""

from __future__ import annotations

import argparse
import os

from processor.config import ConfigError
from processor.exit_codes import ExitCode

NAME = "traceparent"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the command and its flags."""
    parser = commands.add_parser(
        NAME,
        help="print the W3C traceparent that parents job code's spans under the job's root",
        description=(
            "Inside a Prow pod (PROW_JOB_ID, JOB_NAME, BUILD_ID set) print the traceparent of "
            "the job's root span, 00-<trace>-<root span>-01, as prowtrace will emit it. Same "
            "trace and parent IDs as Istio's tracing.sh, but sampled. Use it as "
            'eval "$(prowtrace traceparent --export)" before otel-cli or an OpenTelemetry SDK. '
            'Pure shell: t=${PROW_JOB_ID//-/}; export TRACEPARENT="00-${t}-${t:0:16}-01"'
        ),
    )
    parser.add_argument("--export", action="store_true", help="print `export TRACEPARENT=...`")
    parser.add_argument(
        "--id-mode",
        choices=["uid", "build-id"],
        help="the deployment's ID mode (default: PROWTRACE_ID_MODE, else uid)",
    )
    parser.add_argument("--prow-job-id", help="ProwJob UID (default: $PROW_JOB_ID)")
    parser.add_argument("--job-name", help="job name, build-id mode (default: $JOB_NAME)")
    parser.add_argument("--build-id", help="build ID, build-id mode (default: $BUILD_ID)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the traceparent (flags override the pod's variables)."""
    from processor.core.ids import IdMode  # noqa: PLC0415 - keep --help fast
    from processor.tools.traceparent import JobEnvironment, job_traceparent, render  # noqa: PLC0415

    env = JobEnvironment.from_env(os.environ)
    job = JobEnvironment(
        prow_job_id=args.prow_job_id or env.prow_job_id,
        job_name=args.job_name or env.job_name,
        build_id=args.build_id or env.build_id,
    )
    mode_name = args.id_mode or os.environ.get("PROWTRACE_ID_MODE") or IdMode.UID
    try:
        mode = IdMode(mode_name)
    except ValueError:
        raise ConfigError(f"PROWTRACE_ID_MODE={mode_name!r}: choose uid or build-id") from None
    print(render(job_traceparent(job, mode), export=args.export))  # noqa: T201 - the output
    return ExitCode.OK
