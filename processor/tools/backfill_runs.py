"""Which artifact folders are finished runs, and the message crier published for each.

Pure functions of the command line and of one folder's prowjob.json; :mod:`processor.tools.backfill`
does the listing, reading and sending. The rules (which folders are traced, skipped or failed) are
listed in that module's docstring.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from processor.artifacts import parse_location
from processor.core import facts
from processor.core.jsonshape import ShapeError
from processor.core.message import JobState, build_id_of

TERMINAL_STATES = frozenset(state.value for state in JobState if state.is_terminal)
PUBSUB_PROJECT = "prow.k8s.io/pubsub.project"
PUBSUB_TOPIC = "prow.k8s.io/pubsub.topic"
PUBSUB_RUN_ID = "prow.k8s.io/pubsub.runID"
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_RELATIVE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_GO_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which finished runs to trace: a window on their end and a job-name pattern."""

    since: datetime | None = None
    until: datetime | None = None
    job: re.Pattern[str] | None = None

    def job_matches(self, name: str) -> bool:
        """Tell whether ``name`` matches ``--job`` (any name does when there is no ``--job``)."""
        return self.job is None or self.job.search(name) is not None

    def window_miss(self, ended: datetime) -> str:
        """Say why a run that ended at ``ended`` is outside the window (``""`` if inside)."""
        if self.since is not None and ended < self.since:
            return "finished before --since"
        if self.until is not None and ended >= self.until:
            return "finished at or after --until"
        return ""


def parse_moment(text: str, now: datetime) -> datetime:
    """Parse a ``--since``/``--until`` value into an aware UTC datetime.

    Accepts a date (``2026-11-01``, midnight UTC), an ISO 8601 date and time (``2026-11-01T12:00Z``;
    without an offset it is UTC), or an age before ``now``: ``90m``, ``36h``, ``7d``, ``2w``.
    Raises ``ValueError`` naming the accepted forms.
    """
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative.group(1)), _RELATIVE_UNITS[relative.group(2)]
        try:
            return now - timedelta(**{unit: amount})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back past the year 1") from None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: use 2026-11-01, 2026-11-01T12:00:00Z, or an age such as "
            "90m, 36h, 7d or 2w"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def independent_prefixes(prefixes: Sequence[str]) -> list[str]:
    """Drop prefixes that repeat or lie inside another, so no folder is listed twice.

    Raises :class:`~processor.artifacts.UnsupportedLocation` for a prefix that is not a
    ``gs://``/``s3://`` URL. ``gs://b/logs/ci-foo`` does not contain ``gs://b/logs/ci-foo-bar``:
    prefixes are folders, as in :meth:`~processor.artifacts.ArtifactStore.find`.
    """
    locations = [parse_location(prefix) for prefix in prefixes]
    kept: list[str] = []
    for index, location in enumerate(locations):
        covered = any(
            other.scheme == location.scheme
            and other.bucket == location.bucket
            and _folder_contains(other.path, location.path)
            and (other.path != location.path or other_index < index)
            for other_index, other in enumerate(locations)
            if other_index != index
        )
        if not covered:
            kept.append(location.url)
    return kept


def _folder_contains(outer: str, inner: str) -> bool:
    return not outer or inner == outer or inner.startswith(f"{outer}/")


def job_segment(folder: str) -> str:
    """Return the job-name segment of a run folder (``logs/JOB/BUILD``, ``pr-logs/.../JOB/BUILD``).

    ``""`` when the folder is too shallow to have one.
    """
    segments = folder.split("://", 1)[-1].split("/")
    return segments[-2] if len(segments) >= 3 else ""  # noqa: PLR2004 - bucket, job, build


class RunOutcome(StrEnum):
    """What became of one run folder."""

    SENT = "sent"
    """Traced through the pipeline, or published to the topic (or, in a dry run, printed)."""
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of one folder, and why when it was not sent."""

    outcome: RunOutcome
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RunMessage:
    """The terminal-state message synthesized for one finished run."""

    folder: str
    job: str
    state: str
    ended: datetime
    """``completionTime`` (else ``startTime``): the window's key and the message's publish time."""
    data: bytes
    """Crier's ``ReportMessage`` JSON, byte for byte as its ``json.Marshal`` writes it."""


def assess(folder: str, data: bytes, selection: Selection) -> RunMessage | RunResult:
    """Decide from a folder's prowjob.json whether it is a finished run to trace; build its message.

    The checks and their order are the module docstring's list.
    """
    try:
        prowjob = facts.parse_prowjob(data)
        document = json.loads(data)
    except (ShapeError, ValueError, RecursionError) as error:
        # facts names some fields "prowjob.json.status", others "status.state": say it once.
        detail = str(error).removeprefix(f"{facts.PROWJOB}: ").removeprefix(f"{facts.PROWJOB}.")
        return RunResult(RunOutcome.FAILED, f"malformed prowjob.json: {detail}")
    if not selection.job_matches(prowjob.job):
        return RunResult(RunOutcome.SKIPPED, "job name does not match --job")
    superseded = superseded_by(folder, prowjob)
    if superseded:
        return RunResult(RunOutcome.SKIPPED, superseded)
    if prowjob.state not in TERMINAL_STATES:
        state = prowjob.state or "no state"
        return RunResult(
            RunOutcome.SKIPPED,
            f"not finished: prowjob.json says {state} (still running, or a first build "
            "abandoned when plank revived the pod)",
        )
    if not prowjob.url:
        return RunResult(
            RunOutcome.SKIPPED,
            "never started: no status.url, so crier's message has no artifact path "
            "(the pod was never created)",
        )
    ended = prowjob.completion or prowjob.start
    if ended is None:
        return RunResult(
            RunOutcome.FAILED,
            f"prowjob.json says {prowjob.state} but has neither completionTime nor startTime",
        )
    outside = selection.window_miss(ended)
    if outside:
        return RunResult(RunOutcome.SKIPPED, outside)
    message = report_message(document, folder)
    return RunMessage(
        folder=folder, job=prowjob.job, state=prowjob.state, ended=ended, data=go_marshal(message)
    )


NEVER_RAN = (
    "never started: the pod's containers never ran (started.json and finished.json are "
    "missing or crier's stand-ins, and podinfo.json shows no container started)"
)


def never_ran(
    prowjob: facts.ProwJob,
    started: facts.Started | None,
    finished: facts.Finished | None,
    podinfo: facts.PodInfo | None,
) -> str:
    """Say why a pod-run job's pod never ran its containers (``""`` when it did, or may have).

    initupload replaces crier's stand-in started.json as soon as the pod's init containers are
    done, and the sidecar writes finished.json before crier would (pkg/crier/reporters/gcs/
    reporter.go keeps a pod's own files), so crier's files at the end mean the test never ran:
    a pod pending or scheduling timeout, or an abort before it started. Jobs of other agents
    (tekton-pipeline, jenkins) have no pod and are never skipped here.
    """
    if not prowjob.runs_in_a_pod:
        return ""
    if any(written is not None and not written.by_crier for written in (started, finished)):
        return ""
    if podinfo is not None and any(
        run.started for run in (*podinfo.init_containers, *podinfo.containers)
    ):
        return ""
    return NEVER_RAN


def superseded_by(folder: str, prowjob: facts.ProwJob) -> str:
    """Say why ``folder`` is not the run its ProwJob names (``""`` when it is)."""
    build = build_id_of(folder)
    if prowjob.build_id and prowjob.build_id != build:
        return (
            "superseded: the ProwJob's build is another folder (a pod revival's abandoned "
            "first build)"
        )
    if prowjob.url and build_id_of(prowjob.url) != build:
        return "superseded: status.url names another folder (a pod revival's abandoned first build)"
    return ""


def report_message(prowjob: Mapping[str, Any], gcs_path: str) -> dict[str, Any]:
    """Return the ``ReportMessage`` crier's Pub/Sub reporter builds from ``prowjob``.

    Keys in the Go struct's field order; ``refs`` and ``message`` are ``omitempty``, the others
    always present. ``refs`` is ``spec.refs`` then ``spec.extra_refs``, copied as prowjob.json
    holds them (crier marshals the same Go struct, so the bytes agree). Project, topic and run ID
    come from the ``prow.k8s.io/pubsub.*`` annotations, else the labels of the same name (older
    jobs), as crier's ``findLabels`` does. ``gcs_path`` is the folder itself, as crier derives it
    from ``status.url`` (which :func:`superseded_by` has checked names this folder), trailing
    ``/`` included.
    """
    metadata = _object(prowjob.get("metadata"))
    spec = _object(prowjob.get("spec"))
    status = _object(prowjob.get("status"))
    annotations = _object(metadata.get("annotations"))
    labels = _object(metadata.get("labels"))

    def routing(key: str) -> Any:  # noqa: ANN401 - a JSON value, passed through as Go would
        return annotations.get(key) or labels.get(key) or ""

    refs: list[Any] = []
    if spec.get("refs") is not None:
        refs.append(spec["refs"])
    refs.extend(spec.get("extra_refs") or ())
    message: dict[str, Any] = {
        "project": routing(PUBSUB_PROJECT),
        "topic": routing(PUBSUB_TOPIC),
        "runid": routing(PUBSUB_RUN_ID),
        "status": status.get("state") or "",
        "url": status.get("url") or "",
        # Crier cuts gcs_path out of status.url, so a URL template ending in "/" (knative's)
        # leaves one on it too (generateMessageFromPJ, pkg/crier/reporters/pubsub/reporter.go).
        "gcs_path": gcs_path + "/" if str(status.get("url") or "").endswith("/") else gcs_path,
    }
    if refs:
        message["refs"] = refs
    message["job_type"] = spec.get("type") or ""
    message["job_name"] = spec.get("job") or ""
    if status.get("description"):
        message["message"] = status["description"]
    return message


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def go_marshal(value: Any) -> bytes:  # noqa: ANN401 - any JSON value
    """Encode ``value`` as Go's ``json.Marshal`` does: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # These characters only ever occur inside JSON strings, so replacing them is exact.
    for unsafe, escaped in _GO_HTML_ESCAPES:
        text = text.replace(unsafe, escaped)
    return text.encode()
