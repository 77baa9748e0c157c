"""Shared test configuration: where the committed fixtures live, helper-thread timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attestation._helper_thread import Job

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The repository's ``fixtures/`` directory."""
    return FIXTURES


@pytest.fixture
def patient_caller(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Callers wait until the helper has started their job before asking for its result.

    A caller makes a job itself when the helper has not started it by the time it asks (see
    :class:`~attestation._helper_thread.Job`). That is normally ~0.5 ms after the hand-off, so
    the helper has started long before; on a loaded machine it may not have. Tests that assert
    *which thread* did the work use this, so that the answer is not a race.
    """
    original = Job.result

    def result(self: Job[object]) -> object:
        deadline = time.monotonic() + 30
        while not self._unclaimed.locked() and time.monotonic() < deadline:
            time.sleep(0.0002)
        return original(self)

    monkeypatch.setattr(Job, "result", result)
    yield
