"""The repository stands alone: nothing it runs reads a path outside its own tree.

A new user, a packager or a fork's CI has the clone and nothing beside it. ``.ci/run`` proves the
whole suite on a bare copy of the tree; this test names the offending line before that run would.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".tf", ".yml", ".yaml", ""}
"""Source, script and configuration files; tests/data holds third-party data that nothing runs."""
EXEMPT = "standalone: not a path"
"""A line carrying this marker holds a relative path that is data, not a file the code opens."""

_REFERENCE = "shared" + "/reference"  # spelt in two halves so this guard does not name it itself
OUTSIDE_NAMES = re.compile(rf"{_REFERENCE}|\.library/|/work/")
"""Folders that exist beside the repository on development machines and nowhere else."""
RELATIVE_CLIMB = re.compile(r"""(?<=["'\s(=])((?:\.\./)*\.\.)(?=["'/\s)]|$)""")
"""A relative path made of ``..`` segments at the start of a literal or word."""
PARENTS_INDEX = re.compile(r"\.parents\[\s*(\d+)\s*\]")


def tracked_files() -> list[Path]:
    """Return the files git tracks (or would track), third-party data excluded."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607 - git from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [
        ROOT / name
        for name in listed
        if not name.startswith("tests/data/")
        and Path(name).suffix in CHECKED_SUFFIXES
        and (ROOT / name).is_file()
    ]


def climbs_out(path: Path, line: str) -> bool:
    """Say whether ``line`` of ``path`` names a location outside the repository."""
    if EXEMPT in line:
        return False
    if OUTSIDE_NAMES.search(line):
        return True
    for match in RELATIVE_CLIMB.finditer(line):
        if not (path.parent / match.group(1)).resolve().is_relative_to(ROOT):
            return True
    for match in PARENTS_INDEX.finditer(line):
        # Path(__file__).parents[N] is N + 1 levels up; the root is len(parts) levels up.
        if int(match.group(1)) >= len(path.relative_to(ROOT).parts):
            return True
    return False


def test_no_file_reads_outside_the_repository() -> None:
    """No script, test, benchmark or config names a path that climbs out of the repository."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_files()
        if path != Path(__file__).resolve()
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
        )
        if climbs_out(path, line)
    ]
    assert offenders == []


def test_the_check_recognises_a_climb_out() -> None:
    """The check flags the paths it exists to forbid and passes those that stay inside."""
    here = ROOT / "tests" / "test_x.py"
    for line in (
        f'Path("../{_REFERENCE}/semconv")',
        "Path(__file__).parents[2] / 'x'",
        "cp -r ../../other .",
        'open("../../etc/passwd")',
    ):
        assert climbs_out(here, line), line
    for line in (
        'Path(__file__).parent / "data"',
        "Path(__file__).parents[1]",
        "cp ../x.json .",
        'parse("gs://bucket/../../etc")',
        'source = "../.."  # standalone: not a path',
    ):
        assert not climbs_out(here, line), line
    assert not climbs_out(ROOT / "terraform" / "examples" / "x" / "main.tf", 'source = "../.."')
