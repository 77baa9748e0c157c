"""Start ``enclave-kms serve`` in a subprocess for a test module, and stop it afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, free_port

BOB_KEY = "AKIAENCLAVEKMSBOB001"
BOB_SECRET = "bob/secret/for/the/enclave/kms/tests/xxx"


@dataclass(frozen=True)
class RunningServer:
    """A server the test started: where it listens and where its files are."""

    port: int
    data_dir: Path
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def enclave_kms_command() -> list[str]:
    """The installed console script, or ``python -m enclave_kms`` if it is not on disk."""
    script = Path(sys.executable).parent / "enclave-kms"
    if script.exists():
        return [str(script)]
    found = shutil.which("enclave-kms")
    return [found] if found else [sys.executable, "-m", "enclave_kms"]


def write_credentials(path: Path) -> None:
    """Root (the test's default signer) and bob (an IAM user of the same account)."""
    path.write_text(
        json.dumps(
            {
                "credentials": [
                    {
                        "access_key_id": ACCESS_KEY,
                        "secret_access_key": SECRET_KEY,
                        "principal": "root",
                    },
                    {
                        "access_key_id": BOB_KEY,
                        "secret_access_key": BOB_SECRET,
                        "principal": "user/bob",
                    },
                ]
            }
        )
    )
    path.chmod(0o600)


def wait_until_serving(
    proc: subprocess.Popen[bytes], port: int, log: Path, what: str = "server"
) -> None:
    """Return once ``/healthz`` answers 200; raise with the log if the process dies or stalls."""
    deadline = time.monotonic() + 60  # generous: the 2 cores are shared with other jobs
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log.read_text()}")
        time.sleep(0.1)


@contextmanager
def running_server(work: Path, extra_args: Sequence[str] = ()) -> Iterator[RunningServer]:
    """Start the server on a free loopback port; wait for /healthz; stop it on exit."""
    data = work / "data"
    creds = work / "credentials.json"
    write_credentials(creds)
    port = free_port()
    log = work / "server.log"
    cmd = [
        *enclave_kms_command(), "serve", "--port", str(port), "--data-dir", str(data),
        "--credentials-file", str(creds), "--region", REGION, "--account-id", ACCOUNT,
        *extra_args,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(proc, port, log)
        yield RunningServer(port, data, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
