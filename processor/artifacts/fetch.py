"""Read the files a message needs at once, on a bounded pool, and count the reads.

A terminal message needs up to five files from one folder. Read one after another they cost five
storage round trips (~150 ms at Cloud Storage's median, far more at its tail); issued together
they cost about one. Every file a message needs is requested at the same time, ``prowjob.json``
included: which files are *required* depends on it (``podinfo.json`` only when the job had a pod),
but which files to *read* does not, so waiting for it first would add a round trip to every
message to save reads only for messages whose ``prowjob.json`` is late.

The pool is shared by every message the process handles, so the reads in flight are bounded by
its size plus one per message being handled (each handling thread reads its first file itself),
whatever the number of messages; a read waiting for a free worker simply queues.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from processor.artifacts import ArtifactStore, ListedFile

Listing = tuple[str, str, int]
"""A listing to start with the reads: ``under``, ``name_glob``, ``limit`` of ``list_files``."""
Choose = Callable[[list[ListedFile]], Iterable[str]]
"""Given a listing's answer, the files to start reading at once (e.g. the JUnit files in bounds)."""

DEFAULT_READ_CONCURRENCY = 64
"""Reads in flight per process: enough for 32 pull callbacks x a few files at storage latency."""


class ReadPool:
    """A bounded thread pool that prefetches files from an :class:`ArtifactStore`."""

    def __init__(
        self, store: ArtifactStore, *, concurrency: int = DEFAULT_READ_CONCURRENCY
    ) -> None:
        """Read from ``store`` with at most ``concurrency`` pooled reads in flight.

        ``concurrency`` 0 reads every file on the asking thread, one after another: for a local
        mirror, whose reads take microseconds, handing them to other threads costs more CPU than
        it saves time.
        """
        if concurrency < 0:
            raise ValueError(f"read concurrency must be at least 0, not {concurrency}")
        self.store = store
        self._pool = (
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="prowtrace-read")
            if concurrency
            else None
        )

    def fetch(
        self,
        folder: str,
        names: Sequence[str],
        listing: Listing | None = None,
        then: Choose | None = None,
    ) -> Fetched:
        """Start reading ``names`` (and ``listing``) from ``folder`` at once; answers wait in it.

        The first name is left for the caller's own thread to read when it asks for it (it is
        the one the caller asks for first), which saves a thread hand-off per message, and all
        of them for a message that reads one file. ``then`` names, from the listing's answer,
        files to start reading the moment it arrives, not when the caller gets to it.
        """
        if self._pool is None:
            return Fetched(self, folder, ())
        return Fetched(self, folder, names[1:], listing, then)

    @property
    def concurrent(self) -> bool:
        """Whether reads go to the pool (``False``: every read on the asking thread)."""
        return self._pool is not None

    def submit(self, folder: str, name: str) -> Future[bytes | None]:
        """Queue one read."""
        if self._pool is None:
            raise RuntimeError("this read pool reads inline (concurrency 0)")
        return self._pool.submit(self.store.read, folder, name)

    def submit_listing(self, folder: str, listing: Listing) -> Future[list[ListedFile]]:
        """Queue one listing."""
        if self._pool is None:
            raise RuntimeError("this read pool reads inline (concurrency 0)")
        return self._pool.submit(self.store.list_files, folder, *listing)


class Fetched:
    """One message's reads: an :class:`ArtifactStore` that answers from reads already under way.

    A file that was not prefetched is read when asked for (on the asking thread), so callers may
    read more files than they announced. Errors are raised when the file is asked for, as the
    store would have.
    """

    def __init__(
        self,
        pool: ReadPool,
        folder: str,
        names: Iterable[str],
        listing: Listing | None = None,
        then: Choose | None = None,
    ) -> None:
        """Submit a read of every one of ``names`` in ``folder``, and ``listing`` if given.

        With ``then``, the files it chooses from the listing's answer are submitted as soon as
        that answer arrives (on the pool's thread that listed).
        """
        self._pool = pool
        self._folder = folder
        self._lock = threading.Lock()
        self._closed = False
        self._pending = {name: pool.submit(folder, name) for name in dict.fromkeys(names)}
        self._requested = set(self._pending)
        """Every name submitted for this message: a name is never read twice by prefetching."""
        self.reads = len(self._pending) + (listing is not None)
        """Reads (and listings) issued for this message so far: each a billed storage operation."""
        self._listing = (listing, pool.submit_listing(folder, listing)) if listing else None
        if self._listing is not None and then is not None:
            self._listing[1].add_done_callback(lambda listed: self._chosen(listed, then))

    def _chosen(self, listed: Future[list[ListedFile]], then: Choose) -> None:
        if not listed.cancelled() and listed.exception() is None:
            self.prefetch(self._folder, then(listed.result()))

    def prefetch(self, folder: str, names: Iterable[str]) -> None:
        """Start reading ``names`` too, on the same pool (a mirror's pool reads them when asked).

        Names already requested for this message are not read again; after :meth:`discard`
        nothing more is started.
        """
        if folder != self._folder or not self._pool.concurrent:
            return
        with self._lock:
            if self._closed:
                return
            for name in names:
                if name not in self._requested:
                    self._requested.add(name)
                    self._pending[name] = self._pool.submit(folder, name)
                    self.reads += 1

    def read(self, folder: str, name: str) -> bytes | None:
        """Return the prefetched answer for ``name`` (or read it now), raising as the store does."""
        with self._lock:
            future = self._pending.pop(name, None) if folder == self._folder else None
        if future is None:
            with self._lock:
                self.reads += 1
            return self._pool.store.read(folder, name)
        return future.result()

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """Return the listing started with the reads, or list now, counting it as one request."""
        with self._lock:
            started, self._listing = self._listing, None
        if (
            started is not None
            and folder == self._folder
            and started[0] == (under, name_glob, limit)
        ):
            return started[1].result()
        if started is not None and started[1].cancel():
            with self._lock:
                self.reads -= 1
        with self._lock:
            self.reads += 1
        return self._pool.store.list_files(folder, under, name_glob, limit)

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Delegate listing to the store (never prefetched)."""
        return self._pool.store.find(prefix, name)

    def discard(self) -> None:
        """Cancel the reads nobody will ask for (the message stopped early)."""
        with self._lock:
            self._closed = True
            futures: list[Future[bytes | None] | Future[list[ListedFile]]] = [
                *self._pending.values()
            ]
            if self._listing is not None:
                futures.append(self._listing[1])
                self._listing = None
            for future in futures:
                if future.cancel():
                    self.reads -= 1
            self._pending.clear()
