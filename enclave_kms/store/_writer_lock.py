"""The SQLite store's cross-process writer lock: an exclusive ``flock``, retried briefly first.

Every writer of a store file, in any process, takes an exclusive ``flock`` on ``<file>.lock``
before SQLite's own write lock (see :mod:`enclave_kms.store._sqlite_base`). An audited call
holds it for one statement, tens of microseconds. A writer that finds it taken and sleeps in
``flock`` at once runs again only when the kernel wakes it after the release. On the benchmark
VM that wake-up took about as long as the write itself, and with two workers 0.1 of the two
cores sat idle meanwhile (``bench/scale.py``). So a waiter first retries without blocking for
up to :data:`SPIN_SECONDS`, and only then sleeps. Between tries it yields the core: a task
that is ready to run on it (the holder, on a busy machine) goes first. The server's audit
batches do not wait at all at first (:func:`try_lock_exclusive`; see
:class:`enclave_kms.store._audit_batch.InProcessAuditBatcher`).

With a single usable core the holder cannot run while a waiter retries, so there the waiter
sleeps at once. The kernel releases a killed holder's lock, as before.
"""

from __future__ import annotations

import fcntl
import os
import time

__all__ = ["SPIN_SECONDS", "lock_exclusive", "try_lock_exclusive", "unlock"]

#: How long a waiter retries before it sleeps: a few times the usual hold, far below a busy
#: timeout, so that a long hold (a checkpoint, a big transaction) costs little spinning.
SPIN_SECONDS = 150e-6


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_SPIN = _usable_cores() > 1


def try_lock_exclusive(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` if it is free; never wait."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_exclusive(fd: int) -> None:
    """Take the exclusive lock on ``fd``: at once if free, else after a short retry, else sleep."""
    if try_lock_exclusive(fd):
        return
    if _SPIN:
        deadline = time.perf_counter() + SPIN_SECONDS
        while time.perf_counter() < deadline:
            os.sched_yield()
            if try_lock_exclusive(fd):
                return
    fcntl.flock(fd, fcntl.LOCK_EX)


def unlock(fd: int) -> None:
    """Release the lock taken by :func:`lock_exclusive`."""
    fcntl.flock(fd, fcntl.LOCK_UN)
