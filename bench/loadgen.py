"""A closed-loop HTTP load generator in its own process: C workers, each one request at a time.

Runs on the helper core with aiohttp. Latency is measured from just before a request is sent to
its full answer; requests started during the warm-up are not counted.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class LoadResult:
    """What one load run measured."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0
    errors: int = 0
    completed: int = 0
    """Every answered request, warm-up included (what the server's CPU time was spent on)."""


async def _load(
    url: str, bodies: list[bytes] | None, concurrency: int, duration: float, warmup: float
) -> LoadResult:
    result = LoadResult()
    next_body = itertools.cycle(bodies or [b""])
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + duration
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            sent = time.monotonic()
            if sent >= stop_at:
                return
            try:
                if bodies is None:
                    response = await session.get(url)
                else:
                    response = await session.post(
                        url, data=next(next_body), headers={"Content-Type": "application/json"}
                    )
                async with response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                if sent >= measure_from:
                    result.errors += 1
                continue
            result.completed += 1
            if sent >= measure_from:
                result.latencies_ms.append((time.monotonic() - sent) * 1000)
                result.statuses[status] += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    result.seconds = max(1e-9, min(time.monotonic(), stop_at + 30) - measure_from)
    return result


@dataclass(frozen=True)
class _Spec:
    url: str
    bodies: list[bytes] | None
    concurrency: int
    duration: float
    warmup: float
    cpus: frozenset[int]


def _child(spec: _Spec, out: Any) -> None:  # noqa: ANN401 - a multiprocessing queue
    os.sched_setaffinity(0, spec.cpus)
    out.put(asyncio.run(_load(spec.url, spec.bodies, spec.concurrency, spec.duration, spec.warmup)))


def run_load(  # noqa: PLR0913 - each argument is one knob of the run
    url: str,
    bodies: list[bytes] | None,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    cpus: frozenset[int],
) -> LoadResult:
    """Run a load in a separate process on ``cpus``; ``bodies`` None sends GETs."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=_child,
        args=(_Spec(url, bodies, concurrency, duration, warmup, cpus), queue),
        name="bench-loadgen",
    )
    process.start()
    result: LoadResult = queue.get(timeout=duration + warmup + 120)
    process.join()
    return result
