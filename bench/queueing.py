"""What an ideal one-core server would answer at the open loop's load: the tail's own floor.

The push endpoint's open-loop p99 is compared with ``/healthz``'s, but a push request costs a
millisecond or more of CPU and ``/healthz`` almost none, and at 60 % of one core requests queue
behind each other. How much of the tail is that queueing alone, whatever the server does? Here
the same push bodies go through the serve pipeline (mirror reads, one OTLP/gRPC export each) in a
child process pinned to the measured core, one at a time, and each message's CPU time is its
service time. Two ideal single-core servers are then simulated with Poisson arrivals at the open
loop's rate, each drawing service times from that sample:

- **FIFO**: one request at a time, in arrival order (M/G/1).
- **Processor sharing**: every request in progress gets an equal share of the core (M/G/1-PS),
  which is what many threads taking turns at the GIL approach.

Neither has HTTP, logging, thread hand-offs or garbage collection: what they answer is a floor
for the p99 of *any* server doing this work on one core at this rate.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.receiver import CountingReceiver, otlp_environ
from bench.stats import percentile
from bench.workspace import read_deliveries

WARMUP_MESSAGES = 300
SIMULATED_ARRIVALS = 200_000


def fifo_sojourns(service: Sequence[float], rate: float, arrivals: int, seed: int) -> list[float]:
    """Simulate a one-core FIFO server; return each request's time from arrival to answer."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    now = free = 0.0
    sojourns = []
    for _ in range(arrivals):
        now += rng.expovariate(rate)
        free = max(now, free) + rng.choice(service)
        sojourns.append(free - now)
    return sojourns


def ps_sojourns(service: Sequence[float], rate: float, arrivals: int, seed: int) -> list[float]:
    """Simulate a one-core processor-sharing server; return each request's sojourn time.

    With k requests in progress each is served at 1/k of the core, so in "virtual time" (the
    service every request in progress has received) a request ends at its arrival's virtual time
    plus its size: a heap of those ends gives the next departure.
    """
    rng = random.Random(seed)  # noqa: S311 - a simulation, not a secret
    now = virtual = 0.0
    ends: list[tuple[float, float]] = []  # (virtual end, arrival time)
    sojourns = []
    next_arrival = rng.expovariate(rate)
    arrived = 0
    while arrived < arrivals or ends:
        if ends:
            until_departure = (ends[0][0] - virtual) * len(ends)
            if arrived >= arrivals or now + until_departure <= next_arrival:
                now += until_departure
                virtual = ends[0][0]
                _, arrival = heapq.heappop(ends)
                sojourns.append(now - arrival)
                continue
            virtual += (next_arrival - now) / len(ends)
        now = next_arrival
        heapq.heappush(ends, (virtual + rng.choice(service), now))
        arrived += 1
        next_arrival = now + rng.expovariate(rate)
    return sojourns


def ideal_servers(service: Sequence[float], rate: float, *, seed: int = 3) -> dict[str, float]:
    """p50/p99 (ms) of both ideal servers at ``rate`` requests/s with these service times."""
    mean = sum(service) / len(service)
    report = {"service_ms_mean": 1e3 * mean, "utilisation": rate * mean}
    for name, simulate in (("fifo", fifo_sojourns), ("ps", ps_sojourns)):
        sojourns = sorted(simulate(service, rate, SIMULATED_ARRIVALS, seed))
        report[f"{name}_p50_ms"] = 1e3 * percentile(sojourns, 0.50)
        report[f"{name}_p99_ms"] = 1e3 * percentile(sojourns, 0.99)
    return report


def _child(corpus: Path, mirror: Path, endpoint: str, cpus: frozenset[int], out: Any) -> None:  # noqa: ANN401 - a multiprocessing queue
    os.sched_setaffinity(0, cpus)
    environ = {
        **otlp_environ(endpoint),
        "PROWTRACE_ARTIFACTS": str(mirror),
        "PROWTRACE_GRACE_SECONDS": "0",
    }
    os.environ.update(environ)  # the OTLP exporter reads some of its settings from os.environ
    from processor.app import build_pipeline  # noqa: PLC0415 - after the pinning, in the child
    from processor.config import load_settings  # noqa: PLC0415
    from processor.logs import configure_logging  # noqa: PLC0415

    with Path(os.devnull).open("w", encoding="utf-8") as quiet:
        configure_logging("WARNING", "json", stream=quiet)
        pipeline = build_pipeline(load_settings(environ), environ)
        deliveries = list(read_deliveries(corpus))
        for delivery in deliveries[:WARMUP_MESSAGES]:
            pipeline.handle(delivery)
        costs = []
        for delivery in deliveries:
            started = time.thread_time()
            pipeline.handle(delivery)
            costs.append(time.thread_time() - started)
    out.put(costs)


def service_times(
    corpus: Path, mirror: Path, cores: tuple[frozenset[int], frozenset[int]]
) -> list[float]:
    """Each message's CPU seconds through the serve pipeline, alone, on the measured core."""
    measured, helpers = cores
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with CountingReceiver(helpers) as receiver:
        child = context.Process(
            target=_child,
            args=(corpus, mirror, receiver.endpoint, measured, queue),
            name="bench-service-times",
        )
        child.start()
        costs: list[float] = queue.get(timeout=600)
        child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"service-time child exited with {child.exitcode}")
    return costs
