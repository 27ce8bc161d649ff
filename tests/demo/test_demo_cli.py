"""``prowtrace demo`` as the README runs it: a real subprocess, its output, exit status, cleanup."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from demo_helpers import file_spans, is_alive, java_children, processes_mentioning

from processor.cli import build_parser
from processor.tools.demo.run import DemoOptions, demo_main

PROWTRACE = Path(sys.executable).with_name("prowtrace")
DEFAULT_FILE = "prowtrace-demo-traces.jsonl"
_TIMEOUT_SECONDS = 60


def _environment(tmp_path: Path) -> dict[str, str]:
    """Return the user's environment minus OTEL_*, with TMPDIR inside ``tmp_path``."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(TMPDIR=str(temp), COLUMNS="120", PYTHONUNBUFFERED="1")
    return env


def _emulator_port(output: str) -> str:
    found = re.search(r"Pub/Sub emulator on 127\.0\.0\.1:(\d+)", output)
    assert found, f"the output does not say where the emulator listened:\n{output}"
    return found.group(1)


@pytest.fixture(scope="module")
def readme_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run ``prowtrace demo`` with no flags in an empty directory, once for the module."""
    workdir = tmp_path_factory.mktemp("readme")
    started = time.monotonic()
    completed = subprocess.run(  # noqa: S603 - our own entry point, fixed arguments
        [str(PROWTRACE), "demo"],
        cwd=workdir,
        env=_environment(workdir),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=False,
    )
    completed.args = [*completed.args, f"took {time.monotonic() - started:.1f}s"]
    return completed, workdir


@pytest.mark.emulator
def test_the_readme_command_exits_zero_with_the_waterfalls(
    readme_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """``prowtrace demo`` exits 0, on the emulator, drawing 12 jobs and the closing summary."""
    completed, _ = readme_run

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Started Google's Pub/Sub emulator" in completed.stdout
    assert completed.stdout.count(" of 12 ") == 12
    assert "12 jobs traced" in completed.stdout
    assert completed.stderr == ""


@pytest.mark.emulator
def test_the_readme_command_writes_the_default_file_here(
    readme_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """The traces land in prowtrace-demo-traces.jsonl in the current directory: 12 traces."""
    _, workdir = readme_run
    spans = file_spans(workdir / DEFAULT_FILE)

    assert len({trace_id for trace_id, _ in spans}) == 12


@pytest.mark.emulator
def test_the_readme_command_leaves_no_process_or_temporary_file(
    readme_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    """Once it exited, no process serves its emulator's port and its TMPDIR is empty."""
    completed, workdir = readme_run
    port = _emulator_port(completed.stdout)

    assert processes_mentioning(f"--port={port}") == []
    assert list((workdir / "tmp").iterdir()) == []


def _wait_for_java_child(parent: int) -> int:
    deadline = time.monotonic() + _TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        children = java_children(parent)
        if children:
            return children[0]
        time.sleep(0.02)
    raise AssertionError(f"process {parent} started no java process")


def _default_sigint() -> None:
    """Give the child SIGINT's default disposition, whatever this runner inherited.

    A non-interactive shell starts its background jobs with SIGINT ignored (POSIX, Shell Command
    Language 2.11), an ignored signal stays ignored across fork and exec, and Python then installs
    no KeyboardInterrupt handler: started as ``scripts/test &``, the demo would never see the
    Ctrl-C this test sends. A terminal's Ctrl-C reaches a foreground demo with the default.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.emulator
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_kills_the_emulator_and_removes_everything(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM while the emulator runs: exit 128+N, java gone, no files left."""
    process = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
        [str(PROWTRACE), "demo"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,  # noqa: PLW1509 - one signal() call between fork and exec
    )
    java = _wait_for_java_child(process.pid)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=_TIMEOUT_SECONDS)

    assert process.returncode == 128 + signum, output
    assert "Interrupted: stopped everything the demo started" in output
    assert not is_alive(java)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / DEFAULT_FILE).exists()


def test_a_reader_that_goes_away_still_leaves_nothing_behind(tmp_path: Path) -> None:
    """``prowtrace demo | head``: the demo stops quietly and still cleans up."""
    with subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
        [str(PROWTRACE), "demo"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        process.stdout.readline()
        process.stdout.close()  # as `head -1` does once it has its line
        _, errors = process.communicate(timeout=_TIMEOUT_SECONDS)

    assert process.returncode != 0
    assert "Traceback" not in errors
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / DEFAULT_FILE).exists()


def test_the_parser_takes_the_demo_flags() -> None:
    """``demo`` accepts --jobs, --seed, --output and --keep."""
    args = build_parser().parse_args(
        ["demo", "--jobs", "3", "--seed", "9", "--output", "t.jsonl", "--keep"]
    )

    assert (args.jobs, args.seed, args.output, args.keep) == (3, 9, "t.jsonl", True)


def test_the_parser_defaults_match_the_readme() -> None:
    """Without flags: 12 jobs, a fresh seed, the default file, nothing kept."""
    args = build_parser().parse_args(["demo"])

    assert (args.jobs, args.seed, args.output, args.keep) == (12, None, DEFAULT_FILE, False)


@pytest.mark.parametrize("jobs", [0, -1, 1001])
def test_a_job_count_out_of_range_is_a_usage_error(jobs: int, tmp_path: Path) -> None:
    """--jobs outside 1..1000 exits 2 before starting anything."""
    assert demo_main(DemoOptions(jobs=jobs, output=tmp_path / "t.jsonl")) == 2


def test_an_output_in_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    """--output in a directory that does not exist exits 2 before starting anything."""
    assert demo_main(DemoOptions(output=tmp_path / "missing" / "t.jsonl")) == 2


def test_the_commands_defaults_are_the_demos_own() -> None:
    """The flag defaults (kept in the command module so --help stays fast) match the demo's."""
    from processor.commands import demo as command  # noqa: PLC0415 - the module under test
    from processor.tools.demo import DEFAULT_OUTPUT, DemoOptions  # noqa: PLC0415

    assert command.DEFAULT_OUTPUT == DEFAULT_OUTPUT
    assert DemoOptions().jobs == command.DEFAULT_JOBS
