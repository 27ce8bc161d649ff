"""How hard the fault-injection suite pushes, and where it writes the figures it measured.

The suite (``tests/faults/test_faults_*.py``, marker ``faults``) runs every case in a short form by
default, seconds each, so it fits in CI. ``PROWTRACE_FAULTS_FULL=1`` selects the full-length
variants that ``docs/RELIABILITY.md`` reports (a 60 s outage, 10,000 malformed inputs, three
SIGKILLs...). ``PROWTRACE_FAULTS_REPORT=FILE`` makes each case append one JSON line of its figures
to ``FILE``::

    PROWTRACE_FAULTS_FULL=1 PROWTRACE_FAULTS_REPORT=faults.jsonl uv run pytest -m faults
"""

from __future__ import annotations

import json
import os
import platform
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

FULL_VARIABLE = "PROWTRACE_FAULTS_FULL"
REPORT_VARIABLE = "PROWTRACE_FAULTS_REPORT"


@dataclass(frozen=True)
class FaultPlan:
    """The size of every fault the suite injects; see :data:`SHORT` and :data:`FULL`."""

    name: str
    jobs: int
    """Job lifecycles in the valid stream each case runs (each gives 2-4 messages)."""
    outage_seconds: float
    """How long the OTLP backend answers UNAVAILABLE, mid-stream."""
    export_timeout_seconds: float
    """The OTLP exporter's timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``): it retries UNAVAILABLE for
    this long, then the message is nacked. Shorter than the outage, so the case crosses both."""
    slow_export_seconds: float
    """How long the slow backend takes to answer each export."""
    slow_jobs: int
    """Job lifecycles sent through the slow backend."""
    slow_max_outstanding: int
    """``PROWTRACE_MAX_OUTSTANDING_MESSAGES`` in the slow-backend case (far below the 32 pull
    threads, so flow control, not the thread pool, is what bounds the work in flight)."""
    sigkills: int
    """How many times the consumer is SIGKILLed mid-stream (and restarted)."""
    copies: int
    """How many times every message is published in the duplicate-delivery case."""
    malformed_inputs: int
    """Hypothesis-generated malformed inputs mixed into the valid stream, per transport."""
    slow_clients: int
    """Connections a slow-loris attacker holds open against the push endpoint at once."""
    abusive_requests: int
    """Refused requests (bad tokens, oversized bodies...) sent during the push-abuse case."""
    late_artifact_seconds: float
    """How long after its message a job's prowjob.json and podinfo.json are written."""

    @property
    def grace_seconds(self) -> float:
        """The grace period the late-artifact case runs with: twice the lateness, at least 6 s."""
        return max(6.0, 2 * self.late_artifact_seconds)


SHORT = FaultPlan(
    name="short",
    jobs=40,
    outage_seconds=5.0,
    export_timeout_seconds=2.0,
    slow_export_seconds=0.5,
    slow_jobs=10,
    slow_max_outstanding=4,
    sigkills=1,
    copies=3,
    malformed_inputs=300,
    slow_clients=50,
    abusive_requests=200,
    late_artifact_seconds=3.0,
)
"""The CI form: every case, seconds each."""

FULL = FaultPlan(
    name="full",
    jobs=200,
    outage_seconds=60.0,
    export_timeout_seconds=10.0,
    slow_export_seconds=3.0,
    slow_jobs=60,
    slow_max_outstanding=8,
    sigkills=3,
    copies=3,
    malformed_inputs=10_000,
    slow_clients=500,
    abusive_requests=5_000,
    late_artifact_seconds=30.0,
)
"""The published form (``PROWTRACE_FAULTS_FULL=1``): the figures in docs/RELIABILITY.md."""


def fault_plan(env: Mapping[str, str] = os.environ) -> FaultPlan:
    """Return :data:`FULL` when ``PROWTRACE_FAULTS_FULL`` is set to a true value, else SHORT."""
    value = env.get(FULL_VARIABLE, "").strip().lower()
    return FULL if value in {"1", "true", "yes", "on"} else SHORT


_REPORT_LOCK = threading.Lock()


def report_figures(
    case: str,
    figures: Mapping[str, object],
    *,
    plan: FaultPlan,
    env: Mapping[str, str] = os.environ,
) -> dict[str, object]:
    """Return one case's figures as a record; append it to ``$PROWTRACE_FAULTS_REPORT`` if set.

    The record carries the plan's name, the time and the machine, so a report file says what
    produced it.
    """
    record: dict[str, object] = {
        "case": case,
        "plan": plan.name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "figures": dict(figures),
    }
    path = env.get(REPORT_VARIABLE, "").strip()
    if path:
        line = json.dumps(record, sort_keys=True, default=str)
        with _REPORT_LOCK, Path(path).open("a", encoding="utf-8") as out:
            out.write(line + "\n")
    return record


def machine() -> str:
    """Describe the machine in one line: CPU model, core count, memory, Python."""
    model = platform.processor() or platform.machine()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) // (1024 * 1024)} GiB"
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs{memory}, Python {platform.python_version()}"


def plan_summary(plan: FaultPlan) -> dict[str, object]:
    """Return the plan as a plain dict (for reports)."""
    return asdict(plan)
