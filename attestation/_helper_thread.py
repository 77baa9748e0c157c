"""One process-wide helper thread, for work that can run beside a signature check.

`cryptography` releases the GIL while OpenSSL verifies an ECDSA signature, so a second thread
can do Python-level or other native work on another core during those ~0.5 ms. The verifier
uses this on a cold verification: the chain is validated here while the calling thread checks
the COSE signature.

The helper is only lent to a caller that is alone: while two threads of the process want it,
both do their work themselves. Measured on two cores, two threads verifying cold documents at
once lost 6-8% of their total rate when one of them used the helper (three busy threads on two
cores), and nothing when neither did. The thread is created on first use, and again in a
forked child (which inherits the executor object but not its thread).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["helper_if_alone"]

_lock = threading.Lock()
_claims = 0
_executor: ThreadPoolExecutor | None = None


def _forget_after_fork() -> None:
    # In a forked child the parent's helper thread does not exist, and the lock may have been
    # held by a thread that does not exist either: start from nothing.
    global _lock, _claims, _executor
    _lock = threading.Lock()
    _claims = 0
    _executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


class helper_if_alone:  # named as the function it replaced: ``with helper_if_alone() as h``
    """Yield the helper (one worker thread), or ``None`` while another caller holds a claim.

    The caller must wait for what it submits before leaving the ``with`` block, so the helper
    is idle whenever a claim starts alone. (A class rather than a generator-based context
    manager: it is entered on every verification, and this costs a third as much.)
    """

    __slots__ = ()

    def __enter__(self) -> ThreadPoolExecutor | None:
        global _claims, _executor
        with _lock:
            _claims += 1
            if _claims != 1:
                return None
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attestation")
            return _executor

    def __exit__(self, *_: object) -> None:
        global _claims
        with _lock:
            _claims -= 1
