"""The corpus' public value types: a synthetic job and a published Pub/Sub message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processor.synthetic.scenarios import Scenario


@dataclass(frozen=True)
class Published:
    """One Pub/Sub message as crier published it."""

    publish_time: datetime
    """When Pub/Sub accepted it (UTC, millisecond precision): 50-2000 ms after the state change."""
    data: dict[str, Any]
    """Crier's ``ReportMessage`` JSON object (the message body), keys in Go's field order."""


@dataclass(frozen=True)
class SyntheticJob:
    """One job's whole life: its messages and the files it left under ``gcs_path``."""

    uid: str
    """The ProwJob's ``metadata.name`` (``PROW_JOB_ID``, the trace ID). Not ``metadata.uid``,
    which ``prowjob.json`` also has and which is a different UUID."""
    job_name: str
    """``spec.job`` ("" for a gangway rejection, as in its message)."""
    job_type: str
    """``spec.type`` ("" for a gangway rejection)."""
    build_id: str
    """The final build ID ("" when none was vended); the last segment of ``gcs_path``."""
    gcs_path: str
    """``gs://bucket/...`` folder holding ``artifacts`` ("" when nothing was written). For
    ``ERROR_BEFORE_PENDING`` no message names it: only a folder scan (backfill) finds it."""
    url: str
    """``status.url`` of the final ProwJob ("" when it never got one)."""
    scenario: Scenario
    artifacts: dict[str, bytes]
    """File name -> bytes under ``gcs_path``: only the files this lifecycle would leave."""
    messages: tuple[Published, ...]
    """Crier's Pub/Sub messages for this job, in publish order."""
    prowjob_versions: dict[str, bytes] = field(repr=False)
    """State -> ``prowjob.json`` bytes as crier's GCS reporter wrote them on entering that state
    (``triggered`` included for completeness, though the reporter skips it: no build ID yet)."""
    abandoned_artifacts: dict[str, dict[str, bytes]] = field(repr=False)
    """Other folders the job wrote to (a revived pod's first build), folder -> files."""
    planted_secrets: tuple[str, ...] = ()
    """Credential strings deliberately present in the raw artifacts/messages; a scrubber must
    leave none of them in anything it exports."""

    def prowjob_at(self, state: str) -> dict[str, Any]:
        """Return the ProwJob as crier's GCS reporter wrote it on entering ``state``."""
        try:
            raw = self.prowjob_versions[state]
        except KeyError:
            known = ", ".join(self.prowjob_versions) or "none"
            raise KeyError(
                f"job {self.uid} never reported state {state!r} (states: {known})"
            ) from None
        loaded: dict[str, Any] = json.loads(raw)
        return loaded
