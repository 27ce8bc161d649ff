"""The local mirror store, on real directories: reads, limits, traversal guards and ``find``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from processor.artifacts import (
    FILE_LIMITS,
    ArtifactTooLarge,
    ArtifactUnavailable,
    UnsupportedLocation,
)
from processor.artifacts.mirror import MirrorArtifactStore

LIMIT = 64


def _put(root: Path, key: str, data: bytes = b"{}") -> Path:
    """Write ``data`` at ``root/key``, creating folders on the way."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Make a mirror root in the test's directory, beside a folder holding a secret."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _put(tmp_path, "outside/secret.json", b'{"secret": true}')
    return mirror


@pytest.fixture
def store(root: Path) -> MirrorArtifactStore:
    """Return a mirror store with a small size limit."""
    return MirrorArtifactStore(root, max_bytes=LIMIT)


def test_reads_a_gs_file_from_bucket_and_path(root: Path, store: MirrorArtifactStore) -> None:
    """gs://BUCKET/PATH/NAME is read from ROOT/BUCKET/PATH/NAME."""
    _put(root, "kubernetes-jenkins/logs/ci-foo/1/prowjob.json", b'{"kind": "ProwJob"}')
    assert store.read("gs://kubernetes-jenkins/logs/ci-foo/1", "prowjob.json") == (
        b'{"kind": "ProwJob"}'
    )


def test_reads_an_s3_file_from_its_own_directory(root: Path, store: MirrorArtifactStore) -> None:
    """s3://BUCKET/PATH/NAME is read from ROOT/s3/BUCKET/PATH/NAME."""
    _put(root, "s3/minio-logs/logs/job/7/started.json", b'{"timestamp": 1}')
    assert store.read("s3://minio-logs/logs/job/7", "started.json") == b'{"timestamp": 1}'


def test_s3_and_gs_buckets_of_one_name_never_share_a_folder(
    root: Path, store: MirrorArtifactStore
) -> None:
    """gs://B and s3://B are different owners: each reads only its own files."""
    _put(root, "b/logs/j/1/started.json", b"gcs")
    _put(root, "s3/b/logs/j/2/started.json", b"s3")
    assert store.read("s3://b/logs/j/1", "started.json") is None
    assert store.read("gs://b/logs/j/2", "started.json") is None
    assert store.read("gs://b/logs/j/1", "started.json") == b"gcs"
    assert store.read("s3://b/logs/j/2", "started.json") == b"s3"


def test_a_gcs_bucket_named_s3_cannot_reach_the_s3_side(
    root: Path, store: MirrorArtifactStore
) -> None:
    """gs://s3/B/... would be ROOT/s3/B/...: refused, as GCS has no bucket called s3."""
    _put(root, "s3/minio/logs/j/1/prowjob.json")
    with pytest.raises(UnsupportedLocation, match="not a valid GCS bucket"):
        store.read("gs://s3/minio/logs/j/1", "prowjob.json")


def test_reads_a_file_below_the_folder(root: Path, store: MirrorArtifactStore) -> None:
    """A name with sub-folders (artifacts/...) is read from below the folder."""
    _put(root, "b/logs/j/1/artifacts/junit.xml", b"<testsuites/>")
    assert store.read("gs://b/logs/j/1", "artifacts/junit.xml") == b"<testsuites/>"


def test_missing_file_reads_as_none(root: Path, store: MirrorArtifactStore) -> None:
    """A file that is not there is None, not an error."""
    (root / "b/logs/j/1").mkdir(parents=True)
    assert store.read("gs://b/logs/j/1", "podinfo.json") is None


def test_missing_bucket_reads_as_none(store: MirrorArtifactStore) -> None:
    """A bucket the mirror does not hold reads like a missing object."""
    assert store.read("gs://no-such-bucket/logs/j/1", "prowjob.json") is None


def test_a_file_in_place_of_a_folder_reads_as_none(root: Path, store: MirrorArtifactStore) -> None:
    """A path through a regular file (ENOTDIR) is a missing file."""
    _put(root, "b/logs/j", b"not a folder")
    assert store.read("gs://b/logs/j/1", "prowjob.json") is None


def test_a_directory_named_like_the_file_reads_as_none(
    root: Path, store: MirrorArtifactStore
) -> None:
    """A directory where the file should be is not a file."""
    (root / "b/logs/j/1/prowjob.json").mkdir(parents=True)
    assert store.read("gs://b/logs/j/1", "prowjob.json") is None


def test_a_fifo_reads_as_none_without_blocking(root: Path, store: MirrorArtifactStore) -> None:
    """A FIFO planted in the mirror is not a file, and opening it does not hang."""
    (root / "b/j/1").mkdir(parents=True)
    os.mkfifo(root / "b/j/1/prowjob.json")
    assert store.read("gs://b/j/1", "prowjob.json") is None


def test_an_overlong_name_reads_as_none(root: Path, store: MirrorArtifactStore) -> None:
    """A segment too long for the local file system cannot have been mirrored: None."""
    (root / "b").mkdir()
    assert store.read("gs://b/" + "x" * 300, "prowjob.json") is None


def test_a_file_of_exactly_the_limit_is_read(root: Path, store: MirrorArtifactStore) -> None:
    """The limit is inclusive: a file of exactly max_bytes is returned whole."""
    _put(root, "b/j/1/podinfo.json", b"x" * LIMIT)
    assert store.read("gs://b/j/1", "podinfo.json") == b"x" * LIMIT


def test_a_file_over_the_limit_is_refused(root: Path, store: MirrorArtifactStore) -> None:
    """One byte over max_bytes raises ArtifactTooLarge naming the file and the limit."""
    _put(root, "b/j/1/podinfo.json", b"x" * (LIMIT + 1))
    with pytest.raises(ArtifactTooLarge, match=r"gs://b/j/1/podinfo\.json") as raised:
        store.read("gs://b/j/1", "podinfo.json")
    assert raised.value.limit == LIMIT
    assert raised.value.location == "gs://b/j/1/podinfo.json"


def test_a_parsed_file_has_its_own_smaller_limit(root: Path) -> None:
    """started.json over its 64 KiB limit is refused even under a 32 MiB store limit."""
    store = MirrorArtifactStore(root, max_bytes=32 * 1024 * 1024)
    limit = FILE_LIMITS["started.json"]
    _put(root, "b/j/1/started.json", b" " * limit)
    _put(root, "b/j/2/started.json", b" " * (limit + 1))
    assert store.read("gs://b/j/1", "started.json") == b" " * limit
    with pytest.raises(ArtifactTooLarge, match=r"the limit for started\.json") as raised:
        store.read("gs://b/j/2", "started.json")
    assert raised.value.limit == limit


def test_a_huge_file_is_refused_by_its_size(root: Path, store: MirrorArtifactStore) -> None:
    """A 1 TiB (sparse) file is refused from its size, without reading it."""
    path = root / "b/j/1/build-log.txt"
    path.parent.mkdir(parents=True)
    with path.open("wb") as file:
        file.truncate(1 << 40)
    with pytest.raises(ArtifactTooLarge):
        store.read("gs://b/j/1", "build-log.txt")


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("gs://b/../../outside", "secret.json"),
        ("gs://../outside", "secret.json"),
        ("gs://b/j", "../../../outside/secret.json"),  # standalone: not a path
        ("gs://b/j", "/etc/passwd"),
    ],
)
def test_dot_dot_and_absolute_paths_are_refused(
    root: Path, store: MirrorArtifactStore, folder: str, name: str
) -> None:
    """Paths that climb with .. or start at / never reach the file system."""
    (root / "b/j").mkdir(parents=True)
    with pytest.raises(UnsupportedLocation):
        store.read(folder, name)


def test_a_symlinked_file_leading_outside_is_refused(
    root: Path, store: MirrorArtifactStore
) -> None:
    """A symlink inside the mirror that points outside it is not followed."""
    (root / "b/j/1").mkdir(parents=True)
    (root / "b/j/1/prowjob.json").symlink_to(root.parent / "outside/secret.json")
    with pytest.raises(UnsupportedLocation, match="outside the artifact mirror"):
        store.read("gs://b/j/1", "prowjob.json")


def test_a_symlinked_folder_leading_outside_is_refused(
    root: Path, store: MirrorArtifactStore
) -> None:
    """A symlinked directory on the way out of the mirror is refused too."""
    (root / "b").mkdir()
    (root / "b/escape").symlink_to(root.parent / "outside")
    with pytest.raises(UnsupportedLocation):
        store.read("gs://b/escape", "secret.json")


def test_a_symlinked_bucket_leading_outside_is_refused(
    root: Path, store: MirrorArtifactStore
) -> None:
    """A bucket directory that is a symlink out of the mirror is refused."""
    (root / "evil").symlink_to(root.parent / "outside")
    with pytest.raises(UnsupportedLocation):
        store.read("gs://evil", "secret.json")


def test_a_symlink_staying_inside_the_mirror_is_followed(
    root: Path, store: MirrorArtifactStore
) -> None:
    """A symlink to another file inside the mirror reads that file."""
    _put(root, "b/j/1/prowjob.json", b"one")
    (root / "b/j/2").mkdir()
    (root / "b/j/2/prowjob.json").symlink_to(root / "b/j/1/prowjob.json")
    assert store.read("gs://b/j/2", "prowjob.json") == b"one"


def test_a_mirror_reached_through_a_symlink_still_reads(tmp_path: Path, root: Path) -> None:
    """A root given through a symlink is resolved, so its files are inside it."""
    _put(root, "b/j/1/prowjob.json", b"one")
    (tmp_path / "link").symlink_to(root)
    assert MirrorArtifactStore(tmp_path / "link").read("gs://b/j/1", "prowjob.json") == b"one"


def test_a_symlink_loop_is_unavailable(root: Path, store: MirrorArtifactStore) -> None:
    """An OSError other than "not there" (here ELOOP) is ArtifactUnavailable, naming the file."""
    (root / "b/j/1").mkdir(parents=True)
    (root / "b/j/1/prowjob.json").symlink_to(root / "b/j/1/prowjob.json")
    with pytest.raises(ArtifactUnavailable, match=r"gs://b/j/1/prowjob\.json"):
        store.read("gs://b/j/1", "prowjob.json")


def test_a_vanished_mirror_root_is_unavailable(root: Path, store: MirrorArtifactStore) -> None:
    """An unmounted or removed mirror is ArtifactUnavailable, never "no such file"."""
    shutil.rmtree(root)
    with pytest.raises(ArtifactUnavailable, match="unmounted"):
        store.read("gs://b/j/1", "prowjob.json")


def test_a_negative_limit_is_rejected(root: Path) -> None:
    """max_bytes below zero is a programming error."""
    with pytest.raises(ValueError, match="max_bytes"):
        MirrorArtifactStore(root, max_bytes=-1)


def test_find_yields_run_folders_in_object_name_order(
    root: Path, store: MirrorArtifactStore
) -> None:
    """find() yields each folder holding the file, in GCS's lexicographic object-name order."""
    for run in ["2", "10", "1", "1-rerun"]:
        _put(root, f"b/logs/ci-foo/{run}/prowjob.json")
    assert list(store.find("gs://b/logs/ci-foo", "prowjob.json")) == [
        "gs://b/logs/ci-foo/1-rerun",  # "1-rerun/..." < "1/..." because "-" < "/"
        "gs://b/logs/ci-foo/1",
        "gs://b/logs/ci-foo/10",
        "gs://b/logs/ci-foo/2",
    ]


def test_find_skips_folders_without_the_file(root: Path, store: MirrorArtifactStore) -> None:
    """Folders holding other files only (a run still pending) are not yielded."""
    _put(root, "b/logs/j/1/prowjob.json")
    _put(root, "b/logs/j/2/started.json")
    _put(root, "b/logs/j/3/artifacts/prowjob.json.txt")
    assert list(store.find("gs://b/logs/j", "prowjob.json")) == ["gs://b/logs/j/1"]


def test_find_descends_into_nested_layouts(root: Path, store: MirrorArtifactStore) -> None:
    """Presubmit folders several levels down are found from a high prefix."""
    _put(root, "b/pr-logs/pull/org_repo/12/pull-test/100/prowjob.json")
    _put(root, "b/pr-logs/pull/batch/pull-test/200/prowjob.json")
    assert list(store.find("gs://b/pr-logs", "prowjob.json")) == [
        "gs://b/pr-logs/pull/batch/pull-test/200",
        "gs://b/pr-logs/pull/org_repo/12/pull-test/100",
    ]


def test_find_treats_the_prefix_as_a_folder(root: Path, store: MirrorArtifactStore) -> None:
    """A prefix names a folder: a sibling whose name merely starts the same is not searched."""
    _put(root, "b/logs/ci-foo/1/prowjob.json")
    _put(root, "b/logs/ci-foo-bar/2/prowjob.json")
    assert list(store.find("gs://b/logs/ci-foo", "prowjob.json")) == ["gs://b/logs/ci-foo/1"]


def test_find_yields_the_prefix_itself_when_it_holds_the_file(
    root: Path, store: MirrorArtifactStore
) -> None:
    """A prefix that is itself a run folder is yielded."""
    _put(root, "b/logs/j/1/prowjob.json")
    assert list(store.find("gs://b/logs/j/1", "prowjob.json")) == ["gs://b/logs/j/1"]


def test_find_never_yields_the_bucket_root(root: Path, store: MirrorArtifactStore) -> None:
    """A file directly in the bucket is no run folder (as on GCS)."""
    _put(root, "b/prowjob.json")
    _put(root, "b/logs/j/1/prowjob.json")
    assert list(store.find("gs://b", "prowjob.json")) == ["gs://b/logs/j/1"]


def test_find_keeps_the_s3_scheme(root: Path, store: MirrorArtifactStore) -> None:
    """Folders found under an s3:// prefix are s3:// URLs."""
    _put(root, "s3/minio/logs/j/1/prowjob.json")
    assert list(store.find("s3://minio/logs", "prowjob.json")) == ["s3://minio/logs/j/1"]


def test_find_under_a_missing_prefix_yields_nothing(root: Path, store: MirrorArtifactStore) -> None:
    """A prefix with nothing under it is an empty result, as a GCS listing would be."""
    (root / "b").mkdir()
    assert list(store.find("gs://b/logs/nothing-here", "prowjob.json")) == []


def test_find_in_a_missing_bucket_is_refused(store: MirrorArtifactStore) -> None:
    """A bucket the mirror does not hold is UnsupportedLocation, naming the bucket."""
    with pytest.raises(UnsupportedLocation, match="no-such-bucket"):
        store.find("gs://no-such-bucket/logs", "prowjob.json")


def test_find_does_not_follow_symlinked_directories(root: Path, store: MirrorArtifactStore) -> None:
    """A symlinked directory (possibly leading outside, or looping) is not walked."""
    _put(root, "b/logs/j/1/prowjob.json")
    (root / "b/logs/j/loop").symlink_to(root / "b/logs")
    _put(root.parent, "outside/run/prowjob.json")
    (root / "b/logs/j/escape").symlink_to(root.parent / "outside")
    assert list(store.find("gs://b/logs", "prowjob.json")) == ["gs://b/logs/j/1"]


def test_find_refuses_a_prefix_leading_outside(root: Path, store: MirrorArtifactStore) -> None:
    """A prefix that resolves outside the mirror is refused before walking."""
    (root / "b").mkdir()
    (root / "b/escape").symlink_to(root.parent / "outside")
    with pytest.raises(UnsupportedLocation):
        store.find("gs://b/escape", "prowjob.json")


@pytest.mark.parametrize("name", ["", "a/prowjob.json", "..", "."])
def test_find_needs_a_plain_file_name(store: MirrorArtifactStore, name: str) -> None:
    """find() matches one path segment; anything else is refused."""
    with pytest.raises(UnsupportedLocation):
        store.find("gs://b/logs", name)


def test_find_walks_lazily(root: Path, store: MirrorArtifactStore) -> None:
    """A file added to a later folder after the first result is found: it was not walked yet."""
    _put(root, "b/logs/j/1/prowjob.json")
    (root / "b/logs/j/2").mkdir()
    folders = store.find("gs://b/logs/j", "prowjob.json")
    assert next(folders) == "gs://b/logs/j/1"
    _put(root, "b/logs/j/2/prowjob.json")
    assert list(folders) == ["gs://b/logs/j/2"]
