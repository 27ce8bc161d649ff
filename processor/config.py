"""Every setting prowtrace reads, in one place: environment variables, overridden by flags.

Variables (all optional):

=================================  =========================================================
``PROWTRACE_ID_MODE``              ``uid`` (default: trace ID = ProwJob UID, matches
                                   ``tracing.sh``) or ``build-id`` (hash of job + build ID)
``PROWTRACE_ARTIFACTS``            ``gcs`` (default, Application Default Credentials),
                                   ``none`` (build-id mode only), or a local mirror
                                   directory (``gs://B/P`` is ``DIR/B/P``, ``s3://B/P``
                                   is ``DIR/s3/B/P``)
``PROWTRACE_GRACE_SECONDS``        how long after a message's publish time missing or stale
                                   artifacts are waited for (the message held and
                                   re-checked) before emitting what exists; default 300
``PROWTRACE_MAX_ARTIFACT_BYTES``   larger artifact files are refused; default 33554432
``PROWTRACE_ARTIFACT_BUCKETS``     optional comma-separated allowlist of artifact buckets
                                   (``gs://B``, ``s3://B``, or a bare ``B`` for ``gs://B``):
                                   a message naming another bucket is poison (INVALID);
                                   default: any bucket the service account can read
``PROWTRACE_TEST_SPANS``           ``on`` (default: spans for the test suites and cases in
                                   the job's ``artifacts/**/junit*.xml``; one more storage
                                   listing per finished job) or ``off``
``PROWTRACE_MAX_JUNIT_BYTES``      larger JUnit files are skipped (and counted on the
                                   root span); default 5242880
``PROWTRACE_MAX_JUNIT_JOB_BYTES``  JUnit bytes read per job, all files together; default
                                   20971520
``PROWTRACE_MAX_TEST_SPANS``       test spans per job (failures first, then the slowest);
                                   default 1000
``PROWTRACE_LABELS_ALLOW``         comma-separated glob patterns of ProwJob label keys put
                                   on the root span as ``prow.job.label.<key>``; default
                                   ``*`` (every label, at most 32, values scrubbed)
``PROWTRACE_LABELS_DENY``          comma-separated glob patterns of label keys left off,
                                   e.g. ``*.example.com/*``; default none. ``*`` in
                                   either drops every label
``PROWTRACE_LOG_LEVEL``            ``DEBUG``, ``INFO`` (default), ``WARNING``, ``ERROR``
``PROWTRACE_LOG_FORMAT``           ``json`` (default; Cloud Logging's fields) or ``console``
``PROWTRACE_GROUP_COMMIT``         ``serve`` and ``pull``: ``on`` (default: concurrent
                                   messages share export calls) or ``off`` (one export call
                                   per message, still one at a time; for comparison)
=================================  =========================================================

The exporter is chosen by the standard ``OTEL_*`` variables (:mod:`processor.export.exporters`),
and so are the CI/CD metrics, off unless ``OTEL_METRICS_EXPORTER`` is set
(:mod:`processor.export.metrics`).

``prowtrace serve`` (push endpoint):

=====================================  ====================================================
``PORT``                               listening port (Cloud Run sets it); default 8080
``PROWTRACE_PUSH_PATH``                path of the push endpoint; default ``/``
``PROWTRACE_PUSH_AUTH``                ``oidc`` (default): verify Google's signature on the
                                       push token (Cloud Run's invoker IAM check off);
                                       ``cloud-run-iam``: the invoker check is on, so also
                                       accept tokens whose signature Cloud Run verified and
                                       removed (honoured only where ``K_SERVICE`` is set);
                                       ``off``: no token (local use only, refused on Cloud Run)
``PROWTRACE_PUSH_AUDIENCE``            the OIDC token's expected ``aud`` (the service URL)
``PROWTRACE_PUSH_ALLOWED_EMAILS``      comma-separated push service-account emails
``PROWTRACE_PUSH_MAX_BODY_BYTES``      larger requests get 413; default 2097152
``PROWTRACE_PUSH_HOLD_SECONDS``        how long one request may wait for a late artifact
                                       before answering 503 (nack); keep it below the
                                       subscription's ack deadline; default 110; 0 never holds
``PROWTRACE_PUSH_MAX_HELD``            requests waiting for late artifacts at once; more are
                                       nacked at once; default 64 (Terraform: four fifths
                                       of ``concurrency``)
``PROWTRACE_PUSH_MAX_CONNECTIONS``     open connections at once; more get 503; default 1000
=====================================  ====================================================

``prowtrace pull`` (streaming pull worker):

=====================================  ====================================================
``PROWTRACE_SUBSCRIPTION``             ``projects/P/subscriptions/S`` (or ``--subscription``)
``PROWTRACE_MAX_OUTSTANDING_MESSAGES`` flow control: leased, unacked messages; default 256
``PROWTRACE_MAX_OUTSTANDING_BYTES``    flow control: their bytes; default 67108864
``PROWTRACE_PULL_THREADS``             messages processed at once; default 32
=====================================  ====================================================
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from processor.artifacts import DEFAULT_MAX_ARTIFACT_BYTES
from processor.core.ids import IdMode
from processor.core.junit import DEFAULT_MAX_TEST_SPANS
from processor.core.labels import KEEP_ALL_LABELS, LabelFilter
from processor.junit_gather import (
    DEFAULT_MAX_JUNIT_BYTES,
    DEFAULT_MAX_JUNIT_JOB_BYTES,
    JunitLimits,
)

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
    artifact_buckets: frozenset[str] = frozenset()
    """Allowed ``SCHEME://BUCKET`` of messages' folders; empty: any."""
    junit: JunitLimits | None = field(default_factory=JunitLimits)
    """Test span limits; ``None`` when ``PROWTRACE_TEST_SPANS=off``."""
    log_level: str = "INFO"
    log_format: str = "json"
    labels: LabelFilter = KEEP_ALL_LABELS

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


def load_settings(
    env: Mapping[str, str] = os.environ,
    *,
    defaults: Mapping[str, str | float | None] | None = None,
    **overrides: str | float | None,
) -> Settings:
    """Read :class:`Settings`: non-``None`` ``overrides`` (flags) win over ``env``.

    ``defaults`` (a command's own, e.g. grace 0 for replay and backfill) apply where neither a
    flag nor a variable gives a value; below them, the defaults documented above.
    """
    from_env: dict[str, str | None] = {
        "id_mode": env.get("PROWTRACE_ID_MODE"),
        "artifacts": env.get("PROWTRACE_ARTIFACTS"),
        "grace_seconds": env.get("PROWTRACE_GRACE_SECONDS"),
        "max_artifact_bytes": env.get("PROWTRACE_MAX_ARTIFACT_BYTES"),
        "artifact_buckets": env.get("PROWTRACE_ARTIFACT_BUCKETS"),
        "test_spans": env.get("PROWTRACE_TEST_SPANS"),
        "max_junit_bytes": env.get("PROWTRACE_MAX_JUNIT_BYTES"),
        "max_junit_job_bytes": env.get("PROWTRACE_MAX_JUNIT_JOB_BYTES"),
        "max_test_spans": env.get("PROWTRACE_MAX_TEST_SPANS"),
        "log_level": env.get("PROWTRACE_LOG_LEVEL"),
        "log_format": env.get("PROWTRACE_LOG_FORMAT"),
    }
    values: dict[str, str | float | None] = dict.fromkeys(from_env)
    for layer in (defaults or {}, from_env, overrides):  # lowest precedence first
        values.update({key: value for key, value in layer.items() if value is not None})
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
        artifact_buckets=artifact_buckets(str(values["artifact_buckets"] or "")),
        junit=_junit_limits(values),
        log_level=level,
        log_format=log_format,
        labels=LabelFilter(
            allow=patterns(env.get("PROWTRACE_LABELS_ALLOW"), default=("*",)),
            deny=patterns(env.get("PROWTRACE_LABELS_DENY"), default=()),
        ),
    )


_BUCKET_ENTRY = re.compile(r"^(?:(gs|s3)://)?([A-Za-z0-9][A-Za-z0-9._-]{0,221})/?$")


def artifact_buckets(value: str) -> frozenset[str]:
    """Parse ``PROWTRACE_ARTIFACT_BUCKETS`` into ``SCHEME://BUCKET`` entries (bare: ``gs``)."""
    buckets = set()
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        match = _BUCKET_ENTRY.match(entry)
        if match is None:
            raise ConfigError(
                f"PROWTRACE_ARTIFACT_BUCKETS entry {entry!r}: expected gs://BUCKET, s3://BUCKET "
                "or a bare bucket name (no path)"
            )
        buckets.add(f"{match.group(1) or 'gs'}://{match.group(2)}")
    return frozenset(buckets)


def _junit_limits(values: Mapping[str, str | float | None]) -> JunitLimits | None:
    """Read the test span settings (``None``: test spans are off)."""
    switch = str(values["test_spans"] or "on").strip().lower()
    if switch not in {"on", "off"}:
        raise ConfigError(f"PROWTRACE_TEST_SPANS={switch!r}: choose on or off")
    if switch == "off":
        return None
    return JunitLimits(
        max_file_bytes=int(
            number(
                values["max_junit_bytes"],
                "PROWTRACE_MAX_JUNIT_BYTES",
                DEFAULT_MAX_JUNIT_BYTES,
                minimum=1,
            )
        ),
        max_job_bytes=int(
            number(
                values["max_junit_job_bytes"],
                "PROWTRACE_MAX_JUNIT_JOB_BYTES",
                DEFAULT_MAX_JUNIT_JOB_BYTES,
                minimum=1,
            )
        ),
        max_spans=int(
            number(
                values["max_test_spans"],
                "PROWTRACE_MAX_TEST_SPANS",
                DEFAULT_MAX_TEST_SPANS,
                minimum=0,
            )
        ),
    )


def default_log_format(stream: TextIO | None = None) -> str:
    """Return ``console`` when ``stream`` (standard error) is a terminal, else ``json``."""
    return "console" if (stream or sys.stderr).isatty() else "json"


def patterns(value: str | None, *, default: tuple[str, ...]) -> tuple[str, ...]:
    """Split a comma-separated list of glob patterns; unset or blank gives ``default``."""
    if value is None or not value.strip():
        return default
    return tuple(item.strip() for item in value.split(",") if item.strip())


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


def group_commit_enabled(env: Mapping[str, str]) -> bool:
    """Read ``PROWTRACE_GROUP_COMMIT`` (``on``, the default, or ``off``)."""
    value = env.get("PROWTRACE_GROUP_COMMIT", "on").strip().lower() or "on"
    if value not in {"on", "off"}:
        raise ConfigError(f"PROWTRACE_GROUP_COMMIT={value!r}: choose on or off")
    return value == "on"


SUBSCRIPTION_PATTERN = re.compile(r"^projects/[^/]+/subscriptions/[^/]+$")


@dataclass(frozen=True, slots=True)
class PullSettings:
    """Flow control and concurrency of the pull worker."""

    subscription: str
    max_outstanding_messages: int = 256
    """Messages leased but not yet acked; bounds memory and in-flight work."""
    max_outstanding_bytes: int = 64 * 1024 * 1024
    threads: int = 32
    """Callbacks running at once (each mostly waits on storage reads and exports)."""
    shutdown_timeout: float = 8.0
    """Cloud Run gives 10 s after SIGTERM; finish in-flight messages inside that."""

    def __post_init__(self) -> None:
        """Check the subscription path's shape, naming the expected form."""
        if not SUBSCRIPTION_PATTERN.match(self.subscription):
            raise ConfigError(
                f"subscription {self.subscription!r}: expected projects/PROJECT/subscriptions/NAME "
                "(--subscription or PROWTRACE_SUBSCRIPTION)"
            )


def load_pull_settings(env: Mapping[str, str], subscription: str | None) -> PullSettings:
    """Read :class:`PullSettings`; ``subscription`` (the flag) wins over the variable."""
    return PullSettings(
        subscription=subscription or env.get("PROWTRACE_SUBSCRIPTION", ""),
        max_outstanding_messages=int(
            number(
                env.get("PROWTRACE_MAX_OUTSTANDING_MESSAGES"),
                "PROWTRACE_MAX_OUTSTANDING_MESSAGES",
                256,
                minimum=1,
            )
        ),
        max_outstanding_bytes=int(
            number(
                env.get("PROWTRACE_MAX_OUTSTANDING_BYTES"),
                "PROWTRACE_MAX_OUTSTANDING_BYTES",
                64 * 1024 * 1024,
                minimum=1024,
            )
        ),
        threads=int(
            number(env.get("PROWTRACE_PULL_THREADS"), "PROWTRACE_PULL_THREADS", 32, minimum=1)
        ),
    )


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How the push endpoint listens and what it accepts."""

    host: str = "0.0.0.0"  # noqa: S104 - Cloud Run routes to the container's port on all interfaces
    port: int = 8080
    path: str = "/"
    auth: str = "oidc"
    on_cloud_run: bool = False
    """``K_SERVICE`` is set: Cloud Run runs this process and fronts every request."""
    audience: str = ""
    allowed_emails: frozenset[str] = frozenset()
    max_body_bytes: int = 2 * 1024 * 1024
    """Crier's messages are ~1 KiB; base64 and the envelope add a third. 2 MiB is generous."""
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    """A connection outside a request this long (half-sent headers, idle keep-alive) is closed."""
    max_connections: int = 1000
    """Open connections at once (Cloud Run sends at most its concurrency, 80 by default); more
    are answered 503 and closed. Kept below the process's file-descriptor limit."""
    handler_threads: int = 96
    """At least Cloud Run's default concurrency (80), so no request waits for a thread."""
    shutdown_timeout: float = 8.0
    hold_seconds: float = 110.0
    """A request waits this long at most for a late artifact: below Terraform's default ack
    deadline (120 s, which for push is Pub/Sub's request timeout) by a message's processing."""
    max_held: int = 64
    """Held requests occupy Cloud Run concurrency slots (80 by default), though no CPU: four
    fifths of the default, so a fifth stays free for messages that can be processed now."""

    @property
    def trusts_cloud_run_iam(self) -> bool:
        """Whether a token whose signature Cloud Run's invoker check removed is accepted.

        Only when told the check is on (``cloud-run-iam``) and actually on Cloud Run: anywhere
        else nothing verified the signature before it was removed.
        """
        return self.auth == PUSH_AUTH_CLOUD_RUN_IAM and self.on_cloud_run

    @property
    def signature_removed_refusal(self) -> str:
        """Why such a token is refused when it is (logged with each refusal)."""
        if self.auth == PUSH_AUTH_CLOUD_RUN_IAM:
            return (
                "PROWTRACE_PUSH_AUTH=cloud-run-iam, but K_SERVICE is not set: not running on "
                "Cloud Run, so no invoker check verified the signature that was removed"
            )
        return (
            "the token's signature was removed, but PROWTRACE_PUSH_AUTH=oidc requires Google's "
            "signature (set cloud-run-iam when Cloud Run's invoker IAM check is on)"
        )


PUSH_AUTH_OIDC = "oidc"
PUSH_AUTH_CLOUD_RUN_IAM = "cloud-run-iam"
PUSH_AUTH_OFF = "off"
PUSH_AUTH_MODES = (PUSH_AUTH_OIDC, PUSH_AUTH_CLOUD_RUN_IAM, PUSH_AUTH_OFF)


def load_push_settings(
    env: Mapping[str, str], *, host: str | None = None, port: int | None = None
) -> PushSettings:
    """Read :class:`PushSettings`, refusing unauthenticated serving on Cloud Run."""
    auth = env.get("PROWTRACE_PUSH_AUTH", PUSH_AUTH_OIDC).strip().lower() or PUSH_AUTH_OIDC
    if auth not in PUSH_AUTH_MODES:
        raise ConfigError(
            f"PROWTRACE_PUSH_AUTH={auth!r}: choose {', '.join(PUSH_AUTH_MODES[:-1])} or "
            f"{PUSH_AUTH_MODES[-1]}"
        )
    on_cloud_run = bool(env.get("K_SERVICE"))
    audience = env.get("PROWTRACE_PUSH_AUDIENCE", "").strip()
    emails = frozenset(
        email.strip()
        for email in env.get("PROWTRACE_PUSH_ALLOWED_EMAILS", "").split(",")
        if email.strip()
    )
    if auth == PUSH_AUTH_OFF and on_cloud_run:
        raise ConfigError(
            "PROWTRACE_PUSH_AUTH=off is for local use only and is refused on Cloud Run "
            "(K_SERVICE is set): set PROWTRACE_PUSH_AUDIENCE and PROWTRACE_PUSH_ALLOWED_EMAILS"
        )
    if auth != PUSH_AUTH_OFF and (not audience or not emails):
        raise ConfigError(
            f"push authentication is on (PROWTRACE_PUSH_AUTH={auth}) but "
            "PROWTRACE_PUSH_AUDIENCE and PROWTRACE_PUSH_ALLOWED_EMAILS are not both set; "
            "for local use without tokens (e.g. the Pub/Sub emulator) set PROWTRACE_PUSH_AUTH=off"
        )
    path = env.get("PROWTRACE_PUSH_PATH", "/") or "/"
    if not path.startswith("/"):
        raise ConfigError(f"PROWTRACE_PUSH_PATH={path!r} must start with /")
    return PushSettings(
        host=host or "0.0.0.0",  # noqa: S104 - see PushSettings.host
        port=port if port is not None else int(number(env.get("PORT"), "PORT", 8080, minimum=0)),
        path=path,
        auth=auth,
        on_cloud_run=on_cloud_run,
        audience=audience,
        allowed_emails=emails,
        max_body_bytes=int(
            number(
                env.get("PROWTRACE_PUSH_MAX_BODY_BYTES"),
                "PROWTRACE_PUSH_MAX_BODY_BYTES",
                2 * 1024 * 1024,
                minimum=1024,
            )
        ),
        hold_seconds=number(
            env.get("PROWTRACE_PUSH_HOLD_SECONDS"), "PROWTRACE_PUSH_HOLD_SECONDS", 110.0
        ),
        max_held=int(number(env.get("PROWTRACE_PUSH_MAX_HELD"), "PROWTRACE_PUSH_MAX_HELD", 64)),
        max_connections=int(
            number(
                env.get("PROWTRACE_PUSH_MAX_CONNECTIONS"),
                "PROWTRACE_PUSH_MAX_CONNECTIONS",
                1000,
                minimum=1,
            )
        ),
    )
