"""Memory: peak RSS of the replay path over a large corpus, sampled as it goes.

A child process (on the measured core) runs what ``prowtrace replay`` runs: the replay loop
reading push bodies line by line, the pipeline over the mirror, and OTLP/gRPC export to the
receiver in another process. It reads VmHWM (peak RSS) and VmRSS after start-up and at each
quarter of the input, so growth with job count shows. (Not ``ru_maxrss``: Linux carries it across
``exec``, so a child spawned from the large parent would report the parent's size.)
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from bench.proc import own_memory_kib
from bench.receiver import CountingReceiver, otlp_environ
from bench.workspace import Corpus
from processor.app import build_pipeline
from processor.config import Settings
from processor.logs import configure_logging
from processor.tools.replay import replay

CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)


def _sampled(lines: TextIO, total: int, jobs: int, samples: list[dict[str, Any]]) -> Iterator[str]:
    marks = {max(1, round(total * fraction)): fraction for fraction in CHECKPOINTS}
    for number, line in enumerate(lines, start=1):
        yield line
        if number in marks:
            # Sampled before the line is processed: the previous lines are all done.
            memory = own_memory_kib()
            samples.append(
                {
                    "jobs": round(jobs * marks[number]),
                    "messages": number - 1,
                    "rss_mib": memory["VmRSS"] / 1024,
                    "peak_rss_mib": memory["VmHWM"] / 1024,
                }
            )


def _child(
    corpus: Corpus,
    mirror: Path,
    endpoint: str,
    cpus: frozenset[int],
    out: Any,  # noqa: ANN401 - a multiprocessing queue
) -> None:
    os.sched_setaffinity(0, cpus)
    os.environ.update(otlp_environ(endpoint))
    with Path(os.devnull).open("w", encoding="utf-8") as quiet:
        configure_logging("WARNING", "json", stream=quiet)
        pipeline = build_pipeline(
            Settings(artifacts=str(mirror), grace=timedelta(0), log_level="WARNING")
        )
        started = own_memory_kib()
        samples: list[dict[str, Any]] = []
        with corpus.path.open(encoding="utf-8") as lines:
            summary = replay(
                _sampled(lines, corpus.messages, corpus.jobs, samples), pipeline.handle
            )
        final = own_memory_kib()
    samples[-1] = samples[-1] | {
        "messages": corpus.messages,
        "rss_mib": final["VmRSS"] / 1024,
        "peak_rss_mib": final["VmHWM"] / 1024,
    }
    out.put(
        {
            "startup_rss_mib": started["VmRSS"] / 1024,
            "startup_peak_mib": started["VmHWM"] / 1024,
            "samples": samples,
            "ok": summary.ok,
            "outcomes": {str(k): v for k, v in summary.outcomes.items()},
            "jobs_traced": len(summary.traces),
        }
    )


def measure(
    corpus: Corpus, mirror: Path, cores: tuple[frozenset[int], frozenset[int]]
) -> dict[str, Any]:
    """Replay ``corpus`` in a child process and report its memory over time."""
    measured_cpus, helper_cpus = cores
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with CountingReceiver(helper_cpus) as receiver:
        child = context.Process(
            target=_child,
            args=(corpus, mirror, receiver.endpoint, measured_cpus, queue),
            name="bench-memory",
        )
        child.start()
        report: dict[str, Any] = queue.get(timeout=3600)
        child.join()
    samples = report["samples"]
    first, last = samples[0]["peak_rss_mib"], samples[-1]["peak_rss_mib"]
    report["growth_ratio"] = last / first
    report["peak_over_startup"] = last / report["startup_rss_mib"]
    report["jobs"] = corpus.jobs
    report["messages"] = corpus.messages
    return report
