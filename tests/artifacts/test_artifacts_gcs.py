"""The GCS store against real HTTP servers: gcp-storage-emulator, and tiny servers that fail.

Objects are uploaded with the real google-cloud-storage client and read back through the store
with a separate client, as the processor would. Failures come from a real HTTP server on
127.0.0.1 answering with an error status, hanging up, or never answering; the client library's
own retry policy is shortened so those tests stay fast.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest

# Neither package ships a py.typed marker nor stubs: their names are Any to mypy.
from gcp_storage_emulator.server import RequestHandler  # type: ignore[import-untyped]
from gcp_storage_emulator.storage import Storage  # type: ignore[import-untyped]
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from processor.artifacts import (
    FILE_LIMITS,
    ArtifactTooLarge,
    ArtifactUnavailable,
    ListedFile,
    UnsupportedLocation,
    open_store,
)
from processor.artifacts.gcs import (
    BUCKET_METADATA_PROBE_VARIABLE,
    GcsArtifactStore,
    folder_holding,
    match_glob_for,
)
from processor.artifacts.mirror import MirrorArtifactStore

BUCKET = "prow-artifacts"
LIMIT = 64
OBJECTS = {
    "logs/ci-foo/1/prowjob.json": b'{"kind": "ProwJob"}',
    "logs/ci-foo/1/started.json": b'{"timestamp": 1}',
    "logs/ci-foo/1/build-log.txt": b"log line\n",
    "logs/ci-foo/10/prowjob.json": b"{}",
    "logs/ci-foo/2/prowjob.json": b"{}",
    "logs/ci-foo/2/artifacts/junit.xml": b"<testsuites/>",
    "logs/ci-foo/2/artifacts/junit_01.xml": b"<testsuite/>",
    "logs/ci-foo/2/artifacts/e2e/junit_runner.xml": b"<testsuites></testsuites>",
    "logs/ci-foo/2/artifacts/e2e/notes.xml": b"<notes/>",
    "logs/ci-foo/2/artifacts/junit_01.xml.gz": b"gz",
    "logs/ci-foo/2/junit_outside.xml": b"<testsuite/>",
    "logs/ci-foo/3/started.json": b"{}",
    "logs/ci-foo-bar/7/prowjob.json": b"{}",
    "logs/sizes/empty.json": b"",
    "logs/sizes/exact.json": b"x" * LIMIT,
    "logs/sizes/over.json": b"x" * (LIMIT + 1),
    "pr-logs/pull/org_repo/12/pull-test/100/prowjob.json": b"{}",
    "pr-logs/pull/batch/pull-test/200/prowjob.json": b"{}",
    "prowjob.json": b"{}",
}

# A retry policy with the library's predicate but a deadline short enough for a test.
FAST_RETRY: Retry = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.05).with_timeout(0.3)
POLL_SECONDS = 0.02
"""How often test servers check for shutdown (the 0.5 s default would dominate each test)."""


class _RecordingHandler(RequestHandler):  # type: ignore[misc]  # base class is untyped
    """The emulator's handler, also noting each request's method, path and Range header."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Record the request instead of logging it."""
        del format, args
        self.server.requests.append((self.command, self.path, self.headers.get("Range")))


class _EmulatorServer(HTTPServer):
    """An HTTP server for the emulator's handler that keeps a log of the requests it served."""

    requests: list[tuple[str, str, str | None]]


class _StaticTokenCredentials(Credentials):
    """Credentials that "refresh" to a fixed bearer token, like real ones minus the token server."""

    def refresh(self, request: object) -> None:
        """Take the fixed token."""
        del request
        self.token = "test-token"  # noqa: S105 - a placeholder the test server ignores


def _client(endpoint: str, credentials: Credentials | None = None) -> storage.Client:
    """Return a client for ``endpoint``; anonymous unless other ``credentials`` are given."""
    return storage.Client(
        project="prowtrace-test",
        credentials=credentials or AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": endpoint},
    )


@pytest.fixture(scope="module", autouse=True)
def _no_bucket_metadata_probe() -> Iterator[None]:
    """Turn off the library's background bucket probe, as client_from_environment does."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BUCKET_METADATA_PROBE_VARIABLE, "true")
        yield


@pytest.fixture(scope="module")
def emulator() -> Iterator[_EmulatorServer]:
    """Serve an in-memory gcp-storage-emulator on a free loopback port, holding OBJECTS."""
    server = _EmulatorServer(
        ("127.0.0.1", 0), partial(_RecordingHandler, Storage(use_memory_fs=True))
    )
    server.requests = []
    thread = threading.Thread(
        target=server.serve_forever, args=(POLL_SECONDS,), name="gcs-emulator"
    )
    thread.start()
    uploader = _client(_endpoint(server))
    try:
        bucket = uploader.create_bucket(BUCKET)
        for name, data in OBJECTS.items():
            bucket.blob(name).upload_from_string(data)
        yield server
    finally:
        uploader.close()
        server.shutdown()
        server.server_close()
        thread.join()


def _endpoint(server: HTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


@pytest.fixture
def client(emulator: _EmulatorServer) -> Iterator[storage.Client]:
    """Return a fresh client for the emulator, as the processor would hold (not the uploader)."""
    fresh = _client(_endpoint(emulator))
    yield fresh
    fresh.close()


@pytest.fixture
def store(client: storage.Client) -> GcsArtifactStore:
    """Return a GCS store on the emulator with a small size limit."""
    return GcsArtifactStore(client, max_bytes=LIMIT, timeout=5, retry=FAST_RETRY)


def test_reads_a_present_object(store: GcsArtifactStore) -> None:
    """An object that exists comes back byte for byte."""
    assert store.read(f"gs://{BUCKET}/logs/ci-foo/1", "prowjob.json") == b'{"kind": "ProwJob"}'


def test_reads_an_object_below_the_folder(store: GcsArtifactStore) -> None:
    """A name with sub-folders is read from below the folder."""
    assert store.read(f"gs://{BUCKET}/logs/ci-foo/2", "artifacts/junit.xml") == b"<testsuites/>"


def test_missing_object_reads_as_none(store: GcsArtifactStore) -> None:
    """A 404 is None: the file is simply not there (yet)."""
    assert store.read(f"gs://{BUCKET}/logs/ci-foo/3", "prowjob.json") is None


def test_missing_bucket_reads_as_none(store: GcsArtifactStore) -> None:
    """A bucket that does not exist reads like a missing object (GCS answers 404 to both)."""
    assert store.read("gs://no-such-bucket/logs/ci-foo/1", "prowjob.json") is None


def test_empty_object_reads_as_empty_bytes(store: GcsArtifactStore) -> None:
    """A zero-byte object is b"", not None and not an error."""
    assert store.read(f"gs://{BUCKET}/logs/sizes", "empty.json") == b""


def test_object_of_exactly_the_limit_is_read(store: GcsArtifactStore) -> None:
    """The limit is inclusive: max_bytes bytes come back whole."""
    assert store.read(f"gs://{BUCKET}/logs/sizes", "exact.json") == b"x" * LIMIT


def test_object_over_the_limit_is_refused(store: GcsArtifactStore) -> None:
    """One byte over max_bytes raises ArtifactTooLarge naming the object."""
    with pytest.raises(ArtifactTooLarge, match=rf"gs://{BUCKET}/logs/sizes/over\.json"):
        store.read(f"gs://{BUCKET}/logs/sizes", "over.json")


def test_a_parsed_file_is_read_only_up_to_its_own_limit(
    client: storage.Client, emulator: _EmulatorServer
) -> None:
    """started.json is asked for with a range of its 64 KiB limit, not the store's 32 MiB."""
    big_store = GcsArtifactStore(client, max_bytes=32 * 1024 * 1024, timeout=5, retry=FAST_RETRY)
    emulator.requests.clear()
    big_store.read(f"gs://{BUCKET}/logs/ci-foo/1", "started.json")
    assert emulator.requests[0][2] == f"bytes=0-{FILE_LIMITS['started.json']}"


def test_a_read_is_one_ranged_request(store: GcsArtifactStore, emulator: _EmulatorServer) -> None:
    """A read sends a single GET asking for at most max_bytes + 1 bytes."""
    emulator.requests.clear()
    store.read(f"gs://{BUCKET}/logs/ci-foo/1", "started.json")
    assert len(emulator.requests) == 1
    method, path, byte_range = emulator.requests[0]
    assert (method, byte_range) == ("GET", f"bytes=0-{LIMIT}")
    assert "logs%2Fci-foo%2F1%2Fstarted.json" in path


def test_s3_folders_are_refused_with_a_pointer_to_the_mirror(store: GcsArtifactStore) -> None:
    """An s3:// folder raises UnsupportedLocation saying a mirror is needed."""
    with pytest.raises(UnsupportedLocation, match=r"s3://.*need an artifact mirror"):
        store.read("s3://minio-logs/logs/ci-foo/1", "prowjob.json")


@pytest.mark.parametrize("folder", ["gs://", "logs/ci-foo/1", f"gs://{BUCKET}/../x"])
def test_malformed_folders_are_refused(store: GcsArtifactStore, folder: str) -> None:
    """A folder that is not a valid gs:// URL raises UnsupportedLocation before any request."""
    with pytest.raises(UnsupportedLocation):
        store.read(folder, "prowjob.json")


def test_find_yields_run_folders_in_listing_order(store: GcsArtifactStore) -> None:
    """find() yields each run folder holding the file, in GCS's listing order."""
    assert list(store.find(f"gs://{BUCKET}/logs/ci-foo", "prowjob.json")) == [
        f"gs://{BUCKET}/logs/ci-foo/1",
        f"gs://{BUCKET}/logs/ci-foo/10",
        f"gs://{BUCKET}/logs/ci-foo/2",
    ]


def test_find_over_a_nested_layout(store: GcsArtifactStore) -> None:
    """Presubmit folders several levels below the prefix are found."""
    assert list(store.find(f"gs://{BUCKET}/pr-logs", "prowjob.json")) == [
        f"gs://{BUCKET}/pr-logs/pull/batch/pull-test/200",
        f"gs://{BUCKET}/pr-logs/pull/org_repo/12/pull-test/100",
    ]


def test_find_lists_once_and_only_when_iterated(
    store: GcsArtifactStore, emulator: _EmulatorServer
) -> None:
    """find() sends nothing until iterated, then one listing filtered to the file's name."""
    emulator.requests.clear()
    folders = store.find(f"gs://{BUCKET}/logs/ci-foo", "prowjob.json")
    assert emulator.requests == []
    list(folders)
    assert len(emulator.requests) == 1
    _, path, _ = emulator.requests[0]
    assert "prefix=logs%2Fci-foo%2F" in path
    assert "matchGlob=%2A%2A%2Fprowjob.json" in path


def test_find_in_a_missing_bucket_is_refused(store: GcsArtifactStore) -> None:
    """Listing a bucket that does not exist raises UnsupportedLocation naming it."""
    with pytest.raises(UnsupportedLocation, match="no-such-bucket does not exist"):
        list(store.find("gs://no-such-bucket/logs", "prowjob.json"))


def test_find_under_s3_is_refused(store: GcsArtifactStore) -> None:
    """An s3:// prefix raises UnsupportedLocation as soon as find() is called."""
    with pytest.raises(UnsupportedLocation, match="artifact mirror"):
        store.find("s3://minio-logs/logs", "prowjob.json")


def test_find_agrees_with_the_mirror_store(store: GcsArtifactStore, tmp_path: Path) -> None:
    """The same objects in a mirror yield the same folders in the same order."""
    for name, data in OBJECTS.items():
        path = tmp_path / BUCKET / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    mirror = MirrorArtifactStore(tmp_path)
    for prefix in [f"gs://{BUCKET}", f"gs://{BUCKET}/logs", f"gs://{BUCKET}/logs/ci-foo"]:
        assert list(store.find(prefix, "prowjob.json")) == list(mirror.find(prefix, "prowjob.json"))


def test_match_glob_keeps_objects_whose_last_segment_is_the_name() -> None:
    """The listing glob is **/NAME, and is dropped for names that would need escaping."""
    assert match_glob_for("prowjob.json") == "**/prowjob.json"
    assert match_glob_for("weird*name") is None


@pytest.mark.parametrize(
    ("object_name", "folder"),
    [
        ("logs/j/1/prowjob.json", "logs/j/1"),
        ("logs/j/prowjob.json", "logs/j"),
        ("logs/j/1/xprowjob.json", None),
        ("logs/j/1/prowjob.json.bak", None),
        ("logs/other/1/prowjob.json", None),
    ],
)
def test_folder_holding_names_the_folder_of_a_match(object_name: str, folder: str | None) -> None:
    """An object named .../NAME under the prefix gives its folder; anything else gives None."""
    assert folder_holding(object_name, "logs/j/", "prowjob.json") == folder


def test_open_store_gcs_reads_from_the_emulator_without_credentials(
    emulator: _EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With STORAGE_EMULATOR_HOST set, open_store("gcs") needs no ADC and reads the emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", _endpoint(emulator))
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/credentials.json")
    store = open_store("gcs", max_bytes=LIMIT)
    assert store is not None
    assert store.read(f"gs://{BUCKET}/logs/ci-foo/1", "prowjob.json") == b'{"kind": "ProwJob"}'


def test_open_store_gcs_accepts_an_emulator_host_without_scheme(
    emulator: _EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STORAGE_EMULATOR_HOST=127.0.0.1:PORT (no http://) works too."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", _endpoint(emulator).removeprefix("http://"))
    store = open_store("gcs", max_bytes=LIMIT)
    assert store is not None
    assert store.read(f"gs://{BUCKET}/logs/ci-foo/2", "prowjob.json") == b"{}"


def test_open_store_gcs_turns_off_the_bucket_metadata_probe(
    emulator: _EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read through open_store("gcs") is one request: no background storage.buckets.get."""
    monkeypatch.setenv(BUCKET_METADATA_PROBE_VARIABLE, "placeholder")
    monkeypatch.delenv(BUCKET_METADATA_PROBE_VARIABLE)  # unset, restored after the test
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", _endpoint(emulator))
    store = open_store("gcs", max_bytes=LIMIT)
    assert store is not None
    threads_before = set(threading.enumerate())
    emulator.requests.clear()
    store.read(f"gs://{BUCKET}/logs/ci-foo/1", "prowjob.json")
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=10)  # a probe, if one started, has finished and been logged
    assert [path for _, path, _ in emulator.requests if "/o/" not in path] == []
    assert len(emulator.requests) == 1


# --- failures from a real HTTP server -------------------------------------------------------

Behaviour = Callable[[BaseHTTPRequestHandler], None]


class _FailingServer(ThreadingHTTPServer):
    """Answers every request the same bad way and counts the requests."""

    daemon_threads = True

    def __init__(self, behaviour: Behaviour) -> None:
        """Listen on a free loopback port and misbehave with ``behaviour``."""
        super().__init__(("127.0.0.1", 0), _FailingHandler)
        self.behaviour = behaviour
        self.count = 0
        self.release = threading.Event()


class _FailingHandler(BaseHTTPRequestHandler):
    server: _FailingServer

    def do_GET(self) -> None:
        """Count the request and misbehave as the server was told to."""
        self.server.count += 1
        self.server.behaviour(self)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Stay quiet."""
        del format, args


def _answer(status: int) -> Behaviour:
    def send(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"error": {"code": status, "message": f"test says {status}"}}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return send


def _hang_up(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True  # closes the socket without a response


def _stall(handler: BaseHTTPRequestHandler) -> None:
    assert isinstance(handler.server, _FailingServer)
    handler.server.release.wait(timeout=10)  # until the test ends: the client times out first


@contextmanager
def _running(server: _FailingServer) -> Iterator[_FailingServer]:
    thread = threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), name="failing")
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


StoreOn = Callable[..., tuple[_FailingServer, GcsArtifactStore]]


@pytest.fixture
def failing() -> Iterator[StoreOn]:
    """Return a function that starts a misbehaving server and a fast-retrying store on it."""
    with ExitStack() as cleanup:

        def start(
            behaviour: Behaviour, credentials: Credentials | None = None, timeout: float = 5
        ) -> tuple[_FailingServer, GcsArtifactStore]:
            server = cleanup.enter_context(_running(_FailingServer(behaviour)))
            client = _client(_endpoint(server), credentials)
            cleanup.callback(client.close)
            store = GcsArtifactStore(client, max_bytes=LIMIT, timeout=timeout, retry=FAST_RETRY)
            return server, store

        yield start


FOLDER = f"gs://{BUCKET}/logs/ci-foo/1"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_end_as_unavailable_after_the_librarys_retries(
    failing: StoreOn, status: int
) -> None:
    """429/5xx are retried by the client library, then raise ArtifactUnavailable with the cause."""
    server, store = failing(_answer(status))
    with pytest.raises(ArtifactUnavailable) as raised:
        store.read(FOLDER, "prowjob.json")
    assert server.count > 1
    assert f"{FOLDER}/prowjob.json" in str(raised.value)
    assert f"HTTP {status}" in str(raised.value)


def test_forbidden_names_the_missing_permission_and_role(failing: StoreOn) -> None:
    """A 403 raises ArtifactUnavailable naming storage.objects.get and the role that grants it."""
    server, store = failing(_answer(403))
    with pytest.raises(ArtifactUnavailable) as raised:
        store.read(FOLDER, "prowjob.json")
    assert server.count == 1  # not retried: only an operator can fix it
    assert "storage.objects.get" in str(raised.value)
    assert f"roles/storage.objectViewer on gs://{BUCKET}" in str(raised.value)


def test_unauthorized_points_at_the_credentials(failing: StoreOn) -> None:
    """A 401 that survives a token refresh raises ArtifactUnavailable blaming the credentials."""
    _, store = failing(_answer(401), _StaticTokenCredentials())  # type: ignore[no-untyped-call]
    with pytest.raises(ArtifactUnavailable, match="credentials were rejected"):
        store.read(FOLDER, "prowjob.json")


def test_credentials_that_cannot_refresh_are_unavailable(failing: StoreOn) -> None:
    """A 401 whose credentials cannot be refreshed raises ArtifactUnavailable saying so."""
    _, store = failing(_answer(401))
    with pytest.raises(ArtifactUnavailable, match="could not obtain credentials"):
        store.read(FOLDER, "prowjob.json")


def test_bad_request_is_unsupported(failing: StoreOn) -> None:
    """A 400 (a name Cloud Storage rejects) raises UnsupportedLocation: retrying cannot help."""
    _, store = failing(_answer(400))
    with pytest.raises(UnsupportedLocation, match="HTTP 400"):
        store.read(FOLDER, "prowjob.json")


def test_a_hung_up_connection_is_unavailable(failing: StoreOn) -> None:
    """A server that closes the connection without answering gives ArtifactUnavailable."""
    server, store = failing(_hang_up)
    with pytest.raises(ArtifactUnavailable, match=r"gave up retrying.*ConnectionError"):
        store.read(FOLDER, "prowjob.json")
    assert server.count > 1


def test_a_server_that_never_answers_times_out_as_unavailable(failing: StoreOn) -> None:
    """A request that outlives the timeout gives ArtifactUnavailable naming the timeout."""
    _, store = failing(_stall, timeout=0.1)
    with pytest.raises(ArtifactUnavailable, match="Timeout"):
        store.read(FOLDER, "prowjob.json")


def test_nothing_listening_is_unavailable(failing: StoreOn) -> None:
    """A refused connection (the server is gone from its port) gives ArtifactUnavailable."""
    server, store = failing(_answer(503))
    server.shutdown()
    server.server_close()
    with pytest.raises(ArtifactUnavailable, match="ConnectionError"):
        store.read(FOLDER, "prowjob.json")


def test_find_failures_are_unavailable_and_name_the_prefix(failing: StoreOn) -> None:
    """A listing that keeps failing raises ArtifactUnavailable naming the prefix."""
    _, store = failing(_answer(503))
    with pytest.raises(ArtifactUnavailable, match=rf"gs://{BUCKET}/logs: .*HTTP 503"):
        list(store.find(f"gs://{BUCKET}/logs", "prowjob.json"))


def test_find_forbidden_names_the_list_permission(failing: StoreOn) -> None:
    """A 403 on listing names storage.objects.list and roles/storage.objectViewer."""
    _, store = failing(_answer(403))
    with pytest.raises(ArtifactUnavailable, match=r"storage\.objects\.list.*objectViewer"):
        list(store.find(f"gs://{BUCKET}/logs", "prowjob.json"))


JUNIT_IN_CI_FOO_2 = [
    ListedFile("artifacts/e2e/junit_runner.xml", 25),
    ListedFile("artifacts/junit.xml", 13),
    ListedFile("artifacts/junit_01.xml", 12),
]
"""What Spyglass's JUnit lens and Prow's starter config would show for logs/ci-foo/2."""


def test_list_files_finds_junit_below_artifacts_with_sizes(store: GcsArtifactStore) -> None:
    """Files named junit*.xml at any depth below artifacts/ are listed, names relative, sized."""
    listed = store.list_files(f"gs://{BUCKET}/logs/ci-foo/2", "artifacts", "junit*.xml", 100)
    assert listed == JUNIT_IN_CI_FOO_2


def test_list_files_is_one_filtered_request(
    store: GcsArtifactStore, emulator: _EmulatorServer
) -> None:
    """One objects.list below artifacts/, filtered by a match glob, asking for names and sizes."""
    emulator.requests.clear()
    store.list_files(f"gs://{BUCKET}/logs/ci-foo/2", "artifacts", "junit*.xml", 100)
    assert len(emulator.requests) == 1
    _, path, _ = emulator.requests[0]
    assert "prefix=logs%2Fci-foo%2F2%2Fartifacts%2F" in path
    assert "matchGlob=%2A%2A%2Fjunit%2A.xml" in path
    assert "items%28name%2Csize%29" in path


def test_list_files_stops_at_the_limit(store: GcsArtifactStore) -> None:
    """No more than ``limit`` files come back, the first in listing order."""
    listed = store.list_files(f"gs://{BUCKET}/logs/ci-foo/2", "artifacts", "junit*.xml", 2)
    assert listed == JUNIT_IN_CI_FOO_2[:2]


def test_list_files_of_a_folder_without_artifacts_is_empty(store: GcsArtifactStore) -> None:
    """A run that uploaded no artifacts/ has no JUnit files (not an error)."""
    assert store.list_files(f"gs://{BUCKET}/logs/ci-foo/1", "artifacts", "junit*.xml", 100) == []


def test_list_files_agrees_with_the_mirror_store(store: GcsArtifactStore, tmp_path: Path) -> None:
    """The same objects in a mirror list the same files, sizes and order."""
    for name, data in OBJECTS.items():
        path = tmp_path / BUCKET / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    mirror = MirrorArtifactStore(tmp_path)
    for folder in ["logs/ci-foo/1", "logs/ci-foo/2", "logs/nowhere"]:
        url = f"gs://{BUCKET}/{folder}"
        expected = store.list_files(url, "artifacts", "junit*.xml", 100)
        assert mirror.list_files(url, "artifacts", "junit*.xml", 100) == expected
