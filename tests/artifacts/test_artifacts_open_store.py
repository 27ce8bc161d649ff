"""Building a store from its command-line spec (the gcs spec is tested with the emulator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.artifacts import ArtifactTooLarge, StoreSetupError, open_store
from processor.artifacts.gcs import BUCKET_METADATA_PROBE_VARIABLE, client_from_environment
from processor.artifacts.mirror import MirrorArtifactStore


def test_none_means_no_store() -> None:
    """The spec "none" gives no store: traces come from the messages alone."""
    assert open_store("none", max_bytes=1024) is None


def test_a_directory_gives_a_mirror_with_the_limit(tmp_path: Path) -> None:
    """An existing directory gives a mirror store over it, honouring max_bytes."""
    (tmp_path / "b/j/1").mkdir(parents=True)
    (tmp_path / "b/j/1/prowjob.json").write_bytes(b"12345")
    (tmp_path / "b/j/1/started.json").write_bytes(b"1234")
    store = open_store(str(tmp_path), max_bytes=4)
    assert isinstance(store, MirrorArtifactStore)
    assert store.read("gs://b/j/1", "started.json") == b"1234"
    with pytest.raises(ArtifactTooLarge):
        store.read("gs://b/j/1", "prowjob.json")


def test_a_missing_directory_is_a_setup_error(tmp_path: Path) -> None:
    """A spec that is neither gcs, none nor an existing directory says so, naming it."""
    with pytest.raises(StoreSetupError, match=r"'.*/nowhere' is neither 'gcs', 'none' nor"):
        open_store(str(tmp_path / "nowhere"), max_bytes=1024)


def test_a_file_is_not_a_mirror(tmp_path: Path) -> None:
    """A path to a regular file is refused like a missing directory."""
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StoreSetupError):
        open_store(str(tmp_path / "file"), max_bytes=1024)


def test_gcs_without_credentials_is_a_setup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the emulator and without usable ADC, building the client says what to provide."""
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    # Registered with monkeypatch so the variable client_from_environment sets is undone.
    monkeypatch.setenv(BUCKET_METADATA_PROBE_VARIABLE, "true")
    # A missing key file fails at once, before google-auth would look for a metadata server.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    with pytest.raises(StoreSetupError, match="Application Default Credentials"):
        client_from_environment()
