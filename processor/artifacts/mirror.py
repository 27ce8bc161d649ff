"""An artifact store over a local directory that mirrors buckets: ``gs://B/P`` is ``ROOT/B/P``.

``s3://B/P`` is ``ROOT/s3/B/P``: one mirror holds GCS and S3/MinIO buckets, and ``s3://B`` never
reads ``gs://B``'s folder (the same name in two providers is two owners). No GCS bucket can be
called ``s3`` (names have at least 3 characters), so ``gs://s3/...`` is refused rather than
allowed to reach the S3 side.

What the errors mean here (see :mod:`processor.artifacts` for what the caller should do):

- ``None``: there is no regular file at that path (missing, a directory, a FIFO, ...).
- :class:`~processor.artifacts.UnsupportedLocation`: the URL is malformed, or it (or a symlink on
  its way) leads outside ``ROOT``: a hostile ``gcs_path`` never reads anything outside the mirror.
  :meth:`MirrorArtifactStore.find` also raises it for a bucket the mirror does not hold.
- :class:`~processor.artifacts.ArtifactTooLarge`: the file's size exceeds ``max_bytes``; it was
  not read.
- :class:`~processor.artifacts.ArtifactUnavailable`: an I/O error (EIO, EACCES, a stale NFS
  handle, ...) or a mirror root that is not there (unmounted), so the answer may differ later.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

from processor.artifacts import (
    DEFAULT_MAX_ARTIFACT_BYTES,
    ArtifactTooLarge,
    ArtifactUnavailable,
    ListedFile,
    Location,
    UnsupportedLocation,
    parse_location,
    read_limit,
)

_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})
"""Errors that mean "no file there", like a 404 from a bucket (a name too long for the local
file system cannot have been mirrored). Every other OSError is :class:`ArtifactUnavailable`."""

_READ_CHUNK_BYTES = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


class MirrorArtifactStore:
    """Reads artifacts from ``root/BUCKET/PATH``, never from outside ``root``."""

    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES) -> None:
        """Serve the mirror at ``root``; refuse files larger than ``max_bytes``."""
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        # Resolved once: every path is checked against the real root, symlinks and all.
        self._root = Path(os.path.realpath(root))
        self._root_text = str(self._root)
        self._root_prefix = self._root_text.rstrip("/") + "/"
        self._max_bytes = max_bytes

    def read(self, folder: str, name: str) -> bytes | None:
        """Return the bytes of ``folder/name`` from the mirror, or ``None`` if there is none."""
        location = parse_location(folder)
        url = f"{location.url}/{name}"
        key = location.key(name)
        bucket = _bucket_dir(location)
        opened = self._open_fast(bucket, key)
        path: Path | str
        if opened is not None:
            descriptor, path = opened
        else:
            path = self._inside_root(bucket, key, url)
            try:
                # O_NONBLOCK: opening a FIFO planted in the mirror must not hang the reader.
                # O_NOFOLLOW: ``path`` is resolved: a symlink here was swapped in after the check.
                descriptor = os.open(path, _OPEN_FLAGS)
            except OSError as exc:
                if exc.errno in _ABSENT:
                    self._require_root()
                    return None
                raise ArtifactUnavailable(f"cannot open {url} at {path}: {exc.strerror}") from exc
        return self._read_open(descriptor, url, path, read_limit(name, self._max_bytes))

    def _open_fast(self, bucket: str, key: str) -> tuple[int, str] | None:
        """Open ``root/bucket/key`` if it is a file inside the root; ``None``: take the slow path.

        Resolving the path with ``realpath`` first (an ``lstat`` per component) was most of a
        read's cost. Here the kernel resolves it in ``open`` and ``/proc/self/fd`` tells where the
        file really is; only when that is inside the root is the descriptor kept. Every other case
        (no such file, a symlink as the last component, no /proc, a path outside the root) goes
        the slow way, which gives the exact answer it always gave.
        """
        try:
            descriptor = os.open(f"{self._root_text}/{bucket}/{key}", _OPEN_FLAGS)
        except OSError:
            return None
        try:
            real = os.readlink(f"/proc/self/fd/{descriptor}")  # noqa: PTH115 - a str is all we need, fast
        except OSError:
            real = ""
        if real.startswith(self._root_prefix):
            return descriptor, real
        os.close(descriptor)
        return None

    @staticmethod
    def _read_open(descriptor: int, url: str, path: Path | str, limit: int) -> bytes | None:
        """Read an opened artifact (closing it): ``None`` if it is not a regular file."""
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                return None
            if status.st_size > limit:
                raise ArtifactTooLarge(url, limit)
            # One byte past the limit: a file that grew since fstat is still refused.
            data = _read_up_to(descriptor, limit + 1)
        except OSError as exc:
            raise ArtifactUnavailable(f"cannot read {url} at {path}: {exc.strerror}") from exc
        finally:
            os.close(descriptor)
        if len(data) > limit:
            raise ArtifactTooLarge(url, limit)
        return data

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """Return up to ``limit`` regular files below ``folder/under/`` whose name matches.

        The same rule and order as the GCS store's listing; symlinks are not followed.
        """
        location = parse_location(folder)
        key = location.key(under)
        start = self._inside_root(location.bucket, key, location.url)
        found: list[ListedFile] = []
        for path, size in _files_below(start, location.child(key)):
            if len(found) >= limit:
                break
            if fnmatchcase(path.rsplit("/", 1)[-1], name_glob):
                relative = path.removeprefix(f"{location.path}/") if location.path else path
                found.append(ListedFile(name=relative, size=size))
        if not found:
            self._require_root()
        return found

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Yield the folders under ``prefix`` holding a file ``name``, walking lazily.

        Folders come in the lexicographic order of their ``name`` file's object name, the order
        in which Cloud Storage lists objects, so both stores yield the same sequence. The bucket
        root is never yielded (as with GCS). Symlinked directories are not followed (no loops, no
        escapes). ``name`` must be a single segment.
        """
        location = parse_location(prefix)
        _check_segment(name)
        bucket = _bucket_dir(location)
        bucket_dir = self._inside_root(bucket, "", location.url)
        if not bucket_dir.is_dir():
            self._require_root()
            raise UnsupportedLocation(
                f"the artifact mirror {self._root} holds no bucket {location.bucket!r} "
                f"(looked for {bucket_dir})"
            )
        start = self._inside_root(bucket, location.path, location.url)
        return _folders_holding(start, location, name)

    def _inside_root(self, bucket: str, key: str, url: str) -> Path:
        """Return the real path of ``root/bucket/key``, refusing one that leaves ``root``."""
        lexical = self._root / bucket / key if key else self._root / bucket
        real = Path(os.path.realpath(lexical))
        if real != self._root and not real.is_relative_to(self._root):
            raise UnsupportedLocation(
                f"{url} resolves to {real}, outside the artifact mirror {self._root}; refusing it"
            )
        return real

    def _require_root(self) -> None:
        """Raise if the mirror itself is gone, so an unmounted mirror never reads as "no file"."""
        if not self._root.is_dir():
            raise ArtifactUnavailable(
                f"the artifact mirror {self._root} is not a directory (unmounted or removed?)"
            )


S3_DIRECTORY = "s3"


def _bucket_dir(location: Location) -> str:
    """Return the mirror directory (relative to the root) of ``location``'s bucket."""
    if location.scheme == "s3":
        return f"{S3_DIRECTORY}/{location.bucket}"
    if location.bucket == S3_DIRECTORY:
        raise UnsupportedLocation(
            f"{location.url}: 's3' is not a valid GCS bucket name (at least 3 characters), and "
            "the mirror keeps S3 buckets under that directory"
        )
    return location.bucket


def _read_up_to(descriptor: int, limit: int) -> bytes:
    """Read until end of file or ``limit`` bytes, whichever comes first."""
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, _READ_CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _check_segment(name: str) -> None:
    """Refuse a ``find`` name that is not one plain path segment."""
    if not name or "/" in name or name in {".", ".."}:
        raise UnsupportedLocation(f"find() needs a plain file name, not {name!r}")


def _folders_holding(directory: Path, folder: Location, name: str) -> Iterator[str]:
    """Yield ``folder``'s URL and those of its subfolders that hold a regular file ``name``."""
    for entry, is_dir in _sorted_entries(directory, folder):
        if is_dir:
            child = f"{folder.path}/{entry.name}" if folder.path else entry.name
            yield from _folders_holding(Path(entry.path), folder.child(child), name)
        elif entry.name == name and folder.path and entry.is_file():
            yield folder.url


def _files_below(directory: Path, folder: Location) -> Iterator[tuple[str, int]]:
    """Yield the object key and size of each regular file below ``directory``, in key order."""
    for entry, is_dir in _sorted_entries(directory, folder):
        key = f"{folder.path}/{entry.name}" if folder.path else entry.name
        if is_dir:
            yield from _files_below(Path(entry.path), folder.child(key))
        elif entry.is_file(follow_symlinks=False):
            yield key, entry.stat(follow_symlinks=False).st_size


def _sorted_entries(directory: Path, folder: Location) -> list[tuple[os.DirEntry[str], bool]]:
    """List ``directory`` in object-name order: a directory ``d`` sorts as ``d/``, as in GCS."""
    try:
        with os.scandir(directory) as scan:
            entries = [(entry, entry.is_dir(follow_symlinks=False)) for entry in scan]
    except OSError as exc:
        if exc.errno in _ABSENT:
            return []  # a prefix with nothing under it, or a folder removed while walking
        raise ArtifactUnavailable(
            f"cannot list {folder.url} at {directory}: {exc.strerror}"
        ) from exc
    return sorted(entries, key=lambda item: item[0].name + "/" if item[1] else item[0].name)
