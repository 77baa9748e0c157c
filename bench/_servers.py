"""Shared by the soak and scale benchmarks: start ``enclave-kms serve``, watch it, talk to it.

- :class:`Server` starts the server in its own process group on a loopback port (SQLite in a
  temp data dir, or a PostgreSQL store URL), reads its RSS and CPU time from ``/proc``, and
  stops it.
- :func:`signed_request` builds a complete SigV4-signed HTTP/1.1 request as bytes, so a client
  can send it on a raw keep-alive socket without botocore in the timed loop.
- :class:`RawConnection` sends such bytes and reads one response with minimal parsing.
- :func:`throwaway_postgres` starts a private PostgreSQL cluster (initdb into a temp dir).
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import platform
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from enclave_kms.testing import free_loopback_port

REGION = "us-east-1"
ACCOUNT = "111122223333"
ACCESS_KEY = "AKIABENCHSOAKSCALE01"
SECRET_KEY = "bench/secret/for/loopback/only/soakscale"  # noqa: S105 - loopback bench
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """One line describing where the numbers were taken."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        cols = [int(x) for x in f.readline().split()[1:]]
    idle = cols[3] + cols[4]  # idle, iowait
    return (sum(cols[:8]) - idle) / _CLK_TCK


def _stat_fields(pid: int | str) -> list[str]:
    # /proc/<pid>/stat after the ")" that closes the command name: state, ppid, pgrp, ...
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and its direct children (a PostgreSQL
    postmaster and its backends), as far as they are alive now."""
    total = 0.0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        pid = stat.split("/")[2]
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            if int(pid) == root_pid or int(fields[1]) == root_pid:
                total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


def serve_command() -> list[str]:
    script = Path(sys.executable).parent / "enclave-kms"
    return [str(script)] if script.exists() else [sys.executable, "-m", "enclave_kms"]


def serve_supports_store_option() -> bool:
    """Whether ``enclave-kms serve`` accepts ``--store URL`` (needed for PostgreSQL)."""
    done = subprocess.run(
        [*serve_command(), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return "--store" in done.stdout


class Server:
    """``enclave-kms serve`` in its own session on a free loopback port."""

    def __init__(
        self,
        work: Path,
        *,
        workers: int = 1,
        store_url: str | None = None,
        trust_roots: Sequence[Path] = (),
    ) -> None:
        self.port = free_loopback_port()
        self.log = work / f"server-{self.port}.log"
        creds = work / "credentials.json"
        creds.write_text(
            json.dumps(
                {"credentials": [{"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}]}
            )
        )
        creds.chmod(0o600)
        self.argv = [
            *serve_command(), "serve", "--port", str(self.port),
            "--data-dir", str(work / f"data-{self.port}"), "--credentials-file", str(creds),
            "--region", REGION, "--account-id", ACCOUNT, "--workers", str(workers),
            "--log-level", "warning",
        ]  # fmt: skip
        for root in trust_roots:
            self.argv += ["--trust-root", str(root)]
        # Only what the benchmark sets: a stray ENCLAVE_KMS_* in the shell must not point the
        # server at another store or key.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_KMS_")}
        if store_url is not None:
            # Through the environment, not argv: the URL carries the database password. A
            # shared PostgreSQL store needs a root key given to it (none is generated).
            root_key = work / "root.key"
            if not root_key.exists():
                root_key.write_bytes(os.urandom(32))
                root_key.chmod(0o600)
            self.env["ENCLAVE_KMS_STORE_URL"] = store_url
            self.env["ENCLAVE_KMS_ROOT_KEY_FILE"] = str(root_key)
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                # With several workers, wait until every worker process exists.
                if status == 200 and len(self.pids()) >= self.workers + (self.workers > 1):
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def pids(self) -> list[int]:
        """Every live process in the server's process group (supervisor and workers)."""
        if self.proc is None:
            return []
        found = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid and fields[0] != "Z":  # pgrp, state
                    found.append(int(stat.split("/")[2]))
        return found

    def rss_kib(self) -> int:
        """Resident set size of the server, summed over its processes (VmRSS, KiB)."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> dict[int, float]:
        """User + system CPU seconds per server process."""
        out = {}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime
        return out

    def connections_per_process(self) -> list[int]:
        """Established client connections each server process holds (how the kernel and
        uvicorn spread keep-alive sockets over workers), largest first."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if int(cols[1].rsplit(":", 1)[1], 16) == self.port and cols[3] == "01":
                        inodes.add(cols[9])
        counts = []
        for pid in self.pids():
            n = 0
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        link = os.readlink(f"/proc/{pid}/fd/{fd}")
                        n += link.startswith("socket:[") and link[8:-1] in inodes
            if n:
                counts.append(n)
        return sorted(counts, reverse=True)


def signed_request(port: int, target: str, body: dict[str, object]) -> bytes:
    """A complete SigV4-signed HTTP/1.1 request (keep-alive), valid for about 5 minutes."""
    raw = json.dumps(body).encode()
    host = f"127.0.0.1:{port}"
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
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kms", REGION).add_auth(request)
    headers = dict(request.prepare().headers)
    headers["Content-Length"] = str(len(raw))  # botocore's prepare() may already set it
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST / HTTP/1.1\r\n{head}\r\n".encode() + raw


class RawConnection:
    """A keep-alive socket that sends prepared requests and reads one response each."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, request: bytes) -> None:
        self.sock.sendall(request)

    def feed(self) -> tuple[int, bytes] | None:
        """Read what is available; return (status, body) once a whole response is in."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self._buf += chunk
        return self._take()

    def _take(self) -> tuple[int, bytes] | None:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self._buf[:end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self._buf) < end + 4 + length:
            return None
        body = self._buf[end + 4 : end + 4 + length]
        self._buf = self._buf[end + 4 + length :]
        return int(head.split(" ", 2)[1]), body

    def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        self.send(request)
        while True:
            done = self.feed()
            if done is not None:
                return done


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class Postgres:
    """A running cluster: the URL of its ``kms`` database and the postmaster's pid."""

    url: str = field(repr=False)
    pid: int


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster on loopback, with a fresh empty ``kms`` database.

    Durable settings (fsync on), unlike the test clusters: this measures a real deployment.
    As root, the server binaries run as ``postgres`` (or ``nobody``) via ``runuser``.

    Raises:
        FileNotFoundError: no PostgreSQL server binaries.
    """
    bindir = _pg_bindir()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl)")
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="enclave-kms-bench-pg-"))
    password = secrets.token_hex(12)
    (base / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        account = None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                account = pwd.getpwnam(name)
                break
        if account is None:
            raise FileNotFoundError("running as root with no postgres/nobody account")
        prefix = ["runuser", "-u", account.pw_name, "--"]
        for p in (base, base / "pw"):
            os.chown(p, account.pw_uid, account.pw_gid)
    port = free_loopback_port()
    data = base / "data"

    def run(*argv: str) -> None:
        subprocess.run([*prefix, *argv], cwd=base, check=True, capture_output=True)

    run(
        str(bindir / "initdb"), "-D", str(data), "-U", "bench", "--pwfile", str(base / "pw"),
        "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8",
    )  # fmt: skip
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base}"
    run(str(bindir / "pg_ctl"), "start", "-w", "-D", str(data), "-l", str(base / "log"), "-o", opts)
    try:
        import psycopg

        with psycopg.connect(
            f"postgresql://bench:{password}@127.0.0.1:{port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE kms")
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield Postgres(f"postgresql://bench:{password}@127.0.0.1:{port}/kms", pid)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(str(bindir / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(data))
        shutil.rmtree(base, ignore_errors=True)
