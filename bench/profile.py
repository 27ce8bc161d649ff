"""Profile the pipeline with pyinstrument: ``uv run python -m bench.profile [--jobs N]``.

Runs the serial pipeline (``prowtrace replay``'s path, OTLP/gRPC to a counting receiver in another
process) over a fresh corpus and prints pyinstrument's call tree: where the time per message goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from pyinstrument import Profiler

from bench import machine, workspace
from bench.receiver import CountingReceiver, otlp_environ
from bench.throughput import handle_serially
from processor.app import build_pipeline
from processor.config import Settings
from processor.logs import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    """Build a corpus, run the pipeline over it under the profiler, print the tree."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args(argv)
    cores = machine.available_cores()
    with tempfile.TemporaryDirectory(prefix="prowtrace-profile-") as scratch:
        ws = workspace.prepare(Path(scratch), small_jobs=args.jobs, large_jobs=args.jobs)
        deliveries = list(workspace.read_deliveries(ws.small.path))
        with CountingReceiver(cores.helpers) as receiver:
            os.sched_setaffinity(0, cores.measured)
            os.environ.update(otlp_environ(receiver.endpoint))
            with Path(os.devnull).open("w", encoding="utf-8") as quiet:
                configure_logging("WARNING", "json", stream=quiet)
                settings = Settings(artifacts=str(ws.mirror), grace=timedelta(0))
                pipeline = build_pipeline(settings)
                handle_serially(pipeline, deliveries[:100])
                profiler = Profiler(interval=0.0005)
                profiler.start()
                handle_serially(pipeline, deliveries)
                profiler.stop()
    sys.stdout.write(profiler.output_text(unicode=False, color=False))
    if args.html is not None:
        args.html.write_text(profiler.output_html(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
