"""Push latency: ``prowtrace serve`` (a subprocess on the measured core) under load on loopback.

For each concurrency the load generator (its own process, on the helper core) first asks
``GET /healthz`` (the same server doing no work: the reference), then POSTs the corpus's push
bodies in publish order as a closed loop. Then an open loop: Poisson arrivals at a fraction of
the closed-loop capacity measured with group commit, at most the highest concurrency in flight,
which is how a Cloud Run instance runs when the autoscaler keeps it at its CPU target. The serve
process's CPU time over a run gives CPU per request.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import proc, queueing, services
from bench.loadgen import LoadResult, LoadSpec, run_load
from bench.receiver import CountingReceiver
from bench.stats import latency_summary
from bench.workspace import Workspace, read_bodies

READY_TIMEOUT = 60.0
OPEN_LOOP_LOAD = 0.6
"""Offered load of the open loop, as a fraction of capacity: Cloud Run's autoscaler aims at 60 %
CPU utilisation, so a busy instance runs about this loaded before another one starts."""


@dataclass(frozen=True)
class PushPlan:
    """What to run."""

    levels: tuple[int, ...]
    duration: float
    reference_duration: float
    warmup: float


def _summary(result: LoadResult) -> dict[str, Any]:
    summary: dict[str, Any] = latency_summary(result.latencies_ms, result.seconds)
    summary["statuses"] = {str(k): v for k, v in sorted(result.statuses.items())}
    summary["errors"] = result.errors
    return summary


@contextmanager
def _serve(
    workspace: Workspace, receiver: CountingReceiver, cpus: frozenset[int], logs: Path, *, on: bool
) -> Iterator[tuple[str, subprocess.Popen[bytes], dict[str, Any]]]:
    """Run ``prowtrace serve`` until the block ends; yield its URL, process and exit record."""
    port = proc.free_port()
    command = services.prowtrace_command(cpus, "serve", "--host", "127.0.0.1", "--port", str(port))
    env = services.service_environ(workspace.mirror, receiver.endpoint, group_commit=on)
    env["PROWTRACE_PUSH_AUTH"] = "off"
    server = services.start(command, env, logs / f"serve-group-commit-{'on' if on else 'off'}.log")
    exit_record: dict[str, Any] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        proc.wait_http_ok(f"{base}/readyz", READY_TIMEOUT, server)
        yield base, server, exit_record
    finally:
        exit_record["status"] = proc.stop(server)


def _pushed(
    spec: LoadSpec,
    server: subprocess.Popen[bytes],
    receiver: CountingReceiver,
    cpus: frozenset[int],
) -> dict[str, Any]:
    """Run a push load and describe it, with the server's CPU and exports per request."""
    requests_before, _ = receiver.counts()
    cpu_before = proc.cpu_seconds(server.pid)
    result = run_load(spec, cpus)
    cpu_used = proc.cpu_seconds(server.pid) - cpu_before
    exports = receiver.counts()[0] - requests_before
    summary = _summary(result)
    answered = result.completed or 1
    summary["server_cpu_ms_per_request"] = 1000 * cpu_used / answered
    summary["exports_per_request"] = exports / answered
    return summary


def measure(
    workspace: Workspace,
    cores: tuple[frozenset[int], frozenset[int]],
    plan: PushPlan,
    logs: Path,
) -> dict[str, Any]:
    """Run every concurrency level, then the open loop, with group commit on and off."""
    measured_cpus, helper_cpus = cores
    bodies = read_bodies(workspace.small.path)
    report: dict[str, Any] = {}
    open_rate = 0.0
    with CountingReceiver(helper_cpus) as receiver:
        for on in (True, False):
            mode = "group_commit_on" if on else "group_commit_off"
            rows: dict[str, Any] = {}
            with _serve(workspace, receiver, measured_cpus, logs, on=on) as (base, server, ended):
                for concurrency in plan.levels:
                    reference = run_load(
                        LoadSpec(
                            f"{base}/healthz",
                            None,
                            concurrency,
                            plan.reference_duration,
                            plan.warmup,
                        ),
                        helper_cpus,
                    )
                    push = _pushed(
                        LoadSpec(f"{base}/", bodies, concurrency, plan.duration, plan.warmup),
                        server,
                        receiver,
                        helper_cpus,
                    )
                    healthz = _summary(reference)
                    rows[str(concurrency)] = {
                        "push": push,
                        "healthz": healthz,
                        "p99_ratio_to_healthz": push["p99_ms"] / healthz["p99_ms"],
                    }
                top = max(plan.levels)
                if on:
                    open_rate = OPEN_LOOP_LOAD * rows[str(top)]["push"]["requests_per_s"]
                open_spec = LoadSpec(
                    f"{base}/", bodies, top, plan.duration, plan.warmup, rate=open_rate
                )
                reference = run_load(
                    LoadSpec(
                        f"{base}/healthz",
                        None,
                        top,
                        plan.reference_duration,
                        plan.warmup,
                        rate=open_rate,
                    ),
                    helper_cpus,
                )
                push = _pushed(open_spec, server, receiver, helper_cpus)
                healthz = _summary(reference)
                rows["open_loop"] = {
                    "push": push,
                    "healthz": healthz,
                    "p99_ratio_to_healthz": push["p99_ms"] / healthz["p99_ms"],
                    "offered_requests_per_s": open_rate,
                    "max_in_flight": top,
                    "load_fraction_of_group_commit_capacity": OPEN_LOOP_LOAD,
                }
            report[mode] = rows
            report[f"{mode}_exit_status"] = ended["status"]
    # The open loop's tail against what queueing alone costs at its load (bench.queueing).
    service = queueing.service_times(workspace.small.path, workspace.mirror, cores)
    ideal = queueing.ideal_servers(service, open_rate)
    healthz_p99 = report["group_commit_on"]["open_loop"]["healthz"]["p99_ms"]
    ideal["fifo_p99_ratio_to_healthz"] = ideal["fifo_p99_ms"] / healthz_p99
    ideal["ps_p99_ratio_to_healthz"] = ideal["ps_p99_ms"] / healthz_p99
    report["ideal_queue"] = ideal
    return report
