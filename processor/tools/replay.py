"""``prowtrace replay``: run recorded messages through the same pipeline the services use.

Input is JSON lines, each either a Pub/Sub push envelope (``{"message": {"data": ...}}``) or a
bare crier message. Bare messages carry no publish time, so the time of reading stands in for it
(it only matters when no artifact gives a better time). Replay processes history: by default it
does not wait for late artifacts (grace 0) but emits what exists.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog

from processor.core.message import Delivery
from processor.pipeline import Outcome, Result
from processor.transports.disposition import crash_result
from processor.transports.envelope import InvalidEnvelope, delivery_from_envelope

log = structlog.get_logger("prowtrace.replay")

MAX_LINE_CHARS = 4 * 1024 * 1024


@dataclass(slots=True)
class ReplaySummary:
    """What became of the replayed lines."""

    outcomes: Counter[Outcome] = field(default_factory=Counter)
    traces: set[str] = field(default_factory=set)
    """Trace IDs whose root span was exported: the jobs traced to completion."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every line was exported or deliberately skipped."""
        return all(outcome in {Outcome.EXPORTED, Outcome.SKIPPED} for outcome in self.outcomes)

    def add(self, line_number: int, result: Result) -> None:
        """Count one line's result."""
        self.outcomes[result.outcome] += 1
        if result.outcome is Outcome.EXPORTED and result.has_root:
            self.traces.add(result.trace_id)
        if result.outcome not in {Outcome.EXPORTED, Outcome.SKIPPED}:
            job = f" ({result.job} {result.state})" if result.job else ""
            self.problems.append(f"line {line_number}{job}: {result.outcome}: {result.reason}")

    def render(self) -> str:
        """Return the human summary printed at the end."""
        counts = ", ".join(
            f"{self.outcomes[outcome]} {label}"
            for outcome, label in (
                (Outcome.EXPORTED, "traced"),
                (Outcome.SKIPPED, "skipped"),
                (Outcome.INVALID, "invalid"),
            )
        )
        failed = self.outcomes[Outcome.FAILED] + self.outcomes[Outcome.RETRY]
        total = sum(self.outcomes.values())
        headline = f"replayed {total} messages: {counts}, {failed} failed; "
        headline += f"{len(self.traces)} jobs traced to completion"
        lines = [headline]
        if self.problems:
            shown = self.problems[:20]
            lines.extend(f"  {problem}" for problem in shown)
            if len(self.problems) > len(shown):
                lines.append(f"  ... and {len(self.problems) - len(shown)} more")
        return "\n".join(lines)


def parse_line(line: str, received: datetime) -> Delivery | Result:
    """Turn one input line into a delivery, or an INVALID result saying why it is not one."""
    if len(line) > MAX_LINE_CHARS:
        return Result(Outcome.INVALID, f"line is {len(line)} characters; limit {MAX_LINE_CHARS}")
    data = line.strip().encode("utf-8", "surrogateescape")
    try:
        decoded = json.loads(data)
    except (ValueError, RecursionError):
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("message"), dict):
        try:
            return delivery_from_envelope(decoded)
        except InvalidEnvelope as error:
            return Result(Outcome.INVALID, str(error))
    # Anything else is taken as a bare crier message; the pipeline says if it is not one.
    return Delivery(data=data, publish_time=received)


def replay(
    lines: Iterable[str],
    handle: Callable[[Delivery], Result],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReplaySummary:
    """Process every non-blank line through ``handle``; invalid lines never stop the others."""
    summary = ReplaySummary()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = parse_line(line, clock())
        try:
            result = parsed if isinstance(parsed, Result) else handle(parsed)
        except Exception as error:  # a bug on one line must not stop the others
            log.exception("message_crashed", line=number)
            result = crash_result(error)
        summary.add(number, result)
        _log(number, result)
    return summary


def _log(line_number: int, result: Result) -> None:
    fields = {
        "line": line_number,
        "outcome": str(result.outcome),
        "job": result.job,
        "state": result.state,
        "build_id": result.build_id,
        "trace_id": result.trace_id,
        "spans": result.span_count,
    }
    if result.outcome in {Outcome.EXPORTED, Outcome.SKIPPED}:
        log.debug("message", reason=result.reason, **fields)
    else:
        log.warning("message_not_traced", reason=result.reason, **fields)


def open_input(path: str, stdin: TextIO) -> TextIO:
    """Open ``path`` for reading (``-`` is standard input)."""
    if path == "-":
        return stdin
    return Path(path).open(encoding="utf-8", errors="surrogateescape")
