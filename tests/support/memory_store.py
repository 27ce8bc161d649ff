"""An in-memory :class:`~processor.artifacts.ArtifactStore` for tests of the pipeline.

It behaves like the real stores at the interface (``None`` for a missing file, the size limit,
scheme checks) and adds knobs the real ones lack: make a folder fail transiently, or count reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase

from processor.artifacts import (
    DEFAULT_MAX_ARTIFACT_BYTES,
    ArtifactTooLarge,
    ArtifactUnavailable,
    ListedFile,
    UnsupportedLocation,
)


class MemoryArtifactStore:
    """Files held in a dict keyed by ``(folder, name)``."""

    def __init__(
        self,
        files: Mapping[tuple[str, str], bytes] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
    ) -> None:
        """Start with ``files``; larger than ``max_bytes`` reads raise ArtifactTooLarge."""
        self._files = dict(files or {})
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.unavailable: set[str] = set()
        """Folders whose reads raise ArtifactUnavailable, as during a storage outage."""
        self.reads = 0

    def put(self, folder: str, name: str, data: bytes) -> None:
        """Write (or replace) a file."""
        with self._lock:
            self._files[(folder.rstrip("/"), name)] = data

    def delete(self, folder: str, name: str) -> None:
        """Remove a file if present."""
        with self._lock:
            self._files.pop((folder.rstrip("/"), name), None)

    def read(self, folder: str, name: str) -> bytes | None:
        """Return the file, ``None`` if absent; raise as the real stores do."""
        if not folder.startswith(("gs://", "s3://")):
            raise UnsupportedLocation(f"{folder!r} is not a gs:// or s3:// URL")
        folder = folder.rstrip("/")
        with self._lock:
            self.reads += 1
            if folder in self.unavailable:
                raise ArtifactUnavailable(f"{folder}/{name}: storage unavailable (simulated)")
            data = self._files.get((folder, name))
        if data is not None and len(data) > self.max_bytes:
            raise ArtifactTooLarge(f"{folder}/{name}", self.max_bytes)
        return data

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """Return the files below ``folder/under/`` whose last segment matches, sorted."""
        folder = folder.rstrip("/")
        with self._lock:
            if folder in self.unavailable:
                raise ArtifactUnavailable(f"{folder}/{under}: storage unavailable (simulated)")
            names = sorted(
                (name, len(data))
                for (held, name), data in self._files.items()
                if held == folder
                and name.startswith(f"{under}/")
                and fnmatchcase(name.rsplit("/", 1)[-1], name_glob)
            )
        return [ListedFile(name, size) for name, size in names[:limit]]

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Yield folders under ``prefix`` holding ``name``, sorted."""
        with self._lock:
            folders = sorted(
                folder
                for folder, file in self._files
                if file == name and folder.startswith(prefix.rstrip("/"))
            )
        yield from folders
