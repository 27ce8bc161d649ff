r"""Find and read a job's JUnit files through an artifact store, within size bounds.

Which files: those Spyglass's JUnit lens shows (``artifacts/junit.*\.xml``, Prow's lens docs) and
those Prow's starter configs point it at (``.*/junit.*\.xml``), taken together inside the job's
``artifacts/`` folder: every file below ``artifacts/`` whose name starts with ``junit`` and ends
with ``.xml`` (``artifacts/junit_01.xml``, ``artifacts/e2e/junit_runner.xml``). One listing finds
them all; then each is read if it is within the per-file limit and the job's total still allows.
The files chosen from the listing's sizes are read at once when the store can prefetch (the
pipeline's per-message reads, on its bounded pool, start them as soon as the listing answers), so
a job's JUnit costs about one round trip after the listing instead of one per file; the bytes read
stay within the job's total, as the choice is made before any read starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import structlog

from processor.artifacts import ArtifactStore, ArtifactTooLarge, ListedFile, UnsupportedLocation
from processor.core.junit import (
    DEFAULT_MAX_TEST_SPANS,
    MAX_CASES,
    JunitError,
    JunitFile,
    JunitResults,
    TestSuite,
    parse_junit,
)

log = structlog.get_logger("prowtrace.junit")

JUNIT_FOLDER = "artifacts"
JUNIT_NAME_GLOB = "junit*.xml"
MAX_JUNIT_FILES = 1000
"""Listed files beyond this are not looked at (a Kubernetes e2e run writes one per node)."""
JUNIT_LISTING = (JUNIT_FOLDER, JUNIT_NAME_GLOB, MAX_JUNIT_FILES)
"""The one listing that finds a job's JUnit files (``under``, ``name_glob``, ``limit``)."""
DEFAULT_MAX_JUNIT_BYTES = 5 * 1024 * 1024
"""Per file: a 7,000-case Ginkgo report is ~2.5 MiB."""
DEFAULT_MAX_JUNIT_JOB_BYTES = 20 * 1024 * 1024
"""Per job, all files together."""


@runtime_checkable
class Prefetching(Protocol):
    """A store that can start reading files before they are asked for."""

    def prefetch(self, folder: str, names: Iterable[str]) -> None:
        """Start reading ``names`` in ``folder``; :meth:`ArtifactStore.read` answers later."""
        ...


@dataclass(frozen=True, slots=True)
class JunitLimits:
    """How much JUnit a job may have read and shown."""

    max_file_bytes: int = DEFAULT_MAX_JUNIT_BYTES
    max_job_bytes: int = DEFAULT_MAX_JUNIT_JOB_BYTES
    max_spans: int = DEFAULT_MAX_TEST_SPANS
    max_cases: int = MAX_CASES
    """Cases kept for the layout per job (all files together); more are only counted."""


def gather_junit(store: ArtifactStore, folder: str, limits: JunitLimits) -> JunitResults:
    """List and read ``folder``'s JUnit files; malformed or oversized ones are named, not fatal.

    Raises :class:`~processor.artifacts.ArtifactUnavailable` when storage fails transiently (the
    message is retried like any other read).
    """
    listed = store.list_files(folder, *JUNIT_LISTING)
    if isinstance(store, Prefetching):
        store.prefetch(folder, within_limits(listed, limits))
    files: list[JunitFile] = []
    unreadable: list[str] = []
    too_large: list[str] = []
    budget = limits.max_job_bytes
    cases = limits.max_cases
    for item in listed:
        if item.size > min(limits.max_file_bytes, budget):
            too_large.append(item.name)
            log.warning(
                "junit_skipped",
                folder=folder,
                file=item.name,
                bytes=item.size,
                reason="larger than the per-file limit or the job's remaining total",
                max_file_bytes=limits.max_file_bytes,
                remaining_job_bytes=budget,
            )
            continue
        try:
            data = store.read(folder, item.name)
        except ArtifactTooLarge as error:
            too_large.append(item.name)
            log.warning("junit_skipped", folder=folder, file=item.name, reason=str(error))
            continue
        except UnsupportedLocation as error:  # a listed name the store refuses to read
            unreadable.append(item.name)
            log.warning("junit_unreadable", folder=folder, file=item.name, reason=str(error))
            continue
        if data is None:
            continue  # deleted since the listing
        if len(data) > min(limits.max_file_bytes, budget):
            too_large.append(item.name)
            log.warning(
                "junit_skipped", folder=folder, file=item.name, reason="grew past the limit"
            )
            continue
        budget -= len(data)
        try:
            parsed = parse_junit(data, item.name, max_cases=max(0, cases))
            files.append(parsed)
        except JunitError as error:
            unreadable.append(item.name)
            log.warning("junit_unreadable", folder=folder, file=item.name, reason=str(error))
            continue
        cases -= sum(_kept(suite) for suite in parsed.suites)
    return JunitResults(
        files=tuple(files),
        unreadable=tuple(unreadable),
        too_large=tuple(too_large),
        max_spans=limits.max_spans,
    )


def within_limits(listed: list[ListedFile], limits: JunitLimits) -> list[str]:
    """Name the listed files the loop in gather_junit reads if their sizes hold, in order.

    The pipeline starts these reads the moment the listing answers (see
    :meth:`processor.artifacts.fetch.ReadPool.fetch`).
    """
    chosen: list[str] = []
    budget = limits.max_job_bytes
    for item in listed:
        if item.size <= min(limits.max_file_bytes, budget):
            chosen.append(item.name)
            budget -= item.size
    return chosen


def _kept(suite: TestSuite) -> int:
    """Count the cases a parsed suite (and those nested in it) kept."""
    return len(suite.cases) + sum(_kept(nested) for nested in suite.suites)
