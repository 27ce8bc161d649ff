"""Readers for a job's artifact folder (``gcs_path`` in crier's message).

The core never does I/O itself: it asks an :class:`ArtifactStore` for files by name. A store answers
with the file's bytes, or ``None`` when the file is not there (a normal answer: podinfo.json is
sampled, a job aborted before its pod ran has no started.json, ...). Everything else is an exception
from the small taxonomy below, so callers can tell "try again later" from "this will never work".

What each exception means for the caller:

- :class:`ArtifactUnavailable`: the answer is unknown *for now* (timeout, 5xx, 429, a permission an
  operator can grant, an I/O error on the mirror). Do not ack the message: let Pub/Sub redeliver it,
  and its retry policy / dead-letter topic bound the attempts.
- :class:`ArtifactTooLarge`: the file is there but was not read. Carry on without it (the trace just
  lacks what that file would have added); retrying gives the same answer.
- :class:`UnsupportedLocation`: this store can never read that folder (``s3://`` on the GCS store,
  a malformed or hostile URL, a bucket that does not exist). Carry on without artifacts; retrying
  gives the same answer.

Stores: :class:`processor.artifacts.gcs.GcsArtifactStore` (Cloud Storage through an injected
client) and :class:`processor.artifacts.mirror.MirrorArtifactStore` (a local directory laid out as
``ROOT/BUCKET/PATH``); :func:`open_store` builds one from a command-line spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from processor.core import facts

DEFAULT_MAX_ARTIFACT_BYTES = 32 * 1024 * 1024
"""Refuse larger files: a podinfo.json with its Node object is ~100 KiB; 32 MiB is far past sane."""


FILE_LIMITS: Mapping[str, int] = {
    facts.PROWJOB: 1024 * 1024,
    facts.STARTED: 64 * 1024,
    facts.FINISHED: 1024 * 1024,
    facts.PODINFO: 2 * 1024 * 1024,
    facts.CLONE_RECORDS: 2 * 1024 * 1024,
}
"""Bytes each file prowtrace parses may have: ~20x the largest seen in real Prow (prowjob.json
~50 KiB with a big pod spec, podinfo.json ~100 KiB with its Node, clone-records.json of a
multi-repo job ~100 KiB, started.json ~1 KiB). Reads stop there, so neither the read nor the parse
of a hostile file (33 MB of nested empty lists took 877 MiB to parse) can cost more."""


def read_limit(name: str, max_bytes: int) -> int:
    """Return how many bytes of file ``name`` a store with limit ``max_bytes`` may read."""
    return min(max_bytes, FILE_LIMITS.get(name, max_bytes))


class ArtifactError(Exception):
    """Base of the errors an artifact store raises; the message says what and where."""


class ArtifactUnavailable(ArtifactError):
    """A transient failure (timeout, 5xx, 429, permission being fixed): retrying may succeed."""


class ArtifactTooLarge(ArtifactError):
    """The file exceeds the store's size limit and was not read."""

    def __init__(self, location: str, limit: int) -> None:
        """Name the file and the limit it exceeds."""
        name = location.rsplit("/", 1)[-1]
        hint = (
            f"the limit for {name}, far above what Prow writes"
            if name in FILE_LIMITS and limit == FILE_LIMITS[name]
            else "raise PROWTRACE_MAX_ARTIFACT_BYTES if this file is legitimately that large"
        )
        super().__init__(
            f"{location} is larger than the {limit}-byte artifact limit; refusing to read it "
            f"({hint})"
        )
        self.location = location
        self.limit = limit


class UnsupportedLocation(ArtifactError):
    """The folder's scheme is not served by this store (e.g. ``s3://`` on the GCS store)."""


@dataclass(frozen=True, slots=True)
class ListedFile:
    """A file found by :meth:`ArtifactStore.list_files`: its path inside the folder, its size."""

    name: str
    size: int


class ArtifactStore(Protocol):
    """Reads files from job artifact folders such as ``gs://bucket/logs/job/123``."""

    def read(self, folder: str, name: str) -> bytes | None:
        """Return the bytes of ``folder/name``, or ``None`` if that file does not exist.

        Raises :class:`ArtifactUnavailable` on transient failures, :class:`ArtifactTooLarge` when
        the file exceeds the size limit, :class:`UnsupportedLocation` when ``folder``'s scheme is
        not served by this store.
        """
        ...

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """Return the files below ``folder/under/`` (at any depth) whose name matches a glob.

        ``name_glob`` applies to a file's last path segment, in :func:`fnmatch.fnmatchcase`
        syntax without ``/``. Names are relative to ``folder`` (``artifacts/junit_01.xml``), in
        object-name order, at most ``limit`` of them; ``[]`` when there are none. One listing
        (on GCS: one ``objects.list`` request per 1,000 names, filtered server-side). Raises as
        :meth:`read` does.
        """
        ...

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Yield the folders under ``prefix`` (a ``gs://``/``s3://`` URL) that hold a file ``name``.

        Used by backfill to discover finished runs (folders holding ``prowjob.json``). Folders are
        yielded as URLs in the same scheme as ``prefix``, without a trailing slash.
        """
        ...


class StoreSetupError(Exception):
    """:func:`open_store` could not build the store; the message says what to fix."""


SCHEMES = ("gs", "s3")
"""URL schemes a job's ``gcs_path`` can carry (Prow also supports S3/MinIO storage)."""

_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,221}")
"""GCS/S3 bucket names (and legacy S3 ones with capitals): never ``.``/``..``, never a ``/``."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Location:
    """A parsed artifact folder URL ``SCHEME://BUCKET/PATH`` (``path`` is ``""`` at bucket root).

    ``path`` never has a leading or trailing slash and none of its segments is empty, ``.`` or
    ``..``, so joining it under a directory can never climb out of that directory.
    """

    scheme: str
    bucket: str
    path: str

    @property
    def url(self) -> str:
        """The folder as a URL without a trailing slash."""
        base = f"{self.scheme}://{self.bucket}"
        return f"{base}/{self.path}" if self.path else base

    def key(self, name: str) -> str:
        """Return the object name of file ``name`` (a relative path) inside this folder."""
        relative = _check_relative(name, what="file name")
        return f"{self.path}/{relative}" if self.path else relative

    def child(self, key: str) -> Location:
        """Return the folder whose object-name prefix is ``key`` in the same bucket."""
        return Location(self.scheme, self.bucket, key)


def parse_location(url: str) -> Location:
    """Split an artifact folder URL into scheme, bucket and path, refusing anything unsafe.

    One trailing slash is tolerated. Raises :class:`UnsupportedLocation` for an unknown scheme, a
    missing or malformed bucket, and empty, ``.`` or ``..`` segments or control characters in the
    path (all legal in some object stores, none ever written by Prow, and all ways to make a path
    mean something other than what it says).
    """
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in SCHEMES:
        raise UnsupportedLocation(
            f"{url!r} is not an artifact folder URL: expected gs://BUCKET/PATH or s3://BUCKET/PATH"
        )
    bucket, _, path = rest.partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise UnsupportedLocation(f"{url!r} has no valid bucket name after {scheme}://")
    path = path.removesuffix("/")
    if path:
        _check_relative(path, what=f"path of {url!r}")
    return Location(scheme, bucket, path)


def _check_relative(path: str, *, what: str) -> str:
    """Return ``path`` if it is a plain relative path, else raise :class:`UnsupportedLocation`."""
    if _CONTROL.search(path):
        raise UnsupportedLocation(f"the {what} contains control characters: {path!r}")
    for segment in path.split("/"):
        if segment in {"", ".", ".."}:
            raise UnsupportedLocation(
                f"the {what} has an empty, '.' or '..' segment (or is absolute): {path!r}"
            )
    return path


GCS_REQUEST_TIMEOUT_SECONDS = 10.0
GCS_RETRY_DEADLINE_SECONDS = 20.0


def open_store(spec: str, *, max_bytes: int) -> ArtifactStore | None:
    """Build the artifact store a command-line ``spec`` names.

    ``gcs``: Cloud Storage with Application Default Credentials, or the emulator at
    ``STORAGE_EMULATOR_HOST`` without credentials. ``none``: no store (traces are built from the
    messages alone). Anything else is the path of a mirror directory (write ``./gcs`` for a
    directory that is called ``gcs``). Raises :class:`StoreSetupError` when the store cannot be
    built (missing directory, no credentials).
    """
    if spec == "none":
        return None
    if spec == "gcs":
        # Imported here: the Cloud Storage client is heavy and only the gcs spec needs it.
        from google.cloud.storage.retry import DEFAULT_RETRY  # noqa: PLC0415

        from processor.artifacts.gcs import GcsArtifactStore, client_from_environment  # noqa: PLC0415

        # One message must finish well inside Pub/Sub's ack deadline and the push request
        # timeout; retrying across deliveries is the subscription's job, not this read's. The
        # first unavailable read ends the message (RETRY), so this bounds the whole message.
        return GcsArtifactStore(
            client_from_environment(),
            max_bytes=max_bytes,
            timeout=GCS_REQUEST_TIMEOUT_SECONDS,
            retry=DEFAULT_RETRY.with_timeout(GCS_RETRY_DEADLINE_SECONDS),
        )
    # Imported here: the stores import this module's names, so a top-level import would be a cycle.
    from processor.artifacts.mirror import MirrorArtifactStore  # noqa: PLC0415

    root = Path(spec)
    if not root.is_dir():
        raise StoreSetupError(
            f"artifact store {spec!r} is neither 'gcs', 'none' nor an existing directory "
            "(a mirror laid out as DIR/BUCKET/PATH)"
        )
    return MirrorArtifactStore(root, max_bytes=max_bytes)
