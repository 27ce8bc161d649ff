"""Parsing artifact folder URLs: what both stores accept, and what they refuse before any I/O."""

from __future__ import annotations

import pytest

from processor.artifacts import Location, UnsupportedLocation, parse_location


def test_gs_url_splits_into_scheme_bucket_and_path() -> None:
    """A gs:// folder splits into its scheme, bucket and object-name prefix."""
    location = parse_location("gs://kubernetes-jenkins/logs/ci-foo/1258197944759226371")
    assert location == Location("gs", "kubernetes-jenkins", "logs/ci-foo/1258197944759226371")


def test_s3_url_is_parsed_like_gs() -> None:
    """An s3:// folder (Prow on S3/MinIO) parses the same way."""
    assert parse_location("s3://prow-logs/logs/job/1") == Location("s3", "prow-logs", "logs/job/1")


def test_one_trailing_slash_is_tolerated() -> None:
    """A folder written with a trailing slash means the same folder."""
    assert parse_location("gs://b/logs/job/1/") == parse_location("gs://b/logs/job/1")


def test_bucket_root_has_an_empty_path_and_round_trips() -> None:
    """The bucket root parses to an empty path and prints back without a slash."""
    location = parse_location("gs://bucket")
    assert location.path == ""
    assert location.url == "gs://bucket"
    assert parse_location("gs://bucket/").url == "gs://bucket"


def test_url_round_trips() -> None:
    """A folder's URL is the URL it was parsed from."""
    assert parse_location("s3://b/pr-logs/pull/o_r/1/j/2").url == "s3://b/pr-logs/pull/o_r/1/j/2"


def test_key_joins_the_file_name_to_the_path() -> None:
    """A file's object name is the folder path, a slash and the file name."""
    assert parse_location("gs://b/logs/j/1").key("prowjob.json") == "logs/j/1/prowjob.json"
    assert parse_location("gs://b").key("prowjob.json") == "prowjob.json"


def test_key_accepts_a_relative_path() -> None:
    """A file below the folder (artifacts/...) is a relative path of plain segments."""
    assert parse_location("gs://b/j/1").key("artifacts/junit.xml") == "j/1/artifacts/junit.xml"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "logs/job/1",
        "http://bucket/logs",
        "GS://bucket/logs",
        "file:///etc/passwd",
        "gs://",
        "gs:///logs",
        "gs://../etc",
        "gs://./logs",
        "gs://-bucket/logs",
        "gs://buck et/logs",
        "gs://bucket/../../etc/passwd",
        "gs://bucket/logs/../../../etc",
        "gs://bucket/logs/./1",
        "gs://bucket//etc/passwd",
        "gs://bucket/logs//1",
        "gs://bucket/logs/1//",
        "gs://bucket/logs/\x00/1",
        "gs://bucket/logs\n/1",
    ],
)
def test_malformed_or_hostile_urls_are_refused(url: str) -> None:
    """Another scheme, no valid bucket, or empty/./.. segments raise UnsupportedLocation."""
    with pytest.raises(UnsupportedLocation):
        parse_location(url)


@pytest.mark.parametrize("name", ["", "../prowjob.json", "/etc/passwd", "a//b", "a/./b", "x\x00"])
def test_hostile_file_names_are_refused(name: str) -> None:
    """A file name that is empty, absolute, or climbs with .. raises UnsupportedLocation."""
    with pytest.raises(UnsupportedLocation):
        parse_location("gs://bucket/logs/j/1").key(name)


def test_refusal_message_names_the_url() -> None:
    """The refusal quotes the offending URL so an operator can find the message."""
    with pytest.raises(UnsupportedLocation, match=r"gs://bucket/\.\./x"):
        parse_location("gs://bucket/../x")
