"""A server subprocess that can be SIGKILLed and restarted on the same store, and a tiny client.

The client is raw ``http.client`` with botocore's SigV4 signer on one keep-alive connection:
light enough that several load threads do not starve the server of the machine's CPU, and it
tells a transport failure (the server died under the call: outcome unknown) apart from an
answer (the server decided).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from enclave_kms.testing import free_loopback_port

ACCOUNT = "111122223333"
REGION = "us-east-1"
ACCESS_KEY = "AKIAENCLAVEKMSCRASH1"
SECRET_KEY = "crash/test/secret/loopback/only/xxxxxxxx"
SQLITE_FILE = "enclave-kms.sqlite3"


class CallInDoubt(Exception):
    """The connection failed before a full answer arrived: the call may or may not have run."""


class CallNotSent(CallInDoubt):
    """The connection was refused: the server was down and the call certainly never ran."""


class CallRefused(Exception):
    """The server answered with an error (it decided; nothing was acknowledged)."""

    def __init__(self, status: int, error_type: str) -> None:
        super().__init__(f"{status} {error_type}")
        self.status = status
        self.error_type = error_type


def _command() -> list[str]:
    script = Path(sys.executable).parent / "enclave-kms"
    return [str(script)] if script.exists() else [sys.executable, "-m", "enclave_kms"]


def serve_supports_store_option() -> bool:
    """Whether ``enclave-kms serve`` takes a ``--store URL`` (needed for PostgreSQL)."""
    done = subprocess.run(
        [*_command(), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return "--store" in done.stdout


class KillableServer:
    """``enclave-kms serve`` on a fixed port and data dir; started, killed, started again.

    The server runs in its own session, so :meth:`kill` can SIGKILL its whole process group
    (the uvicorn supervisor and every worker at once, as a power cut or the OOM killer would).
    """

    def __init__(self, work: Path, *, store_url: str | None = None, workers: int = 1) -> None:
        self.data_dir = work / "data"
        self.credentials = work / "credentials.json"
        self.log = work / "server.log"
        self.port = free_loopback_port()
        self.store_url = store_url
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.credentials.write_text(
            json.dumps(
                {
                    "credentials": [
                        {
                            "access_key_id": ACCESS_KEY,
                            "secret_access_key": SECRET_KEY,
                            "principal": "root",
                        }
                    ]
                }
            )
        )
        self.credentials.chmod(0o600)
        # A shared PostgreSQL store never generates a root key: every start must be given
        # the same one (SQLite keeps its own in the data dir).
        self.root_key = work / "root.key"
        self.root_key.write_bytes(os.urandom(32))
        self.root_key.chmod(0o600)
        self.root_key.chmod(0o600)

    def env(self) -> dict[str, str]:
        # Only what this test sets: a stray ENCLAVE_KMS_* in the caller's shell must not
        # point the server at another store or key.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_KMS_")}
        if self.store_url is not None:
            # Through the environment, not argv: the URL carries the database password.
            env["ENCLAVE_KMS_STORE_URL"] = self.store_url
            env["ENCLAVE_KMS_ROOT_KEY_FILE"] = str(self.root_key)
        return env

    def argv(self) -> list[str]:
        argv = [
            *_command(), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
            "--credentials-file", str(self.credentials), "--region", REGION,
            "--account-id", ACCOUNT, "--workers", str(self.workers), "--log-level", "warning",
        ]  # fmt: skip
        return argv

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until ``/healthz`` answers 200."""
        assert self.proc is None, "already running"
        with self.log.open("ab") as out:
            out.write(b"---- start ----\n")
            out.flush()
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server's whole process group and reap it."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it may already be gone
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


class RawKmsClient:
    """One keep-alive connection; each call is signed just before it is sent."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kms", REGION)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(self, target: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send one KMS call; return the decoded answer.

        Raises:
            CallInDoubt: the connection broke before the whole answer was read.
            CallRefused: the server answered with an error status.
        """
        raw = json.dumps(body).encode()
        host = f"127.0.0.1:{self.port}"
        request = AWSRequest(
            method="POST",
            url=f"http://{host}/",
            data=raw,
            headers={
                "X-Amz-Target": f"TrentService.{target}",
                "Content-Type": "application/x-amz-json-1.1",
                "Host": host,
            },
        )
        self._auth.add_auth(request)
        headers = dict(request.prepare().headers)
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, self.timeout)
            self._conn.request("POST", "/", raw, headers)
            resp = self._conn.getresponse()
            data = resp.read()
        except ConnectionRefusedError:
            self.close()
            raise CallNotSent("connection refused") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise CallInDoubt(type(exc).__name__) from None
        answer: dict[str, Any] = json.loads(data or b"{}")
        if resp.status != 200:
            raise CallRefused(resp.status, str(answer.get("__type", "?")))
        return answer


def sqlite_integrity(data_dir: Path) -> str:
    """``PRAGMA integrity_check`` of the store file, with the server stopped ('ok' is clean)."""
    import sqlite3

    db = sqlite3.connect(data_dir / SQLITE_FILE)
    try:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()
    return "; ".join(str(r[0]) for r in rows)


def pg_cluster_module() -> Any:
    """The suite's throwaway-cluster helper (``tests/enclave_kms/pg_cluster.py``)."""
    helpers = str(Path(__file__).resolve().parent.parent)
    if helpers not in sys.path:
        sys.path.append(helpers)
    return importlib.import_module("pg_cluster")


__all__ = [
    "CallInDoubt",
    "CallNotSent",
    "CallRefused",
    "KillableServer",
    "RawKmsClient",
    "serve_supports_store_option",
    "sqlite_integrity",
]
