"""Session fixtures shared by the end-to-end tests: one emulator and one corpus for the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.e2e import E2eCorpus, prepare_corpus
from support.pubsub_admin import EmulatorForTests

E2E_JOBS = 40
"""Enough jobs for every corpus scenario to occur (15) with overlapping lifecycles."""


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[EmulatorForTests]:
    """Google's real Pub/Sub emulator; a missing emulator fails (never skips) with its message."""
    with EmulatorForTests() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def e2e_corpus(tmp_path_factory: pytest.TempPathFactory) -> E2eCorpus:
    """Generate a realistic stream of job lifecycles, its artifact mirror and expected spans."""
    return prepare_corpus(tmp_path_factory.mktemp("e2e-corpus"), E2E_JOBS)
