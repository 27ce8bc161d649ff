"""One message's reads on the shared pool: files chosen from a listing start when it answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from support.memory_store import MemoryArtifactStore

from processor.artifacts import ListedFile
from processor.artifacts.fetch import ReadPool

FOLDER = "gs://bucket/logs/job/1"
LISTING = ("artifacts", "junit*.xml", 10)


class GatedListing:
    """A store whose listing answers only when the test opens the gate."""

    def __init__(self, inner: MemoryArtifactStore) -> None:
        """Read through to ``inner``; hold listings until :attr:`gate` is set."""
        self._inner = inner
        self.gate = threading.Event()
        self.listed = threading.Event()

    def read(self, folder: str, name: str) -> bytes | None:
        """Read through."""
        return self._inner.read(folder, name)

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """List once the gate opens."""
        self.gate.wait(timeout=5)
        try:
            return self._inner.list_files(folder, under, name_glob, limit)
        finally:
            self.listed.set()

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Not used here."""
        return self._inner.find(prefix, name)


def store_with_two_junit_files() -> MemoryArtifactStore:
    """Return a folder with prowjob.json and two JUnit files."""
    store = MemoryArtifactStore()
    store.put(FOLDER, "prowjob.json", b"{}")
    store.put(FOLDER, "artifacts/junit_01.xml", b"<testsuites/>")
    store.put(FOLDER, "artifacts/junit_02.xml", b"<testsuites/>")
    return store


def test_files_chosen_from_the_listing_are_read_without_being_asked_for() -> None:
    """The chosen files are read as soon as the listing answers, before anyone asks for them."""
    inner = store_with_two_junit_files()
    gated = GatedListing(inner)
    gated.gate.set()
    fetched = ReadPool(gated, concurrency=4).fetch(
        FOLDER, ("prowjob.json",), LISTING, then=lambda listed: [item.name for item in listed]
    )
    listed = fetched.list_files(FOLDER, *LISTING)
    assert [item.name for item in listed] == ["artifacts/junit_01.xml", "artifacts/junit_02.xml"]
    assert fetched.read(FOLDER, "artifacts/junit_02.xml") == b"<testsuites/>"
    assert fetched.reads == 3  # the listing and the two files; prowjob.json was never asked for
    assert inner.reads == 2


class Watched:
    """Names to read, noting whether anyone went through them."""

    def __init__(self, names: list[str]) -> None:
        """Offer ``names``."""
        self._names = names
        self.offered = threading.Event()
        self.taken = threading.Event()

    def choose(self, listed: list[ListedFile]) -> Watched:
        """Offer the names whatever was listed (the ``then`` callback)."""
        del listed
        self.offered.set()
        return self

    def __iter__(self) -> Iterator[str]:
        """Go through the names (what starting their reads does)."""
        self.taken.set()
        return iter(self._names)


def test_a_listing_that_answers_after_discard_starts_no_read() -> None:
    """A message that stopped early (discard) spends no reads on what its listing names later."""
    inner = store_with_two_junit_files()
    gated = GatedListing(inner)
    watched = Watched(["artifacts/junit_01.xml"])
    fetched = ReadPool(gated, concurrency=4).fetch(
        FOLDER, ("prowjob.json",), LISTING, then=watched.choose
    )
    fetched.discard()
    gated.gate.set()
    assert watched.offered.wait(timeout=5)
    assert not watched.taken.wait(timeout=0.5)
    assert (fetched.reads, inner.reads) == (1, 0)
