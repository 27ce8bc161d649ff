"""Backfill against Cloud Storage's JSON API, served in-process by gcp-storage-emulator.

The corpus is uploaded over HTTP to an in-memory emulator; backfill then lists and reads it through
the real GCS store (google-cloud-storage), as ``--artifacts gcs`` does with STORAGE_EMULATOR_HOST.
"""

from __future__ import annotations

import http.client
import io
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer

import pytest
from backfill_fixtures import BUCKET, corpus, expected, finished, folder_count, recording_sink

# Neither package ships a py.typed marker nor stubs: their names are Any to mypy.
from gcp_storage_emulator.server import RequestHandler  # type: ignore[import-untyped]
from gcp_storage_emulator.storage import Storage  # type: ignore[import-untyped]
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from support.oracle import assert_traces_complete
from support.otlp_receiver import unique_spans_of

from processor.artifacts.gcs import BUCKET_METADATA_PROBE_VARIABLE, GcsArtifactStore
from processor.exit_codes import ExitCode
from processor.synthetic import SyntheticJob
from processor.tools.backfill import BackfillPlan, Edges, ReadAheadStore, run_command
from processor.tools.backfill_runs import Selection

POLL_SECONDS = 0.02
"""How often the server checks for shutdown (the 0.5 s default would dominate teardown)."""


class _QuietHandler(RequestHandler):  # type: ignore[misc]  # base class is untyped
    """The emulator's request handler, without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Say nothing."""
        del format, args


class _MemoryStorage(Storage):  # type: ignore[misc]  # base class is untyped
    """The emulator's in-memory storage, minus rewriting its whole index after every upload.

    In memory that index (``.meta``) is never read back, and rewriting it makes N uploads cost
    O(N^2): seconds for the corpus instead of milliseconds.
    """

    def _write_config_to_file(self) -> None:
        """Keep the index in memory only."""


def _upload(port: int, name: str, data: bytes) -> None:
    """Upload one object with a plain JSON API media upload (setup, not under test)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        quoted = urllib.parse.quote(name, safe="")
        connection.request(
            "POST",
            f"/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={quoted}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},  # JSON would be parsed
        )
        response = connection.getresponse()
        response.read()
        assert response.status == 200, f"upload of {name}: HTTP {response.status}"
    finally:
        connection.close()


def _objects(jobs: tuple[SyntheticJob, ...]) -> Iterator[tuple[str, bytes]]:
    """Every file the corpus leaves in the bucket, as (object name, bytes)."""
    for job in jobs:
        folders = dict(job.abandoned_artifacts)
        if job.gcs_path:
            folders[job.gcs_path] = job.artifacts
        for folder, files in folders.items():
            key = folder.removeprefix(f"gs://{BUCKET}/")
            for name, data in files.items():
                yield f"{key}/{name}", data


@pytest.fixture(scope="module")
def client() -> Iterator[storage.Client]:
    """Serve the whole corpus from an in-memory emulator; return a client of it."""
    quiet = logging.getLogger("gcp_storage_emulator")
    previous_level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # it logs every 404, and optional artifacts are often absent
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, _MemoryStorage(use_memory_fs=True))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), name="gcs")
    thread.start()
    host, port = server.server_address[:2]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BUCKET_METADATA_PROBE_VARIABLE, "true")
        gcs = storage.Client(
            project="prowtrace-test",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]  # untyped ctor
            client_options={"api_endpoint": f"http://{host!s}:{port}"},
        )
        try:
            gcs.create_bucket(BUCKET)
            for name, data in _objects(corpus()):
                _upload(port, name, data)
            yield gcs
        finally:
            gcs.close()
            server.shutdown()
            server.server_close()
            thread.join()
            quiet.setLevel(previous_level)


def test_backfill_from_cloud_storage_shows_progress_and_traces_the_oracles_spans(
    client: storage.Client,
) -> None:
    """Over the emulator: progress lines, a correct summary, and exactly the expected spans."""
    store = ReadAheadStore(GcsArtifactStore(client, timeout=10))
    sink, recorder = recording_sink(store)
    plan = BackfillPlan(
        prefixes=(f"gs://{BUCKET}/logs", f"gs://{BUCKET}/pr-logs"),
        selection=Selection(),
        concurrency=8,
    )
    progress, out = io.StringIO(), io.StringIO()
    summary = run_command(plan, Edges(store, sink), progress=progress, out=out, interval=0.2)
    found, sent = folder_count(corpus()), len(finished(corpus()))
    assert (summary.counts.found, summary.counts.sent) == (found, sent)
    assert (summary.counts.skipped, summary.counts.failed) == (found - sent, 0)
    assert summary.exit_code == ExitCode.OK
    lines = progress.getvalue().splitlines()
    assert len(lines) >= 2  # at least one periodic line, then the final one
    assert lines[-1].startswith(f"backfill: {found}/{found} runs ({sent} traced")
    assert out.getvalue().startswith(f"backfill: {found} runs found in ")
    assert_traces_complete(unique_spans_of(recorder.spans()), expected())
