"""The exit statuses of every ``prowtrace`` command, in one place."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a command's exit status says."""

    OK = 0
    NOT_ALL_TRACED = 1
    """The command ran, but something was not traced (or the demo could not finish)."""
    USAGE = 2
    """A flag or setting cannot work; nothing was started."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT, the shell's convention)."""


def killed_by(signum: int) -> int:
    """Return the shell's status for a run ended by signal ``signum``: 128 + its number."""
    return 128 + signum
