"""Push latency: ``prowtrace serve`` (a subprocess on the measured core) under closed-loop load.

For each concurrency the load generator (its own process, on the helper core) first asks
``GET /healthz`` (the same server doing no work: the reference), then POSTs push bodies of the
corpus in publish order. The serve process's CPU time over the push run gives CPU per request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import proc, services
from bench.loadgen import LoadResult, run_load
from bench.receiver import CountingReceiver
from bench.stats import latency_summary
from bench.workspace import Workspace, read_bodies

READY_TIMEOUT = 60.0


def _summary(result: LoadResult) -> dict[str, Any]:
    summary: dict[str, Any] = latency_summary(result.latencies_ms, result.seconds)
    summary["statuses"] = {str(k): v for k, v in sorted(result.statuses.items())}
    summary["errors"] = result.errors
    return summary


def measure(  # noqa: PLR0913 - each argument is one knob of the run
    workspace: Workspace,
    cores: tuple[frozenset[int], frozenset[int]],
    *,
    levels: tuple[int, ...],
    duration: float,
    reference_duration: float,
    warmup: float,
    logs: Path,
) -> dict[str, Any]:
    """Run every concurrency level with group commit on and off."""
    measured_cpus, helper_cpus = cores
    bodies = read_bodies(workspace.small.path)
    report: dict[str, Any] = {}
    with CountingReceiver(helper_cpus) as receiver:
        for group_commit in (True, False):
            mode = "group_commit_on" if group_commit else "group_commit_off"
            port = proc.free_port()
            command = services.prowtrace_command(
                measured_cpus, "serve", "--host", "127.0.0.1", "--port", str(port)
            )
            env = services.service_environ(
                workspace.mirror, receiver.endpoint, group_commit=group_commit
            )
            env["PROWTRACE_PUSH_AUTH"] = "off"
            server = services.start(command, env, logs / f"serve-{mode}.log")
            try:
                base = f"http://127.0.0.1:{port}"
                proc.wait_http_ok(f"{base}/readyz", READY_TIMEOUT, server)
                levels_report: dict[str, Any] = {}
                for concurrency in levels:
                    reference = run_load(
                        f"{base}/healthz",
                        None,
                        concurrency=concurrency,
                        duration=reference_duration,
                        warmup=warmup,
                        cpus=helper_cpus,
                    )
                    requests_before, _ = receiver.counts()
                    cpu_before = proc.cpu_seconds(server.pid)
                    pushed = run_load(
                        f"{base}/",
                        bodies,
                        concurrency=concurrency,
                        duration=duration,
                        warmup=warmup,
                        cpus=helper_cpus,
                    )
                    cpu_used = proc.cpu_seconds(server.pid) - cpu_before
                    requests_after, _ = receiver.counts()
                    push = _summary(pushed)
                    ref = _summary(reference)
                    sent = pushed.completed or 1
                    levels_report[str(concurrency)] = {
                        "push": push,
                        "healthz": ref,
                        "p99_ratio_to_healthz": push["p99_ms"] / ref["p99_ms"],
                        "server_cpu_ms_per_request": 1000 * cpu_used / sent,
                        "exports_per_request": (requests_after - requests_before) / sent,
                    }
                report[mode] = levels_report
            finally:
                status = proc.stop(server)
            report[f"{mode}_exit_status"] = status
    return report
