"""The ``prowtrace`` command line: one subcommand per way of feeding the core.

Exit status: 0 success; 1 the command ran but some messages were not traced (details printed);
2 usage or configuration error; 130 interrupted (backfill, demo).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from processor import __version__
from processor.config import ConfigError, Settings, load_settings
from processor.logs import configure_logging

if TYPE_CHECKING:  # the commands import their modules lazily, to keep --help fast
    from processor.export.group_commit import GroupCommitExporter

EXIT_OK = 0
EXIT_NOT_ALL_TRACED = 1
EXIT_USAGE = 2
METRICS_FLAG_HELP = (
    "also record CI/CD metrics as OTEL_METRICS_EXPORTER says (off by default: replaying "
    "history into live counters would distort them)"
)

Command = Callable[[argparse.Namespace], int]


def _add_core_options(parser: argparse.ArgumentParser, *, grace_default: float | None) -> None:
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
        help="read artifacts from DIR, which mirrors buckets: gs://BUCKET/PATH is DIR/BUCKET/PATH",
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


def settings_from_args(args: argparse.Namespace, *, grace_default: float | None = None) -> Settings:
    """Return the settings the environment and ``args`` give together."""
    env = os.environ
    grace = args.grace_seconds
    if grace is None and "PROWTRACE_GRACE_SECONDS" not in env:
        grace = grace_default
    log_format = args.log_format
    if log_format is None and "PROWTRACE_LOG_FORMAT" not in env:
        log_format = "console" if sys.stderr.isatty() else "json"
    return load_settings(
        env,
        id_mode=args.id_mode,
        artifacts=args.artifacts_mirror or args.artifacts,
        grace_seconds=grace,
        log_level=args.log_level,
        log_format=log_format,
    )


def _replay(args: argparse.Namespace) -> int:
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
        return EXIT_NOT_ALL_TRACED
    return EXIT_OK


def _backfill(args: argparse.Namespace) -> int:
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


def _install_stop_signals(stop: Callable[[], None]) -> None:
    """Call ``stop`` on SIGTERM (Cloud Run's shutdown) and SIGINT (Ctrl-C)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop())


def _service_exporter() -> GroupCommitExporter:
    """Return the services' exporter: group commit, unless PROWTRACE_GROUP_COMMIT=off."""
    from processor.config import group_commit_enabled  # noqa: PLC0415 - keep --help fast
    from processor.export.exporters import build_exporter  # noqa: PLC0415
    from processor.export.group_commit import GroupCommitExporter  # noqa: PLC0415

    inner = build_exporter(os.environ)
    if group_commit_enabled(os.environ):
        return GroupCommitExporter(inner)
    # Off: a batch of one caller each, so one export call per message, still never two at once
    # (the SDK's contract for an exporter), in arrival order and without lingering.
    return GroupCommitExporter(inner, max_wait=0, max_batch_spans=1)


def _pull(args: argparse.Namespace) -> int:
    from google.cloud.pubsub_v1 import SubscriberClient  # noqa: PLC0415 - keep --help fast

    from processor.app import build_pipeline, service_metrics  # noqa: PLC0415
    from processor.config import load_pull_settings  # noqa: PLC0415
    from processor.export.exporters import gcp_project  # noqa: PLC0415
    from processor.transports.pull import PullWorker  # noqa: PLC0415

    settings = settings_from_args(args)
    pull_settings = load_pull_settings(os.environ, args.subscription)
    configure_logging(settings.log_level, settings.log_format)
    # Concurrent callbacks share export calls; each still returns only after its spans went out.
    exporter = _service_exporter()
    inner_exporter = exporter.inner
    metrics = service_metrics(os.environ)
    pipeline = build_pipeline(settings, exporter=exporter, metrics=metrics)
    worker = PullWorker(
        SubscriberClient(),
        pull_settings,
        pipeline.handle,
        project=gcp_project(os.environ),
        hold_for=settings.grace,
        recheck=pipeline.recheck,
    )
    stop = threading.Event()
    _install_stop_signals(stop.set)
    worker.start()
    ended = worker.wait(stop)
    # Shutting the inner exporter down ends its retries, so a down backend cannot hold the exit.
    worker.stop(abort_exports=inner_exporter.shutdown)
    exporter.shutdown()
    metrics.shutdown()  # the last counts, bounded: a down backend cannot hold the exit
    if ended != "stop requested":
        print(f"prowtrace pull: {ended}", file=sys.stderr)  # noqa: T201
        return EXIT_NOT_ALL_TRACED
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - keep --help fast

    from processor.app import build_pipeline, service_metrics  # noqa: PLC0415
    from processor.config import load_push_settings  # noqa: PLC0415
    from processor.export.exporters import gcp_project  # noqa: PLC0415
    from processor.transports.oidc import push_verifier  # noqa: PLC0415
    from processor.transports.push import PushEndpoint, create_app, serve  # noqa: PLC0415

    settings = settings_from_args(args)
    push_settings = load_push_settings(os.environ, host=args.host, port=args.port)
    configure_logging(settings.log_level, settings.log_format)
    # Concurrent requests share export calls; each still answers only after its spans went out.
    exporter = _service_exporter()
    inner_exporter = exporter.inner
    metrics = service_metrics(os.environ)
    pipeline = build_pipeline(settings, exporter=exporter, metrics=metrics)
    endpoint = PushEndpoint(
        pipeline.handle,
        push_settings,
        verifier=push_verifier(push_settings),
        project=gcp_project(os.environ),
        # Shutting the inner exporter down ends its retries, so a down backend cannot hold the exit.
        abort_exports=inner_exporter.shutdown,
        hold_for=settings.grace,
        recheck=pipeline.recheck,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(create_app(endpoint, push_settings), push_settings, stop)

    asyncio.run(run())
    exporter.shutdown()
    metrics.shutdown()  # the last counts, bounded: a down backend cannot hold the exit
    return EXIT_OK


def _traceparent(args: argparse.Namespace) -> int:
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
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from processor.tools.show import show_main  # noqa: PLC0415 - keep --help fast

    return show_main(args.file, args.html, sys.stdout)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415 - keep --help fast

    from processor.tools.demo import DemoOptions, demo_main  # noqa: PLC0415

    options = DemoOptions(
        jobs=args.jobs,
        seed=args.seed,
        output=Path(args.output),
        use_emulator=not args.no_emulator,
        keep=args.keep,
        metrics=args.metrics,
    )
    return demo_main(options)


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

    replay = commands.add_parser(
        "replay",
        help="process recorded messages (JSON lines) and export their traces",
        description=(
            "Read JSON lines, each a Pub/Sub push envelope or a bare crier message, process "
            "them through the same pipeline as the services, export the spans, and print a "
            "summary (traced, skipped, invalid, failed). Exit 0 when every line was exported "
            "or deliberately skipped, 1 otherwise. Invalid lines never stop the others."
        ),
    )
    replay.add_argument("file", metavar="FILE", help="JSON lines file, or - for standard input")
    replay.add_argument(
        "--otlp-json",
        metavar="OUT",
        help="also append the spans to OUT as OTLP JSON lines, for `prowtrace show` "
        "(with OTEL_TRACES_EXPORTER=none, only there)",
    )
    replay.add_argument("--metrics", action="store_true", help=METRICS_FLAG_HELP)
    _add_core_options(replay, grace_default=0)
    replay.set_defaults(run=_replay)

    pull = commands.add_parser(
        "pull",
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
    pull.add_argument(
        "--subscription",
        metavar="projects/P/subscriptions/S",
        help="the subscription to consume (default: PROWTRACE_SUBSCRIPTION)",
    )
    _add_core_options(pull, grace_default=None)
    pull.set_defaults(run=_pull)

    serve = commands.add_parser(
        "serve",
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
    serve.add_argument("--host", help="interface to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port to listen on (default $PORT or 8080)")
    _add_core_options(serve, grace_default=None)
    serve.set_defaults(run=_serve)

    backfill = commands.add_parser(
        "backfill",
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
    backfill.add_argument(
        "prefixes",
        nargs="+",
        metavar="PREFIX",
        help="artifact folder to search, e.g. gs://BUCKET/logs/JOB/ or gs://BUCKET/pr-logs/",
    )
    backfill.add_argument(
        "--since",
        metavar="DATE",
        help="only runs that finished (status.completionTime) at or after DATE: "
        "2026-11-01, 2026-11-01T12:00:00Z (UTC if no offset), or an age: 90m, 36h, 7d, 2w",
    )
    backfill.add_argument(
        "--until", metavar="DATE", help="only runs that finished before DATE (same forms)"
    )
    backfill.add_argument(
        "--job",
        metavar="REGEX",
        help="only jobs whose name matches REGEX (searched: use ^name$ for one job)",
    )
    backfill.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="runs processed at once (default 8)",
    )
    backfill.add_argument(
        "--publish",
        metavar="projects/P/topics/T",
        help="publish the messages to this topic instead of tracing here "
        "(honours PUBSUB_EMULATOR_HOST)",
    )
    backfill.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: print the messages as JSON lines (input for `prowtrace replay`); "
        "the summary goes to standard error",
    )
    backfill.add_argument("--metrics", action="store_true", help=METRICS_FLAG_HELP)
    _add_core_options(backfill, grace_default=0)
    backfill.set_defaults(run=_backfill)

    tp = commands.add_parser(
        "traceparent",
        help="print the W3C traceparent that parents job code's spans under the job's root",
        description=(
            "Inside a Prow pod (PROW_JOB_ID, JOB_NAME, BUILD_ID set) print the traceparent of "
            "the job's root span, 00-<trace>-<root span>-01, as prowtrace will emit it. Same "
            "trace and parent IDs as Istio's tracing.sh, but sampled. Use it as "
            'eval "$(prowtrace traceparent --export)" before otel-cli or an OpenTelemetry SDK. '
            'Pure shell: t=${PROW_JOB_ID//-/}; export TRACEPARENT="00-${t}-${t:0:16}-01"'
        ),
    )
    tp.add_argument("--export", action="store_true", help="print `export TRACEPARENT=...`")
    tp.add_argument(
        "--id-mode",
        choices=["uid", "build-id"],
        help="the deployment's ID mode (default: PROWTRACE_ID_MODE, else uid)",
    )
    tp.add_argument("--prow-job-id", help="ProwJob UID (default: $PROW_JOB_ID)")
    tp.add_argument("--job-name", help="job name, build-id mode (default: $JOB_NAME)")
    tp.add_argument("--build-id", help="build ID, build-id mode (default: $BUILD_ID)")
    tp.set_defaults(run=_traceparent)

    show = commands.add_parser(
        "show",
        help="draw traces from an OTLP JSON file as waterfalls (terminal or HTML)",
        description=(
            "Read an OTLP JSON file (the OpenTelemetry file-exporter format: one "
            "ExportTraceServiceRequest per line, as `prowtrace demo` and `replay --otlp-json` "
            "write) and draw each trace as a waterfall: nesting, bars to scale, durations, "
            "status colours and the job's key attributes. --html writes a self-contained page."
        ),
    )
    show.add_argument("file", nargs="?", default="-", help="OTLP JSON file; - for stdin")
    show.add_argument(
        "--html", metavar="OUT.html", help="write a self-contained HTML page (- for stdout)"
    )
    show.set_defaults(run=_show)

    demo = commands.add_parser(
        "demo",
        help="see it work: a bundled Prow job stream through Pub/Sub and the pull worker, "
        "drawn as waterfalls (no cloud account needed)",
        description=(
            "Generate a dozen realistic Prow job lifecycles with their artifacts, publish crier's "
            "messages to Google's Pub/Sub emulator (or, if it is not installed, an in-process "
            "Pub/Sub server), trace them with the real pull worker and draw each job's trace. "
            "The traces are also written to an OTLP JSON file for `prowtrace show`, and sent to "
            "OTEL_EXPORTER_OTLP_ENDPOINT when it is set (e.g. a local Jaeger or Tempo). Needs no "
            "network beyond 127.0.0.1 and cleans up everything it starts."
        ),
    )
    demo.add_argument(
        "--jobs", type=int, default=12, metavar="N", help="how many jobs to run (default 12)"
    )
    demo.add_argument(
        "--seed", type=int, help="replay the jobs of an earlier run (default: a new seed each run)"
    )
    demo.add_argument(
        "--output",
        metavar="FILE",
        default="prowtrace-demo-traces.jsonl",
        help="OTLP JSON file to write (default prowtrace-demo-traces.jsonl, replaced if present)",
    )
    demo.add_argument(
        "--no-emulator",
        action="store_true",
        help="use the in-process Pub/Sub server even if Google's emulator is installed",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (artifact mirror, worker log) and print its path",
    )
    demo.add_argument(
        "--metrics",
        action="store_true",
        help="also record the CI/CD metrics (run durations by state and result, errors) and "
        "print a summary of them",
    )
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from processor.artifacts import StoreSetupError  # noqa: PLC0415 - keep --help fast

    try:
        return run(args)
    except (ConfigError, StoreSetupError) as error:
        print(f"prowtrace {args.command}: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
