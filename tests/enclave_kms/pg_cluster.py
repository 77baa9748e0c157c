"""A throwaway PostgreSQL cluster for tests: initdb into a temp dir, start, hand out databases.

The server listens on a free loopback port (password auth) and on a unix socket inside the
temp dir. When the tests run as root (as in CI containers), the server binaries run as an
existing unprivileged account (``postgres``, else ``nobody``) through ``runuser``, because
the server refuses to run as root. Nothing is installed and no account is created.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from enclave_kms.testing import free_loopback_port

__all__ = ["PgCluster", "find_bindir", "running_cluster"]

_SUPERUSER = "kms_test"


def find_bindir() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's layout)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _server_options(port: int, base: Path) -> str:
    # fsync=off and full_page_writes=off: a test cluster that is thrown away never needs
    # crash recovery. Product code never sets these.
    return (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base} "
        "-c fsync=off -c full_page_writes=off -c max_connections=200"
    )


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


@dataclass
class PgCluster:
    """A running cluster; :meth:`create_database` hands out fresh databases."""

    bindir: Path
    base: Path
    port: int
    password: str
    run_as: pwd.struct_passwd | None
    _counter: int = 0

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` over loopback TCP."""
        return f"postgresql://{_SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def command(self, tool: str, *args: str) -> list[str]:
        """The argv that runs a server binary (as the unprivileged account when root)."""
        argv = [str(self.bindir / tool), *args]
        if self.run_as is not None:
            argv = ["runuser", "-u", self.run_as.pw_name, "--", *argv]
        return argv

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a server binary in the cluster directory, raising with its output on failure."""
        done = subprocess.run(
            self.command(tool, *args), cwd=self.base, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")
        return done

    def create_database(self, prefix: str = "t", template: str | None = None) -> str:
        """Create a new database (optionally a copy of ``template``); return its URL."""
        self._counter += 1
        name = f"{prefix}_{self._counter}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            query = f'CREATE DATABASE "{name}"'
            if template is not None:
                # FILE_COPY: copies the template's files instead of WAL-logging every block,
                # much faster for a small database on a cluster without fsync.
                query += f' TEMPLATE "{template}" STRATEGY FILE_COPY'
            conn.execute(query)  # type: ignore[call-overload]
        return self.url(name)


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """Start a throwaway cluster; stop it and delete its files afterwards.

    Raises:
        FileNotFoundError: no server binaries (callers turn this into a skip).
        RuntimeError: initdb or pg_ctl failed (with the server's output).
    """
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl) found")
    run_as = _run_as()
    base = Path(tempfile.mkdtemp(prefix="enclave-kms-pg-"))
    password = secrets.token_hex(16)
    (base / "pwfile").write_text(password + "\n")
    if run_as is not None:
        os.chown(base, run_as.pw_uid, run_as.pw_gid)
        os.chown(base / "pwfile", run_as.pw_uid, run_as.pw_gid)
    cluster = PgCluster(bindir, base, free_loopback_port(), password, run_as)
    started = False
    try:
        cluster.run(
            "initdb", "-D", str(base / "data"), "-U", _SUPERUSER, "--pwfile", str(base / "pwfile"),
            "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        for attempt in range(3):
            try:
                cluster.run(
                    "pg_ctl", "start", "-w", "-t", "60", "-D", str(base / "data"),
                    "-l", str(base / "server.log"), "-o", _server_options(cluster.port, base),
                )  # fmt: skip
                break
            except RuntimeError:
                if attempt == 2:
                    log = (base / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"pg_ctl start failed; server log:\n{log}") from None
                # Someone else took the port between probing and binding: try another one.
                cluster.port = free_loopback_port()
        started = True
        yield cluster
    finally:
        if started:
            with contextlib.suppress(RuntimeError):
                cluster.run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(base / "data"))
        shutil.rmtree(base, ignore_errors=True)
