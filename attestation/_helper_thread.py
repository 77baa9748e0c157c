"""One process-wide helper thread, for work that can run beside a signature check.

`cryptography` releases the GIL while OpenSSL verifies an ECDSA signature, so a second thread
can do Python-level or other native work on another core during those ~0.5 ms. The verifier
uses this on a cold verification: the chain is validated here while the calling thread checks
the COSE signature.

The helper is only lent to a caller that is alone: while two threads of the process want it,
both do their work themselves. Measured on two cores, two threads verifying cold documents at
once lost 6-8% of their total rate when one of them used the helper (three busy threads on two
cores), and nothing when neither did. The thread is created on first use, and again in a
forked child (which inherits the helper object but not its thread).

The hand-off is a queue and one lock per job rather than a ``ThreadPoolExecutor``: the caller
pays for it on every cold verification, before its own signature check starts, and the
executor's futures, shutdown locks and idle semaphore cost about 10 us more there (a Recipient
call, measured in ``bench/core.py``). What remains is the system call that wakes the thread.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

__all__ = ["Helper", "Job", "helper_if_alone"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_lock = threading.Lock()
_claims = 0
_helper: Helper | None = None


def _forget_after_fork() -> None:
    # In a forked child the parent's helper thread does not exist, and the lock may have been
    # held by a thread that does not exist either: start from nothing.
    global _lock, _claims, _helper
    _lock = threading.Lock()
    _claims = 0
    _helper = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


class helper_if_alone:  # named as the function it replaced: ``with helper_if_alone() as h``
    """Yield the helper, or ``None`` while another caller holds a claim (or no thread starts).

    The caller must get the result of what it submits before leaving the ``with`` block, so
    when a claim starts alone the helper has nothing left but to skip jobs their callers made
    themselves (see :class:`Job`). (A class rather than a generator-based context
    manager: it is entered on every verification, and this costs a third as much.)
    """

    __slots__ = ()

    def __enter__(self) -> Helper | None:
        global _claims, _helper
        with _lock:
            _claims += 1
            if _claims != 1:
                return None
            if _helper is None:
                try:
                    _helper = Helper()
                except RuntimeError:  # no new threads (interpreter shutdown): work alone
                    return None
            return _helper

    def __exit__(self, *_: object) -> None:
        global _claims
        with _lock:
            _claims -= 1


class Job(Generic[_T]):
    """A call handed to the helper: :meth:`result` waits for it, or makes it if not started.

    Whichever thread starts the call first makes it, exactly once. The caller asks for the
    result when its own work (the signature check) is done; by then the helper has normally
    long started. If it has not (its core is busy with another process, or the host did not
    run it), waiting would only add the time until it does: the caller makes the call itself,
    and the helper skips the job when it gets to it.
    """

    __slots__ = ("_call", "_done", "_error", "_unclaimed", "_value")

    def __init__(self, call: Callable[[], _T]) -> None:
        self._call = call
        self._unclaimed = threading.Lock()  # acquired by the thread that makes the call
        self._done = threading.Lock()
        self._done.acquire()  # released once the call has returned or raised
        self._value: _T | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        """Make the call unless the caller already has (on the helper thread)."""
        if self._unclaimed.acquire(blocking=False):
            self._make_call()

    def result(self) -> _T:
        """The call's value or exception: made here if the helper has not started it."""
        if self._unclaimed.acquire(blocking=False):
            self._make_call()
        with self._done:
            pass
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set: the call returned

    def _make_call(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # raised again by result()
            self._error = exc
        finally:
            self._done.release()


class Helper:
    """One daemon thread that makes the calls handed to it, one at a time, in order.

    A daemon, so that a process never waits at exit for a thread whose only callers wait for
    their own jobs anyway.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job[Any]] = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, name="attestation-helper", daemon=True)
        thread.start()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Job[_T]:
        """Hand ``fn(*args, **kwargs)`` to the thread; the returned job waits for its outcome."""
        job: Job[_T] = Job(lambda: fn(*args, **kwargs))
        self._jobs.put(job)
        return job

    def _serve(self) -> None:
        while True:
            self._jobs.get().run()
