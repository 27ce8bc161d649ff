"""Counting a backfill's runs, showing its progress, and summing it up.

The workers only ever touch a :class:`Tally`; the progress display reads snapshots of it on its
own schedule (rich's refresh thread, or a timer printing one line every few seconds when standard
error is not a terminal), and the summary is built from it at the end.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.progress import (
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
)
from rich.progress_bar import ProgressBar
from rich.text import Text

from processor.exit_codes import ExitCode
from processor.tools.backfill_runs import RunOutcome, RunResult
from processor.tools.waterfall import visible_text

DEFAULT_LINE_INTERVAL_SECONDS = 10.0
"""128 + SIGINT, what a shell reports for a command stopped by Ctrl-C."""
_RUN_PLACEHOLDER = "<run>"
_SHOWN_GROUPS = 10
MAX_REASONS = 1000
"""Distinct reasons kept per outcome; further ones are counted together, so memory stays flat."""
OTHER_REASONS = "(other reasons, past the first 1000 kinds)"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The counts at one moment."""

    found: int
    sent: int
    skipped: int
    failed: int
    discovering: bool
    stopping: bool
    elapsed: float

    @property
    def done(self) -> int:
        """Runs with an outcome."""
        return self.sent + self.skipped + self.failed

    @property
    def rate(self) -> float:
        """Runs finished per second since the start."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate; ``None`` while the total is unknown or no rate yet."""
        if self.discovering or self.rate <= 0:
            return None
        return (self.found - self.done) / self.rate

    def line(self, sent_label: str) -> str:
        """One line of progress, for logs and terminals without a progress bar."""
        total = f"{self.found}+" if self.discovering else str(self.found)
        eta = self.eta
        if eta is not None:
            remaining = f"ETA {_clock(eta)}"
        else:
            remaining = "ETA unknown (still finding runs)" if self.discovering else "ETA unknown"
        state = ", stopping" if self.stopping else ""
        counts = f"{self.sent} {sent_label}, {self.skipped} skipped, {self.failed} failed"
        return (
            f"backfill: {self.done}/{total} runs ({counts}), {self.rate:.1f} runs/s, "
            f"{_clock(self.elapsed)} elapsed, {remaining}{state}"
        )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


@dataclass(frozen=True, slots=True)
class Group:
    """Runs that share an outcome's reason."""

    reason: str
    count: int
    example: str
    """One folder it happened to."""


class Tally:
    """Thread-safe counts of runs found and their outcomes, with reasons grouped."""

    def __init__(
        self, stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Start counting now; ``stop`` is the event that interrupts the backfill."""
        self.stop = stop if stop is not None else threading.Event()
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._found = 0
        self._sent = 0
        self._reasons: dict[RunOutcome, Counter[str]] = {
            RunOutcome.SKIPPED: Counter(),
            RunOutcome.FAILED: Counter(),
        }
        self._examples: dict[tuple[RunOutcome, str], str] = {}
        self._discovering = True
        self._listing_errors: list[str] = []
        self._fatal = ""

    def add_found(self) -> None:
        """Count a folder handed to a worker."""
        with self._lock:
            self._found += 1

    def add(self, folder: str, result: RunResult) -> None:
        """Count one folder's outcome; reasons are grouped with the folder's URL taken out."""
        with self._lock:
            if result.outcome is RunOutcome.SENT:
                self._sent += 1
                return
            reason = result.reason.replace(folder, _RUN_PLACEHOLDER) or "no reason given"
            reasons = self._reasons[result.outcome]
            if reason not in reasons and len(reasons) >= MAX_REASONS:
                reason = OTHER_REASONS
            reasons[reason] += 1
            self._examples.setdefault((result.outcome, reason), folder)

    def add_listing_error(self, message: str) -> None:
        """Record a prefix that could not be listed (the runs under it were never found)."""
        with self._lock:
            self._listing_errors.append(message)

    def set_fatal(self, reason: str) -> None:
        """Record why the backfill stopped early, and stop it."""
        with self._lock:
            self._fatal = self._fatal or reason
        self.stop.set()

    def discovery_finished(self) -> None:
        """Note that no more folders will be found: the total is now known."""
        with self._lock:
            self._discovering = False

    def snapshot(self) -> Snapshot:
        """Return the counts now."""
        with self._lock:
            return Snapshot(
                found=self._found,
                sent=self._sent,
                skipped=self._reasons[RunOutcome.SKIPPED].total(),
                failed=self._reasons[RunOutcome.FAILED].total(),
                discovering=self._discovering,
                stopping=self.stop.is_set(),
                elapsed=self._clock() - self._started,
            )

    def groups(self, outcome: RunOutcome) -> list[Group]:
        """Return the reasons for ``outcome``, most frequent first."""
        with self._lock:
            return [
                Group(reason, count, self._examples[outcome, reason])
                for reason, count in self._reasons[outcome].most_common()
            ]

    def summary(self, sent_label: str) -> Summary:
        """Return the final summary (call once the backfill has returned)."""
        with self._lock:
            listing_errors = tuple(self._listing_errors)
            fatal = self._fatal
        return Summary(
            counts=self.snapshot(),
            skipped=tuple(self.groups(RunOutcome.SKIPPED)),
            failed=tuple(self.groups(RunOutcome.FAILED)),
            listing_errors=listing_errors,
            fatal=fatal,
            interrupted=self.stop.is_set() and not fatal,
            sent_label=sent_label,
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """What a backfill did, as printed at its end."""

    counts: Snapshot
    skipped: tuple[Group, ...]
    failed: tuple[Group, ...]
    listing_errors: tuple[str, ...] = ()
    fatal: str = ""
    interrupted: bool = False
    sent_label: str = "traced"

    @property
    def exit_code(self) -> int:
        """130 if interrupted, else 1 if anything failed, else 0."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.counts.failed or self.listing_errors or self.fatal:
            return ExitCode.NOT_ALL_TRACED
        return ExitCode.OK

    def render(self) -> str:
        """Return the human summary: counts, then skip and failure reasons, grouped."""
        counts = self.counts
        headline = (
            f"backfill: {counts.found} runs found in {counts.elapsed:.1f} s: {counts.sent} "
            f"{self.sent_label}, {counts.skipped} skipped, {counts.failed} failed"
        )
        lines = [headline]
        for title, groups in (("skipped", self.skipped), ("failed", self.failed)):
            if groups:
                lines.append(f"{title}:")
                lines.extend(_render_groups(groups, with_example=title == "failed"))
        lines.extend(f"could not list {visible_text(error)}" for error in self.listing_errors)
        if self.fatal:
            lines.append(f"stopped early: {visible_text(self.fatal)}")
        if self.interrupted:
            lines.append(
                "interrupted: runs not yet found were not looked at; run the same command again "
                "to finish (runs already traced come out the same, under the same IDs)"
            )
        elif self.failed:
            lines.append("run the same command again to retry the failed runs")
        return "\n".join(lines)


def _render_groups(groups: Sequence[Group], *, with_example: bool) -> list[str]:
    width = len(str(groups[0].count))
    lines = []
    for group in groups[:_SHOWN_GROUPS]:
        line = f"  {group.count:>{width}}  {visible_text(group.reason)}"
        if with_example:
            line += f" (e.g. {visible_text(group.example)})"
        lines.append(line)
    if len(groups) > _SHOWN_GROUPS:
        rest = sum(group.count for group in groups[_SHOWN_GROUPS:])
        lines.append(f"  ... {rest} more in {len(groups) - _SHOWN_GROUPS} other groups")
    return lines


class _TallyColumn(ProgressColumn):
    """A progress column drawn from the tally, not from the task (workers never touch rich)."""

    def __init__(self, tally: Tally, draw: Callable[[Snapshot], Text | ProgressBar]) -> None:
        super().__init__()
        self._tally = tally
        self._draw = draw

    def render(self, task: Task) -> Text | ProgressBar:
        """Draw the current counts."""
        del task
        return self._draw(self._tally.snapshot())


def _bar(counts: Snapshot) -> ProgressBar:
    # While runs are still being found the total is unknown: a pulsing bar says so honestly.
    total = None if counts.discovering else max(counts.found, 1)
    return ProgressBar(total=total, completed=counts.done, width=30, finished_style="green")


def _counts_text(counts: Snapshot, sent_label: str) -> Text:
    total = f"{counts.found}+" if counts.discovering else str(counts.found)
    text = Text(f"{counts.done}/{total} runs  ")
    text.append(f"{counts.sent} {sent_label}", style="green")
    text.append("  ")
    text.append(f"{counts.skipped} skipped", style="yellow")
    text.append("  ")
    text.append(f"{counts.failed} failed", style="red" if counts.failed else "")
    eta = counts.eta
    remaining = f"ETA {_clock(eta)}" if eta is not None else "ETA ?"
    if counts.discovering:
        remaining += " (still finding runs)"
    text.append(f"  |  {counts.rate:.1f} runs/s  {_clock(counts.elapsed)} elapsed  {remaining}")
    if counts.stopping:
        text.append("  stopping: finishing the runs in flight", style="bold yellow")
    return text


@contextmanager
def show_progress(
    tally: Tally,
    stream: TextIO,
    *,
    sent_label: str = "traced",
    interval: float = DEFAULT_LINE_INTERVAL_SECONDS,
) -> Iterator[None]:
    """Show progress on ``stream`` while the block runs: a bar on a terminal, else lines.

    Not a terminal (CI logs, a file): one line every ``interval`` seconds and one at the end.
    """
    if stream.isatty():
        with _progress_bar(tally, stream, sent_label):
            yield
        return
    with _progress_lines(tally, stream, sent_label, interval):
        yield


@contextmanager
def _progress_bar(tally: Tally, stream: TextIO, sent_label: str) -> Iterator[None]:
    console = Console(file=stream)
    progress = Progress(
        SpinnerColumn(finished_text="done"),
        _TallyColumn(tally, _bar),
        _TallyColumn(tally, lambda counts: _counts_text(counts, sent_label)),
        console=console,
    )
    task = progress.add_task("backfill", total=None)
    with progress:
        try:
            yield
        finally:
            progress.update(task, total=1, completed=1)


@contextmanager
def _progress_lines(
    tally: Tally, stream: TextIO, sent_label: str, interval: float
) -> Iterator[None]:
    finished = threading.Event()

    def report() -> None:
        while not finished.wait(interval):
            write_line(stream, tally.snapshot().line(sent_label))

    reporter = threading.Thread(target=report, name="backfill-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        finished.set()
        reporter.join()
        write_line(stream, tally.snapshot().line(sent_label))


def write_line(stream: TextIO, line: str) -> None:
    """Write one line and flush it, so it shows at once in a log or a pipe."""
    stream.write(line + "\n")
    stream.flush()


class CurrentStream:
    """Writes to whatever ``sys.stdout``/``sys.stderr`` is at the moment of writing.

    The progress bar redirects those while it is shown so that other output lands above it;
    log handlers and the dry run's output hold this instead of the stream object of startup.
    """

    def __init__(self, name: str) -> None:
        """Follow ``sys.<name>`` (``stdout`` or ``stderr``)."""
        if name not in {"stdout", "stderr"}:
            raise ValueError(f"not a standard stream: {name!r}")
        self._name = name

    def _stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._name)
        return stream

    def write(self, text: str) -> int:
        """Write to the current stream."""
        return self._stream().write(text)

    def flush(self) -> None:
        """Flush the current stream."""
        self._stream().flush()

    def isatty(self) -> bool:
        """Whether the current stream is a terminal."""
        return self._stream().isatty()
