"""An HTTP load generator in its own process, closed loop or open loop, on loopback.

Closed loop (``rate`` None): C workers, each sending its next request as soon as the previous one
is answered, so the server always holds C requests; latency runs from sending to the full answer.
Open loop (``rate`` R): requests arrive as a Poisson process of R per second with at most C in
flight (an arrival waits for a free slot, as Pub/Sub holds pushes back at the concurrency limit);
latency runs from the arrival, so waiting for a slot counts (no coordinated omission). Runs on the
helper core with aiohttp; requests that arrive during the warm-up are not counted.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass
class LoadResult:
    """What one load run measured."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    errors: int = 0
    completed: int = 0
    """Every answered request, warm-up included (what the server's CPU time was spent on)."""

    def record(self, status: int | None, started: float, measure_from: float) -> None:
        """Count one request (``status`` None: it failed) that started at ``started``."""
        if status is None:
            self.errors += started >= measure_from
            return
        self.completed += 1
        if started >= measure_from:
            self.latencies_ms.append((time.monotonic() - started) * 1000)
            self.statuses[status] += 1


@dataclass(frozen=True)
class LoadSpec:
    """One load run: where, what, how hard and for how long."""

    url: str
    bodies: list[bytes] | None
    """Push bodies to POST in turn; ``None`` sends GETs."""
    concurrency: int
    duration: float
    warmup: float
    rate: float | None = None
    """Open-loop arrival rate (requests/s); ``None`` for a closed loop."""


async def _send(session: aiohttp.ClientSession, url: str, body: bytes | None) -> int | None:
    """Send one request and read the whole answer; its status, or None if it failed."""
    try:
        if body is None:
            response = await session.get(url)
        else:
            response = await session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            )
        async with response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return None


def _bodies(spec: LoadSpec) -> Iterator[bytes | None]:
    return itertools.cycle(spec.bodies) if spec.bodies else itertools.repeat(None)


async def closed_loop(spec: LoadSpec) -> LoadResult:
    """Run ``spec.concurrency`` workers back to back for the warm-up plus the duration."""
    result = LoadResult()
    bodies = _bodies(spec)
    measure_from = time.monotonic() + spec.warmup
    stop_at = measure_from + spec.duration

    async def worker(session: aiohttp.ClientSession) -> None:
        while (sent := time.monotonic()) < stop_at:
            result.record(await _send(session, spec.url, next(bodies)), sent, measure_from)

    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as session:
        await asyncio.gather(*(worker(session) for _ in range(spec.concurrency)))
    result.seconds = max(1e-9, time.monotonic() - measure_from)
    return result


async def open_loop(spec: LoadSpec, rate: float) -> LoadResult:
    """Let requests arrive at ``rate`` per second, at most ``spec.concurrency`` in flight."""
    result = LoadResult()
    bodies = _bodies(spec)
    arrivals = random.Random(spec.concurrency)  # noqa: S311 - reproducible arrivals, not a secret
    slots = asyncio.Semaphore(spec.concurrency)
    arrival = time.monotonic()
    measure_from = arrival + spec.warmup
    stop_at = measure_from + spec.duration
    pending: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, arrived: float, body: bytes | None) -> None:
        async with slots:
            status = await _send(session, spec.url, body)
        result.record(status, arrived, measure_from)

    connector = aiohttp.TCPConnector(limit=spec.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=_TIMEOUT) as session:
        while (arrival := arrival + arrivals.expovariate(rate)) < stop_at:
            await asyncio.sleep(max(0.0, arrival - time.monotonic()))
            task = asyncio.create_task(one(session, arrival, next(bodies)))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    result.seconds = spec.duration
    return result


def _child(spec: LoadSpec, cpus: frozenset[int], out: Any) -> None:  # noqa: ANN401 - a queue
    os.sched_setaffinity(0, cpus)
    run = closed_loop(spec) if spec.rate is None else open_loop(spec, spec.rate)
    out.put(asyncio.run(run))


def run_load(spec: LoadSpec, cpus: frozenset[int]) -> LoadResult:
    """Run ``spec`` in a separate process pinned to ``cpus``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(spec, cpus, queue), name="bench-loadgen")
    process.start()
    result: LoadResult = queue.get(timeout=spec.duration + spec.warmup + 120)
    process.join()
    return result
