"""Where a setting's value comes from: flag, then variable, then the command's default."""

from __future__ import annotations

import io
from datetime import timedelta

from processor.config import default_log_format, load_settings


def test_a_commands_default_applies_when_neither_flag_nor_variable_is_set() -> None:
    """Replay and backfill default to grace 0; the services to the documented 300 s."""
    assert load_settings({}, defaults={"grace_seconds": 0}).grace == timedelta(0)
    assert load_settings({}).grace == timedelta(seconds=300)


def test_the_variable_wins_over_the_commands_default() -> None:
    """PROWTRACE_GRACE_SECONDS set: the command's own default does not override it."""
    settings = load_settings({"PROWTRACE_GRACE_SECONDS": "45"}, defaults={"grace_seconds": 0})

    assert settings.grace == timedelta(seconds=45)


def test_the_flag_wins_over_the_variable() -> None:
    """--grace-seconds beats PROWTRACE_GRACE_SECONDS."""
    settings = load_settings(
        {"PROWTRACE_GRACE_SECONDS": "45"}, defaults={"grace_seconds": 0}, grace_seconds=7
    )

    assert settings.grace == timedelta(seconds=7)


def test_an_unset_default_falls_through_to_the_documented_one() -> None:
    """A command default of None means no opinion: the global default applies."""
    settings = load_settings({}, defaults={"grace_seconds": None, "log_format": None})

    assert (settings.grace, settings.log_format) == (timedelta(seconds=300), "json")


def test_logs_are_for_people_on_a_terminal_and_json_elsewhere() -> None:
    """A stream that is not a terminal gets JSON (Cloud Logging's fields)."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert default_log_format(Terminal()) == "console"
    assert default_log_format(io.StringIO()) == "json"
