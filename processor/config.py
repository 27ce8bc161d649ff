"""Every setting prowtrace reads, in one place: environment variables, overridden by flags.

Variables (all optional):

=================================  =========================================================
``PROWTRACE_ID_MODE``              ``uid`` (default: trace ID = ProwJob UID, matches
                                   ``tracing.sh``) or ``build-id`` (hash of job + build ID)
``PROWTRACE_ARTIFACTS``            ``gcs`` (default, Application Default Credentials),
                                   ``none`` (build-id mode only), or a local mirror
                                   directory (``gs://B/P`` is read from ``DIR/B/P``)
``PROWTRACE_GRACE_SECONDS``        how long after a message's publish time missing or stale
                                   artifacts are waited for (nack) before emitting what
                                   exists; default 300
``PROWTRACE_MAX_ARTIFACT_BYTES``   larger artifact files are refused; default 33554432
``PROWTRACE_LOG_LEVEL``            ``DEBUG``, ``INFO`` (default), ``WARNING``, ``ERROR``
``PROWTRACE_LOG_FORMAT``           ``json`` (default; Cloud Logging's fields) or ``console``
=================================  =========================================================

The exporter is chosen by the standard ``OTEL_*`` variables (:mod:`processor.export.exporters`);
the transports' own settings live with them but are parsed by the helpers here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from processor.artifacts import DEFAULT_MAX_ARTIFACT_BYTES
from processor.core.ids import IdMode

DEFAULT_GRACE_SECONDS = 300.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """A setting has a value prowtrace cannot use; the message says which and what would do."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The core's deployment settings."""

    id_mode: IdMode = IdMode.UID
    artifacts: str = "gcs"
    grace: timedelta = timedelta(seconds=DEFAULT_GRACE_SECONDS)
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
    log_level: str = "INFO"
    log_format: str = "json"

    def __post_init__(self) -> None:
        """Refuse combinations that cannot work, with a message that says what to change."""
        if self.id_mode is IdMode.UID and self.artifacts == "none":
            raise ConfigError(
                "PROWTRACE_ARTIFACTS=none needs PROWTRACE_ID_MODE=build-id: in uid mode the "
                "trace ID is the ProwJob UID, which only prowjob.json carries"
            )
        if self.artifacts not in {"gcs", "none"} and not Path(self.artifacts).is_dir():
            raise ConfigError(
                f"artifact mirror {self.artifacts!r} is not a directory (PROWTRACE_ARTIFACTS "
                "or --artifacts-mirror takes gcs, none, or an existing directory)"
            )


def load_settings(env: Mapping[str, str] = os.environ, **overrides: str | float | None) -> Settings:
    """Read :class:`Settings` from ``env``; non-``None`` ``overrides`` (from flags) win."""
    values: dict[str, str | float | None] = {
        "id_mode": env.get("PROWTRACE_ID_MODE"),
        "artifacts": env.get("PROWTRACE_ARTIFACTS"),
        "grace_seconds": env.get("PROWTRACE_GRACE_SECONDS"),
        "max_artifact_bytes": env.get("PROWTRACE_MAX_ARTIFACT_BYTES"),
        "log_level": env.get("PROWTRACE_LOG_LEVEL"),
        "log_format": env.get("PROWTRACE_LOG_FORMAT"),
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    id_mode = str(values["id_mode"] or IdMode.UID)
    try:
        mode = IdMode(id_mode)
    except ValueError:
        raise ConfigError(
            f"PROWTRACE_ID_MODE={id_mode!r}: choose {IdMode.UID} or {IdMode.BUILD_ID}"
        ) from None
    level = str(values["log_level"] or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"PROWTRACE_LOG_LEVEL={level!r}: choose one of {', '.join(LOG_LEVELS)}")
    log_format = str(values["log_format"] or "json")
    if log_format not in {"json", "console"}:
        raise ConfigError(f"PROWTRACE_LOG_FORMAT={log_format!r}: choose json or console")
    return Settings(
        id_mode=mode,
        artifacts=str(values["artifacts"] or "gcs"),
        grace=timedelta(
            seconds=number(
                values["grace_seconds"], "PROWTRACE_GRACE_SECONDS", DEFAULT_GRACE_SECONDS
            )
        ),
        max_artifact_bytes=int(
            number(
                values["max_artifact_bytes"],
                "PROWTRACE_MAX_ARTIFACT_BYTES",
                DEFAULT_MAX_ARTIFACT_BYTES,
                minimum=1,
            )
        ),
        log_level=level,
        log_format=log_format,
    )


def number(value: str | float | None, name: str, default: float, *, minimum: float = 0) -> float:
    """Parse a numeric setting, or raise :class:`ConfigError` naming it."""
    if value is None or value == "":
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if parsed < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum:g}")
    return parsed
