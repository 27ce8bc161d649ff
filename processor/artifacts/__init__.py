"""Readers for a job's artifact folder (``gcs_path`` in crier's message).

The core never does I/O itself: it asks an :class:`ArtifactStore` for files by name. A store answers
with the file's bytes, or ``None`` when the file is not there (a normal answer: podinfo.json is
sampled, a job aborted before its pod ran has no started.json, ...). Everything else is an exception
from the small taxonomy below, so callers can tell "try again later" from "this will never work".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

DEFAULT_MAX_ARTIFACT_BYTES = 32 * 1024 * 1024
"""Refuse larger files: a podinfo.json with its Node object is ~100 KiB; 32 MiB is far past sane."""


class ArtifactError(Exception):
    """Base of the errors an artifact store raises; the message says what and where."""


class ArtifactUnavailable(ArtifactError):
    """A transient failure (timeout, 5xx, 429, permission being fixed): retrying may succeed."""


class ArtifactTooLarge(ArtifactError):
    """The file exceeds the store's size limit and was not read."""

    def __init__(self, location: str, limit: int) -> None:
        """Name the file and the limit it exceeds."""
        super().__init__(
            f"{location} is larger than the {limit}-byte artifact limit; refusing to read it "
            "(raise PROWTRACE_MAX_ARTIFACT_BYTES if this file is legitimately that large)"
        )
        self.location = location
        self.limit = limit


class UnsupportedLocation(ArtifactError):
    """The folder's scheme is not served by this store (e.g. ``s3://`` on the GCS store)."""


class ArtifactStore(Protocol):
    """Reads files from job artifact folders such as ``gs://bucket/logs/job/123``."""

    def read(self, folder: str, name: str) -> bytes | None:
        """Return the bytes of ``folder/name``, or ``None`` if that file does not exist.

        Raises :class:`ArtifactUnavailable` on transient failures, :class:`ArtifactTooLarge` when
        the file exceeds the size limit, :class:`UnsupportedLocation` when ``folder``'s scheme is
        not served by this store.
        """
        ...

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Yield the folders under ``prefix`` (a ``gs://``/``s3://`` URL) that hold a file ``name``.

        Used by backfill to discover finished runs (folders holding ``prowjob.json``). Folders are
        yielded as URLs in the same scheme as ``prefix``, without a trailing slash.
        """
        ...
