"""Backfill's counting, progress display, summary and interruption handling."""

from __future__ import annotations

import io
import sys
import threading

import pytest

from processor.exit_codes import ExitCode
from processor.tools.backfill_progress import (
    MAX_REASONS,
    OTHER_REASONS,
    CurrentStream,
    Snapshot,
    Tally,
    show_progress,
)
from processor.tools.backfill_runs import RunOutcome, RunResult

FOLDER = "gs://b/logs/ci-foo/1"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """Return the current time."""
        return self.now


class TerminalBuffer(io.StringIO):
    """An in-memory stream that says it is a terminal."""

    def isatty(self) -> bool:
        """Claim to be a terminal."""
        return True


def tally_with(sent: int, skipped: int, failed: int) -> tuple[Tally, FakeClock]:
    """Return a tally with the given outcomes, all found, on a fake clock."""
    clock = FakeClock()
    tally = Tally(clock=clock)
    for index in range(sent + skipped + failed):
        tally.add_found()
        folder = f"gs://b/logs/ci-foo/{index}"
        if index < sent:
            tally.add(folder, RunResult(RunOutcome.SENT))
        elif index < sent + skipped:
            tally.add(folder, RunResult(RunOutcome.SKIPPED, "not finished: pending"))
        else:
            tally.add(folder, RunResult(RunOutcome.FAILED, f"{folder}/podinfo.json is malformed"))
    return tally, clock


def test_snapshot_while_discovering_has_an_open_total_and_no_eta() -> None:
    """While runs are still being found the total shows a + and the ETA is unknown."""
    tally, clock = tally_with(sent=5, skipped=0, failed=0)
    tally.add_found()
    clock.now = 2.0
    line = tally.snapshot().line("traced")
    assert "5/6+ runs" in line
    assert "2.5 runs/s" in line
    assert "ETA unknown (still finding runs)" in line


def test_snapshot_after_discovery_estimates_the_time_left() -> None:
    """Once the total is known, the ETA is the runs left at the average rate."""
    tally, clock = tally_with(sent=10, skipped=0, failed=0)
    for _ in range(20):
        tally.add_found()
    tally.discovery_finished()
    clock.now = 5.0
    snapshot = tally.snapshot()
    assert snapshot.eta == pytest.approx(10.0)
    assert "10/30 runs" in snapshot.line("traced")
    assert "ETA 0:00:10" in snapshot.line("traced")


def test_reasons_are_grouped_without_the_folder() -> None:
    """Reasons naming their folder group together, keeping one folder as an example."""
    tally, _ = tally_with(sent=0, skipped=0, failed=3)
    groups = tally.groups(RunOutcome.FAILED)
    assert [(group.reason, group.count) for group in groups] == [
        ("<run>/podinfo.json is malformed", 3)
    ]
    assert groups[0].example == "gs://b/logs/ci-foo/0"


def test_distinct_reasons_are_capped() -> None:
    """Past MAX_REASONS kinds, further reasons are counted together: memory stays bounded."""
    tally = Tally()
    for index in range(MAX_REASONS + 5):
        tally.add(FOLDER, RunResult(RunOutcome.SKIPPED, f"reason {index}"))
    groups = {group.reason: group.count for group in tally.groups(RunOutcome.SKIPPED)}
    assert len(groups) == MAX_REASONS + 1
    assert groups[OTHER_REASONS] == 5


def test_summary_lists_counts_then_grouped_reasons() -> None:
    """The summary gives the counts, the skip reasons, then failures with an example."""
    tally, _ = tally_with(sent=7, skipped=2, failed=1)
    tally.discovery_finished()
    rendered = tally.summary("traced").render()
    lines = rendered.splitlines()
    assert lines[0].startswith("backfill: 10 runs found in ")
    assert lines[0].endswith(": 7 traced, 2 skipped, 1 failed")
    assert lines[1:5] == [
        "skipped:",
        "  2  not finished: pending",
        "failed:",
        "  1  <run>/podinfo.json is malformed (e.g. gs://b/logs/ci-foo/9)",
    ]
    assert "run the same command again" in lines[-1]


def test_summary_escapes_control_characters() -> None:
    """Reasons can carry text from artifacts: escape sequences are shown, not obeyed."""
    tally = Tally()
    tally.add(FOLDER, RunResult(RunOutcome.FAILED, "bad \x1b[31mred"))
    assert "\x1b" not in tally.summary("traced").render()


@pytest.mark.parametrize(
    ("sent", "skipped", "failed", "code"),
    [(3, 1, 0, ExitCode.OK), (3, 1, 1, ExitCode.NOT_ALL_TRACED), (0, 0, 0, ExitCode.OK)],
)
def test_exit_code_says_whether_anything_failed(
    sent: int, skipped: int, failed: int, code: int
) -> None:
    """0 when every run was sent or skipped, 1 when any failed."""
    tally, _ = tally_with(sent=sent, skipped=skipped, failed=failed)
    assert tally.summary("traced").exit_code == code


def test_stopped_tally_is_interrupted_and_exits_130() -> None:
    """A stop request makes the summary say so, and the exit status 130."""
    tally, _ = tally_with(sent=2, skipped=0, failed=1)
    tally.stop.set()
    summary = tally.summary("traced")
    assert summary.exit_code == ExitCode.INTERRUPTED
    assert "interrupted" in summary.render()


def test_fatal_stop_is_a_failure_not_an_interruption() -> None:
    """set_fatal stops the backfill, and the summary names why; exit 1."""
    tally = Tally()
    tally.set_fatal("topic not found")
    summary = tally.summary("published")
    assert tally.stop.is_set()
    assert (summary.interrupted, summary.exit_code) == (False, ExitCode.NOT_ALL_TRACED)
    assert "stopped early: topic not found" in summary.render()


def test_progress_lines_are_printed_periodically_when_not_a_terminal() -> None:
    """Without a terminal, progress is one line per interval and a last one at the end."""
    tally = Tally()
    stream = io.StringIO()
    ticks = threading.Event()
    with show_progress(tally, stream, interval=0.01):
        tally.add_found()
        tally.add(FOLDER, RunResult(RunOutcome.SENT))
        while stream.getvalue().count("\n") < 3 and not ticks.wait(0.01):
            pass
        tally.discovery_finished()
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 4
    assert all(line.startswith("backfill: ") for line in lines)
    assert lines[-1].startswith("backfill: 1/1 runs (1 traced, 0 skipped, 0 failed)")
    assert "\x1b" not in stream.getvalue()


def test_progress_bar_is_drawn_on_a_terminal() -> None:
    """On a terminal rich draws the bar with the counts; no plain progress lines."""
    tally, _ = tally_with(sent=4, skipped=1, failed=0)
    stream = TerminalBuffer()
    with show_progress(tally, stream, sent_label="published", interval=0.01):
        tally.discovery_finished()
    drawn = stream.getvalue()
    assert "\x1b[" in drawn  # terminal control sequences: a live display
    assert "5/5 runs" in drawn
    assert "4 published" in drawn
    assert "backfill: " not in drawn


def test_current_stream_follows_sys_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """Writes go to whatever sys.stdout is at the time, so redirection catches them."""
    stream = CurrentStream("stdout")
    replacement = io.StringIO()
    original = sys.stdout
    sys.stdout = replacement
    try:
        stream.write("captured\n")
    finally:
        sys.stdout = original
    stream.write("direct\n")
    assert replacement.getvalue() == "captured\n"
    assert capsys.readouterr().out == "direct\n"


def test_snapshot_rate_is_zero_before_time_passes() -> None:
    """No elapsed time: no rate, no ETA, no division by zero."""
    snapshot = Snapshot(
        found=1, sent=0, skipped=0, failed=0, discovering=False, stopping=False, elapsed=0.0
    )
    assert snapshot.rate == 0.0
    assert snapshot.eta is None
