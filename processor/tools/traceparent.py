"""``prowtrace traceparent``: the W3C context job code uses to put its spans in the job's trace.

Inside a Prow pod, ``PROW_JOB_ID`` (the ProwJob UID), ``JOB_NAME`` and ``BUILD_ID`` are set. The
printed ``traceparent`` names the job's root span as the parent, with the sampled flag (``01``):
Istio's ``tracing.sh`` writes the same trace and parent IDs but flags ``00``, which makes
parent-based samplers drop the children. Pure-shell equivalent for images without Python::

    t=${PROW_JOB_ID//-/}; export TRACEPARENT="00-${t}-${t:0:16}-01"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from processor.config import ConfigError
from processor.core.ids import IdMode, identity_from_build, identity_from_uid, traceparent


@dataclass(frozen=True, slots=True)
class JobEnvironment:
    """The job identity a pod sees."""

    prow_job_id: str = ""
    job_name: str = ""
    build_id: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JobEnvironment:
        """Read Prow's pod variables."""
        return cls(
            prow_job_id=env.get("PROW_JOB_ID", ""),
            job_name=env.get("JOB_NAME", ""),
            build_id=env.get("BUILD_ID", ""),
        )


def job_traceparent(job: JobEnvironment, mode: IdMode) -> str:
    """Return the traceparent of the job's root span under the deployment's ID mode."""
    if mode is IdMode.UID:
        if not job.prow_job_id:
            raise ConfigError(
                "PROW_JOB_ID is not set: run this inside a Prow job's pod, or pass --prow-job-id"
            )
        return traceparent(identity_from_uid(job.prow_job_id))
    if not job.job_name or not job.build_id:
        raise ConfigError(
            "build-id mode needs JOB_NAME and BUILD_ID (set in Prow pods), "
            "or --job-name and --build-id"
        )
    return traceparent(identity_from_build(job.job_name, job.build_id))


def render(value: str, *, export: bool) -> str:
    """Return the line to print: the bare value, or a shell ``export`` statement."""
    return f"export TRACEPARENT={value}" if export else value
