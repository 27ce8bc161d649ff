"""``prowtrace backfill --publish`` against Google's real Pub/Sub emulator (never skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from backfill_fixtures import BUCKET, corpus, finished
from support.pubsub_admin import EmulatorForTests

from processor.cli import main
from processor.synthetic import message_bytes, write_mirror

PROJECT = "prow-backfill"

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorForTests]:
    """One real emulator for the module; a missing emulator fails the tests."""
    with EmulatorForTests() as running:
        yield running


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write the corpus as a bucket mirror."""
    root = tmp_path_factory.mktemp("mirror")
    write_mirror(corpus(), root)
    return root


@pytest.fixture
def emulator_env(emulator: EmulatorForTests, monkeypatch: pytest.MonkeyPatch) -> EmulatorForTests:
    """Point the command's publisher at the emulator, as a user would."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    monkeypatch.delenv("PROWTRACE_ARTIFACTS", raising=False)
    return emulator


def test_topic_receives_exactly_the_synthesized_messages(
    emulator_env: EmulatorForTests, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each finished run's message is published once, byte for byte crier's, bare like crier's."""
    topic = emulator_env.create_topic(PROJECT, "crier-backfill")
    subscription = emulator_env.create_subscription(PROJECT, "crier-backfill-sub", topic)
    status = main(
        ["backfill", f"gs://{BUCKET}/", "--artifacts-mirror", str(mirror), "--publish", topic]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    received = emulator_env.pull_all(subscription, timeout=10)
    assert sorted(item.message.data for item in received) == sorted(
        message_bytes(job.messages[-1]) for job in finished(corpus())
    )
    assert all(not item.message.attributes for item in received)
    assert all(not item.message.ordering_key for item in received)
    assert f": {len(finished(corpus()))} published, " in captured.out


def test_missing_topic_stops_the_backfill_early(
    emulator_env: EmulatorForTests, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Publishing to a topic that does not exist stops at once and exits 1, saying why."""
    del emulator_env
    topic = f"projects/{PROJECT}/topics/no-such-topic"
    status = main(
        ["backfill", f"gs://{BUCKET}/", "--artifacts-mirror", str(mirror), "--publish", topic]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert f"stopped early: cannot publish to {topic}" in out
    found = int(out.split(" runs found", 1)[0].rsplit(" ", 1)[-1])
    assert found < len(finished(corpus()))
