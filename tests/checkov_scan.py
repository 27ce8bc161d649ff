"""Run checkov offline and hand back its JSON report (shared by the Terraform and Dockerfile tests).

Checkov phones home unless told not to: at import it asks PyPI for a newer release, and at run time
it downloads policy metadata and guideline links from Prisma Cloud. The settings below switch both
off, and a dead local proxy makes any call that remains fail at once instead of hanging, so a scan
takes seconds and gives the same answer with or without a network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Nothing listens on the discard port: a stray request is refused immediately.
_DEAD_PROXY = "http://127.0.0.1:9"

OFFLINE_ENV = {
    "BC_SKIP_MAPPING": "TRUE",  # no download of the check-to-guideline mapping
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no "is there a newer checkov?" call to PyPI
    "HTTPS_PROXY": _DEAD_PROXY,
    "HTTP_PROXY": _DEAD_PROXY,
    "https_proxy": _DEAD_PROXY,
    "http_proxy": _DEAD_PROXY,
    "NO_PROXY": "",
    "no_proxy": "",
}

# Credentials that would make checkov talk to (and upload results to) the Prisma Cloud platform.
_PLATFORM_VARIABLES = ("BC_API_KEY", "PRISMA_API_URL", "BC_API_URL", "CKV_API_KEY")

_TIMEOUT_SECONDS = 120


def offline_environment() -> dict[str, str]:
    """Return this process's environment made safe for an offline, upload-free checkov run."""
    env = {key: value for key, value in os.environ.items() if key not in _PLATFORM_VARIABLES}
    env.update(OFFLINE_ENV)
    return env


def run_checkov(framework: str, *target: str) -> dict[str, Any]:
    """Scan ``target`` (e.g. ``"-d", "terraform"``) with one framework; return the JSON report."""
    command = [
        sys.executable,
        "-m",
        "checkov.main",
        "--framework",
        framework,
        "--skip-download",  # use the bundled checks only; fetch no custom policies
        "--output",
        "json",
        *target,
    ]
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        command,
        cwd=ROOT,
        env=offline_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT_SECONDS,
    )
    # Exit status 1 only means "some check failed"; the report says which.
    assert result.returncode in {0, 1}, result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, dict), f"expected one framework's report, got: {report!r}"
    return report


def failed_checks(report: dict[str, Any]) -> list[str]:
    """Describe every failed check of a report as ``"CKV_ID resource (file)"``."""
    return [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for check in report["results"]["failed_checks"]
    ]
