"""The demo's separate programs: ``enclave-kms serve`` and ``enclave-kms proxy``; the audit query.

The server and the proxy run as real subprocesses of this Python (``python -m enclave_kms ...``),
exactly as a user would start them, with their output in log files in the demo workspace.
:class:`ManagedProcess` stops what it started (SIGTERM, then SIGKILL after a grace period) even
when a step failed.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "DemoStepError",
    "ManagedProcess",
    "ServerConfig",
    "enclave_kms_command",
    "run_audit",
    "start_proxy",
    "start_server",
]

# Generous: a loaded 2-core CI machine imports FastAPI and uvicorn in about a second.
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
# uvicorn re-raises the SIGTERM/SIGINT it handled once its shutdown is complete, so death by
# those signals is a clean stop too (Ctrl-C reaches the whole process group).
_CLEAN_EXIT = (0, -signal.SIGTERM, -signal.SIGINT)


class DemoStepError(Exception):
    """A demo step did not behave as it must; the message says what happened, for the user."""


def enclave_kms_command() -> list[str]:
    """``enclave-kms`` as this interpreter runs it (independent of PATH and console scripts)."""
    return [sys.executable, "-m", "enclave_kms"]


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("      | " + line for line in text.splitlines()[-lines:])


class ManagedProcess:
    """A subprocess with its output in ``log``; a context manager that always stops it.

    Args:
        name: a label for messages (``"KMS server"``).
        argv: the command line.
        log: the file that receives stdout and stderr.
    """

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            # The command is this interpreter and our own module: no shell, no user input.
            self._proc = subprocess.Popen(  # noqa: S603
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self._proc.pid

    @property
    def exit_code(self) -> int | None:
        """The exit code, or ``None`` while it runs."""
        return self._proc.poll()

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Poll ``ready()`` until it is true; fail if the process exits or time runs out.

        Raises:
            DemoStepError: the process exited or did not get ready in time.
        """
        deadline = time.monotonic() + _START_TIMEOUT
        while not ready():
            code = self._proc.poll()
            if code is not None:
                raise DemoStepError(
                    f"the {self.name} exited with code {code} before {what}:\n{_tail(self.log)}"
                )
            if time.monotonic() > deadline:
                raise DemoStepError(f"the {self.name} did not get ready ({what}) in time")
            time.sleep(0.05)

    def stop(self) -> str:
        """SIGTERM, wait, then SIGKILL if it did not stop; return how it ended, in words.

        Raises:
            DemoStepError: it ignored SIGTERM and had to be killed, or it had already died
                with an error (in both cases it is gone when this raises).
        """
        if self._proc.poll() is not None:
            code = self._proc.returncode
            if code not in _CLEAN_EXIT:
                raise DemoStepError(f"the {self.name} had died with exit code {code}")
            return "had already exited cleanly"
        self._proc.terminate()
        try:
            code = self._proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise DemoStepError(
                f"the {self.name} ignored SIGTERM for {_STOP_TIMEOUT:.0f} s and was killed"
            ) from None
        if code in _CLEAN_EXIT:
            return "stopped cleanly"
        raise DemoStepError(f"the {self.name} exited with code {code} when asked to stop")

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(DemoStepError):
            self.stop()


def _healthy(url: str) -> bool:
    try:
        # A loopback URL this module built from a port number.
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
            return int(response.status) == 200
    except OSError:
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _stop_on_error(process: ManagedProcess) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(DemoStepError):  # the start-up error is the one to report
            process.stop()
        raise


@dataclass(frozen=True)
class ServerConfig:
    """How the demo starts ``enclave-kms serve``."""

    port: int
    data_dir: Path
    credentials_file: Path
    trust_root: Path
    region: str
    account_id: str


def start_server(config: ServerConfig, log: Path) -> ManagedProcess:
    """Start ``enclave-kms serve`` and wait for ``/healthz``.

    Raises:
        DemoStepError: the server exited or did not become healthy.
    """
    argv = [
        *enclave_kms_command(), "serve",
        "--host", "127.0.0.1", "--port", str(config.port),
        "--data-dir", str(config.data_dir),
        "--credentials-file", str(config.credentials_file),
        "--trust-root", str(config.trust_root),
        "--region", config.region, "--account-id", config.account_id,
        "--log-level", "warning",
    ]  # fmt: skip
    process = ManagedProcess("KMS server", argv, log)
    with _stop_on_error(process):
        process.wait_until(
            lambda: _healthy(f"http://127.0.0.1:{config.port}/healthz"), "answering /healthz"
        )
    return process


def start_proxy(listen_port: int, upstream_port: int, allowlist: Path, log: Path) -> ManagedProcess:
    """Start ``enclave-kms proxy`` relaying the enclave-side port to the server; wait for it.

    Raises:
        DemoStepError: the proxy exited (for example, the allowlist refused the route) or did
            not start listening.
    """
    route = f"tcp:127.0.0.1:{listen_port}=tcp:127.0.0.1:{upstream_port}"
    argv = [
        *enclave_kms_command(), "proxy", "--config", str(allowlist), "--route", route,
        # The demo's connections are short; do not wait 10 s for idle keep-alives at shutdown.
        "--drain-timeout", "1", "--log-level", "info",
    ]  # fmt: skip
    process = ManagedProcess("parent proxy", argv, log)
    with _stop_on_error(process):
        process.wait_until(lambda: _accepts(listen_port), "listening")
    return process


def run_audit(data_dir: Path, key_id: str, region: str, account_id: str) -> list[dict[str, Any]]:
    """Run ``enclave-kms audit --json`` for one key; return its records (oldest first).

    The command runs in this process (the same code path as the console script, without a
    second interpreter start-up); it opens the store the running server writes to, as an
    operator's ``enclave-kms audit`` would (SQLite WAL allows a reader beside the writer).

    Raises:
        DemoStepError: the command failed or printed something that is not JSON lines.
    """
    from enclave_kms.cli import main as enclave_kms_main  # the project CLI imports this package

    argv = [
        "audit", "--json", "--data-dir", str(data_dir),
        "--region", region, "--account-id", account_id, "--key", key_id,
    ]  # fmt: skip
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = enclave_kms_main(argv)
    if code != 0:
        raise DemoStepError(
            f"enclave-kms audit exited with code {code}: {stderr.getvalue().strip()}"
        )
    records: list[dict[str, Any]] = []
    for line in stdout.getvalue().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            raise DemoStepError(f"enclave-kms audit printed a line that is not a record: {line!r}")
        records.append(row)
    return records
