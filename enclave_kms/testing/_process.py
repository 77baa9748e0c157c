"""Process plumbing for :class:`~enclave_kms.testing.LocalKms`: ports, liveness, stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["exit_code", "free_loopback_port", "healthy", "terminate_group"]

STOP_TIMEOUT = 15.0


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).

    Another process can take it before the caller binds it; :class:`LocalKms` retries with a
    new port when that happens.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthy(url: str, *, cafile: Path | None = None) -> bool:
    """Whether ``url`` answers 200 within a second (over HTTPS: trusting only ``cafile``)."""
    context = ssl.create_default_context(cafile=str(cafile)) if cafile is not None else None
    try:
        # A loopback URL built from our own port.
        with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """The server's exit code once it has exited (negative for a signal), else ``None``.

    Looked up without reaping it (``WNOWAIT``): while the leader is unreaped, even as a
    zombie, its pid (the process group's id) cannot be reused, so the group can still be
    signalled safely.
    """
    if proc.returncode is not None:
        return proc.returncode
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped by someone else
        return proc.poll()
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def terminate_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group: SIGTERM, a grace period, SIGKILL, then reap."""
    if proc.returncode is not None:
        return  # reaped already: its group id may belong to someone else by now
    if exit_code(proc) is None:
        _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while exit_code(proc) is None and time.monotonic() < deadline:
            time.sleep(0.02)
    # Whatever is left of the group (workers of a leader that died first, or a leader that
    # ignored SIGTERM) goes now, before the leader is reaped and its id freed.
    _signal_group(proc, signal.SIGKILL)
    proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
