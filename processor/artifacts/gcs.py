"""An artifact store over Google Cloud Storage, through an injected ``storage.Client``.

A read is ONE ranged GET (``bytes=0-max_bytes``): a file that sends back more than ``max_bytes``
is refused without fetching the rest, and no metadata request comes first. Retries are the client
library's own (``google.cloud.storage.retry.DEFAULT_RETRY``: 408/429/5xx, connection errors and
timeouts, exponential backoff for up to 120 s); this module adds no second layer, it only lets the
caller pass a different policy. Ranged reads skip the library's whole-object checksum check (its
rule for partial responses); TLS still protects the bytes in transit. An object stored with
``Content-Encoding: gzip`` is served whole and decompressed whatever the range (GCS decompressive
transcoding), so it is refused only after the download; Prow's JSON metadata is not stored that way.

What the errors mean here (see :mod:`processor.artifacts` for what the caller should do):

- ``None``: the object does not exist (HTTP 404; a missing bucket reads the same way).
- :class:`~processor.artifacts.ArtifactUnavailable`: retries ran out on 429/5xx/timeouts/connection
  errors, credentials could not be refreshed, or the credentials lack a permission (HTTP 403/401:
  the message names the permission and the role, ``roles/storage.objectViewer``, that grants it;
  once an operator grants it, Pub/Sub's redelivery succeeds).
- :class:`~processor.artifacts.ArtifactTooLarge`: the object is larger than ``max_bytes``.
- :class:`~processor.artifacts.UnsupportedLocation`: an ``s3://`` folder (this store reads only
  ``gs://``), a malformed URL, a name Cloud Storage rejects (HTTP 400), or, for ``find``, a bucket
  that does not exist.

google-cloud-storage >= 3.11 also probes each bucket's metadata (``storage.buckets.get``, which
``roles/storage.objectViewer`` does not grant) in a background thread on first use, for its own
tracing attributes, unless ``DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA`` is true
(googleapis/google-cloud-python#17650). :func:`client_from_environment` turns that probe off so a
read stays one request and no denied ``buckets.get`` fills the audit log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fnmatch import fnmatchcase
from itertools import islice

# google-cloud-storage ships no py.typed marker: pyproject's mypy overrides treat it as Any.
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage import exceptions as storage_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

from processor.artifacts import (
    DEFAULT_MAX_ARTIFACT_BYTES,
    ArtifactError,
    ArtifactTooLarge,
    ArtifactUnavailable,
    ListedFile,
    Location,
    StoreSetupError,
    UnsupportedLocation,
    parse_location,
    read_limit,
)

DEFAULT_TIMEOUT_SECONDS = 30.0
"""Per-request connect/read timeout; the retry policy's deadline bounds all attempts together."""

EMULATOR_HOST_VARIABLE = "STORAGE_EMULATOR_HOST"
BUCKET_METADATA_PROBE_VARIABLE = "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA"
EMULATOR_PROJECT = "prowtrace-emulator"
"""Project for emulator clients when GOOGLE_CLOUD_PROJECT is unset: the emulator ignores it."""

OBJECT_READ_PERMISSION = "storage.objects.get"
OBJECT_LIST_PERMISSION = "storage.objects.list"

_GLOB_SPECIAL = frozenset("*?[]{}\\,!")
_MAX_CAUSE_CHARS = 400

_FAILURES = (
    api_exceptions.GoogleAPIError,  # HTTP errors and RetryError (retries ran out)
    auth_exceptions.GoogleAuthError,  # credentials could not be obtained or refreshed
    storage_exceptions.DataCorruption,  # checksum mismatch on a whole-object response
    storage_exceptions.InvalidResponse,  # a media response the library did not translate
    OSError,  # requests' ConnectionError/Timeout derive from it, as do socket errors
)


class GcsArtifactStore:
    """Reads ``gs://`` artifact folders with an injected ``google.cloud.storage.Client``."""

    def __init__(
        self,
        client: storage.Client,
        max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: Retry | None = DEFAULT_RETRY,
    ) -> None:
        """Read through ``client``; refuse objects over ``max_bytes``.

        ``timeout`` applies to each HTTP request; ``retry`` is the library's retry policy
        (``None`` disables retries), e.g. ``DEFAULT_RETRY.with_timeout(10)`` for a shorter deadline.
        """
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self._client = client
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._retry = retry

    def read(self, folder: str, name: str) -> bytes | None:
        """Return the bytes of ``folder/name``, or ``None`` if the object does not exist."""
        location = _gcs_location(folder)
        key = location.key(name)
        url = f"gs://{location.bucket}/{key}"
        blob = self._client.bucket(location.bucket).blob(key)
        limit = read_limit(name, self._max_bytes)
        try:
            # end is inclusive: limit + 1 bytes come back exactly when the object is too big.
            data: bytes = blob.download_as_bytes(
                start=0, end=limit, timeout=self._timeout, retry=self._retry
            )
        except api_exceptions.NotFound:
            return None
        except api_exceptions.RequestRangeNotSatisfiable:
            return b""  # GCS answers a range read of an empty object with 416
        except _FAILURES as exc:
            raise translate_error(exc, url, location.bucket, OBJECT_READ_PERMISSION) from exc
        if len(data) > limit:
            raise ArtifactTooLarge(url, limit)
        return data

    def list_files(self, folder: str, under: str, name_glob: str, limit: int) -> list[ListedFile]:
        """Return up to ``limit`` objects below ``folder/under/`` whose last segment matches.

        One ``objects.list`` call (a Class A operation per page of up to 1,000 names): the
        server keeps only names matching ``**/<name_glob>`` and sends only names and sizes;
        the same rule is checked again here (a glob's ``*`` never spans ``/``, as in fnmatch).
        """
        location = _gcs_location(folder)
        list_prefix = f"{location.key(under)}/"
        url = f"gs://{location.bucket}/{list_prefix}"
        blobs = self._client.list_blobs(
            location.bucket,
            prefix=list_prefix,
            match_glob=f"**/{name_glob}",
            fields="items(name,size),nextPageToken",
            max_results=limit,
            timeout=self._timeout,
            retry=self._retry,
        )
        prefix_chars = len(location.path) + 1 if location.path else 0
        matching = (
            ListedFile(name=blob.name[prefix_chars:], size=int(blob.size or 0))
            for blob in blobs
            if fnmatchcase(blob.name.rsplit("/", 1)[-1], name_glob)
        )
        try:
            # max_results asks the server for no more; islice holds to it whatever comes back.
            return list(islice(matching, limit))
        except api_exceptions.NotFound:
            return []  # no bucket: no files, as a read of a missing bucket is "no file"
        except _FAILURES as exc:
            raise translate_error(exc, url, location.bucket, OBJECT_LIST_PERMISSION) from exc

    def find(self, prefix: str, name: str) -> Iterator[str]:
        """Yield the folders under ``prefix`` that hold an object ``name``, page by page.

        One listing of the prefix, filtered server-side by a match glob and fetching only object
        names. Folders come in Cloud Storage's (lexicographic) listing order. The bucket root is
        never yielded, nor folders whose URL :func:`~processor.artifacts.parse_location` would
        refuse (``a//b``).
        """
        location = _gcs_location(prefix)
        if not name or "/" in name or name in {".", ".."}:
            raise UnsupportedLocation(f"find() needs a plain file name, not {name!r}")
        return self._list_folders(location, name)

    def _list_folders(self, location: Location, name: str) -> Iterator[str]:
        list_prefix = f"{location.path}/" if location.path else ""
        blobs = self._client.list_blobs(
            location.bucket,
            prefix=list_prefix,
            match_glob=match_glob_for(name),
            fields="items(name),nextPageToken",
            timeout=self._timeout,
            retry=self._retry,
        )
        try:
            for blob in blobs:
                folder = folder_holding(blob.name, list_prefix, name)
                if folder is not None and _is_readable_folder(location.child(folder)):
                    yield location.child(folder).url
        except api_exceptions.NotFound as exc:
            raise UnsupportedLocation(
                f"cannot list {location.url}: bucket gs://{location.bucket} does not exist"
            ) from exc
        except _FAILURES as exc:
            raise translate_error(
                exc, location.url, location.bucket, OBJECT_LIST_PERMISSION
            ) from exc


def client_from_environment() -> storage.Client:
    """Build a client: the emulator at ``STORAGE_EMULATOR_HOST`` if set, else ADC.

    With the emulator the client uses anonymous credentials (no ADC needed) and accepts the host
    with or without ``http://``. Also turns off the library's background bucket-metadata probe
    (see the module docstring) unless the environment already says otherwise. Raises
    :class:`~processor.artifacts.StoreSetupError` when no credentials can be found.
    """
    os.environ.setdefault(BUCKET_METADATA_PROBE_VARIABLE, "true")
    emulator = os.environ.get(EMULATOR_HOST_VARIABLE, "")
    if emulator:
        endpoint = emulator if "://" in emulator else f"http://{emulator}"
        return storage.Client(
            project=os.environ.get("GOOGLE_CLOUD_PROJECT") or EMULATOR_PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]  # untyped ctor
            client_options={"api_endpoint": endpoint},
        )
    try:
        return storage.Client()
    except auth_exceptions.DefaultCredentialsError as exc:
        raise StoreSetupError(
            "the gcs artifact store needs Application Default Credentials (a service account "
            "on GCP, GOOGLE_APPLICATION_CREDENTIALS, or `gcloud auth application-default "
            f"login`), or {EMULATOR_HOST_VARIABLE} for the emulator: {exc}"
        ) from exc


def translate_error(exc: BaseException, url: str, bucket: str, permission: str) -> ArtifactError:
    """Return the store error for a client-library failure on ``url``, naming the cause."""
    if isinstance(exc, api_exceptions.Forbidden):
        return ArtifactUnavailable(
            f"{url}: permission denied (HTTP 403): the processor's credentials lack "
            f"{permission} on bucket {bucket}; grant its service account "
            f"roles/storage.objectViewer on gs://{bucket} ({_short(exc.message)})"
        )
    if isinstance(exc, api_exceptions.Unauthorized):
        return ArtifactUnavailable(
            f"{url}: the credentials were rejected (HTTP 401): check the Application Default "
            f"Credentials the processor runs with ({_short(exc.message)})"
        )
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return ArtifactUnavailable(f"{url}: could not obtain credentials: {describe_cause(exc)}")
    if isinstance(exc, api_exceptions.BadRequest):
        return UnsupportedLocation(
            f"{url}: Cloud Storage rejected the request: {describe_cause(exc)}"
        )
    return ArtifactUnavailable(f"{url}: {describe_cause(exc)}")


def describe_cause(exc: BaseException) -> str:
    """Say briefly what went wrong: HTTP status and message, or the exception's type and text."""
    if isinstance(exc, api_exceptions.RetryError):
        cause = exc.cause
        last = describe_cause(cause) if cause is not None else "none recorded"
        return f"gave up retrying ({exc.message}); last error: {last}"
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return f"HTTP {exc.code}: {_short(exc.message)}"
    if isinstance(exc, storage_exceptions.InvalidResponse):
        return f"HTTP {exc.response.status_code}: {_short(exc.response.text) or 'no body'}"
    return f"{type(exc).__name__}: {_short(str(exc))}"


def match_glob_for(name: str) -> str | None:
    """Return a listing glob for objects whose last segment is ``name`` (None: needs escaping).

    ``**`` spans ``/`` in Cloud Storage globs, so ``**/prowjob.json`` lets the server drop the
    logs and other artifacts that make up most of a job's folder.
    """
    if _GLOB_SPECIAL.intersection(name):
        return None
    return f"**/{name}"


def folder_holding(object_name: str, list_prefix: str, name: str) -> str | None:
    """Return the folder key of ``object_name`` if it is a file ``name`` below ``list_prefix``.

    The bucket root is never a folder (no Prow layout puts files there), so ``name`` must follow
    a ``/``: exactly the objects ``match_glob_for(name)`` keeps.
    """
    if not object_name.startswith(list_prefix) or not object_name.endswith(f"/{name}"):
        return None
    return object_name.removesuffix(f"/{name}")


def _gcs_location(url: str) -> Location:
    location = parse_location(url)
    if location.scheme != "gs":
        raise UnsupportedLocation(
            f"{url} is an S3/MinIO location and this artifact store reads only gs:// paths: "
            "s3:// artifact paths need an artifact mirror (a local directory laid out as "
            "DIR/s3/BUCKET/PATH, given as the artifact store instead of 'gcs')"
        )
    return location


def _is_readable_folder(location: Location) -> bool:
    try:
        return parse_location(location.url) == location
    except UnsupportedLocation:
        return False


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_CAUSE_CHARS else f"{text[:_MAX_CAUSE_CHARS]}..."
