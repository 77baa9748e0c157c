"""The SQLite store's writer lock: exclusive across open files, retried briefly, then slept on."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave_kms.store import _writer_lock
from enclave_kms.store._writer_lock import lock_exclusive, unlock


@pytest.fixture
def two_fds(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """Two open files of one lock file: flock excludes them as it would two processes."""
    path = tmp_path / "store.db.lock"
    a = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    b = os.open(path, os.O_RDWR)
    yield a, b
    os.close(a)
    os.close(b)


def _is_free(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def _count_yields(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = os.sched_yield

    def counting() -> None:
        calls[0] += 1
        real()

    monkeypatch.setattr(_writer_lock.os, "sched_yield", counting)
    return calls


def test_a_free_lock_is_taken_and_excludes_others(two_fds: tuple[int, int]) -> None:
    a, b = two_fds
    lock_exclusive(a)
    assert not _is_free(b)
    unlock(a)
    assert _is_free(b)


@pytest.mark.parametrize("spin", [True, False])
def test_a_waiter_gets_the_lock_only_after_the_holder_releases_it(
    two_fds: tuple[int, int], monkeypatch: pytest.MonkeyPatch, spin: bool
) -> None:
    monkeypatch.setattr(_writer_lock, "_SPIN", spin)
    yields = _count_yields(monkeypatch)
    holder, waiter = two_fds
    lock_exclusive(holder)
    acquired = threading.Event()

    def wait_for_it() -> None:
        lock_exclusive(waiter)
        acquired.set()

    thread = threading.Thread(target=wait_for_it)
    thread.start()
    # Far past the retry window: the waiter has gone to sleep in flock by now.
    assert not acquired.wait(0.2)
    unlock(holder)
    assert acquired.wait(10)
    thread.join()
    assert not _is_free(holder)  # the waiter holds it now
    unlock(waiter)
    # With several cores the waiter retried (yielding the core) before sleeping; with one,
    # where the holder could not run meanwhile, it slept at once.
    assert (yields[0] > 0) is spin
