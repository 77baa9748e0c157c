"""A throwaway ``enclave-kms serve`` on a loopback port, started as a user would start it.

The server runs as a real subprocess of this interpreter (``python -m enclave_kms serve``) with
a private data directory and a credentials file of freshly generated access keys, so a test
talks to exactly what production runs: the same process, SigV4 checks, store and wire format.
Nothing here imports the server, the service or the store (an import-linter contract holds it).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from enclave_kms.testing._process import exit_code, free_loopback_port, healthy, terminate_group
from enclave_kms.testing._tls import write_test_tls_files

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

__all__ = ["LocalCredentials", "LocalKms", "LocalKmsError", "free_loopback_port"]

# Generous: a loaded 2-core CI machine needs about a second to import FastAPI and uvicorn.
DEFAULT_START_TIMEOUT = 60.0
_PORT_ATTEMPTS = 3
_SETTINGS_PREFIX = "ENCLAVE_KMS_"  # the server's environment settings (pydantic-settings)
# Access key ids look like AWS's: AKIA and 16 characters of the base32 alphabet.
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class LocalKmsError(RuntimeError):
    """The local server did not start, or died; the message ends with its log's last lines."""


@dataclass(frozen=True, slots=True)
class LocalCredentials:
    """One access key of the local server and the principal it authenticates as.

    Attributes:
        access_key_id: the ``AKIA...`` id.
        secret_access_key: the secret (kept out of ``repr``).
        principal: ``root``, ``user/NAME`` or ``role/NAME``, in the server's account.
        session_token: for temporary credentials (as the parent hands an enclave); the server
            then requires it with this key (kept out of ``repr``).
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal: str = "root"
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def generate(cls, principal: str = "root") -> LocalCredentials:
        """New random credentials for ``principal`` (never the same twice)."""
        key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
        return cls(key_id, secrets.token_urlsafe(30), principal)


class LocalKms:
    """A local KMS endpoint for tests: start it, point boto3 at it, stop it.

    Example::

        with LocalKms(trust_roots=[pki.root]) as kms:
            client = kms.client()
            key_id = client.create_key()["KeyMetadata"]["KeyId"]

    Args:
        trust_roots: extra roots for attestation documents (e.g. a test PKI's root); the AWS
            Nitro root is always trusted.
        principals: who gets a generated access key (``root``, ``user/NAME``, ``role/NAME``).
            The first is the default of :meth:`client`. Ignored when ``credentials`` is given.
        credentials: explicit access keys instead of generated ones.
        region: the server's region (ARNs and the SigV4 scope).
        account_id: the server's 12-digit account.
        workdir: where the data directory, credentials and log go; a temporary directory that
            is removed on :meth:`stop` when ``None``.
        extra_args: more ``enclave-kms serve`` options (``--workers 2``, ``--store URL``...).
        env: environment variables for the server process. It inherits this process's
            environment except the ``ENCLAVE_KMS_*`` settings, which only ``env`` can set.
        start_timeout: seconds to wait for ``/healthz``.
        tls: serve HTTPS with a certificate from a throwaway CA made for this server
            (:attr:`ca_bundle`). :meth:`client` and :meth:`environment` trust that CA, and
            key policies see ``aws:SecureTransport`` true.

    Raises:
        ValueError: no principals, or a bad ``start_timeout``.
    """

    def __init__(
        self,
        *,
        trust_roots: Sequence[x509.Certificate] = (),
        principals: Sequence[str] = ("root",),
        credentials: Sequence[LocalCredentials] | None = None,
        region: str = "us-east-1",
        account_id: str = "111122223333",
        workdir: Path | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        tls: bool = False,
    ) -> None:
        creds = (
            tuple(credentials)
            if credentials is not None
            else tuple(LocalCredentials.generate(p) for p in principals)
        )
        if not creds:
            raise ValueError("at least one principal (or credential) is required")
        if start_timeout <= 0:
            raise ValueError("start_timeout must be positive")
        self.credentials: tuple[LocalCredentials, ...] = creds
        self.region = region
        self.account_id = account_id
        self._trust_roots = tuple(trust_roots)
        self._extra_args = tuple(extra_args)
        self._env = dict(env or {})
        self._start_timeout = start_timeout
        self._tls = tls
        self._workdir = workdir
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # --- where it is ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The loopback port it listens on.

        Raises:
            LocalKmsError: the server is not running.
        """
        if self._port is None or self._proc is None:
            raise LocalKmsError("the local KMS is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with ``tls``): for boto3 and ``--endpoint-url``."""
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> Path | None:
        """With ``tls``, the PEM file of the CA that signed the server's certificate."""
        return self.workdir / "tls" / "ca.pem" if self._tls else None

    @property
    def workdir(self) -> Path:
        """The directory holding ``data/``, ``credentials.json`` and ``server.log``."""
        if self._workdir is None:
            raise LocalKmsError("the local KMS has no work directory until it starts")
        return self._workdir

    @property
    def data_dir(self) -> Path:
        """The server's data directory (its SQLite store, unless ``--store`` says otherwise)."""
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.workdir / "server.log"

    def credentials_for(self, principal: str) -> LocalCredentials:
        """The access key of ``principal``.

        Raises:
            KeyError: no credential for that principal.
        """
        for cred in self.credentials:
            if cred.principal == principal:
                return cred
        raise KeyError(principal)

    def client(self, principal: str | None = None, **kwargs: Any) -> KMSClient:
        """A boto3 KMS client for this server, signed as ``principal`` (the first by default).

        ``kwargs`` go to ``boto3.client`` (for example ``config=``, or ``endpoint_url=`` to
        reach it through a proxy).
        """
        import boto3  # a runtime dependency, imported only by those who ask for a client

        cred = self.credentials[0] if principal is None else self.credentials_for(principal)
        if self.ca_bundle is not None:
            kwargs.setdefault("verify", str(self.ca_bundle))
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        client: KMSClient = boto3.client(
            "kms",
            region_name=self.region,
            aws_access_key_id=cred.access_key_id,
            aws_secret_access_key=cred.secret_access_key,
            aws_session_token=cred.session_token,
            **kwargs,
        )
        return client

    def environment(self, principal: str | None = None) -> dict[str, str]:
        """``AWS_*`` variables that point the AWS CLI (or any SDK) at this server."""
        cred = self.credentials[0] if principal is None else self.credentials_for(principal)
        env = {
            "AWS_ACCESS_KEY_ID": cred.access_key_id,
            "AWS_SECRET_ACCESS_KEY": cred.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL_KMS": self.endpoint_url,
        }
        if cred.session_token is not None:
            env["AWS_SESSION_TOKEN"] = cred.session_token
        if self.ca_bundle is not None:
            env["AWS_CA_BUNDLE"] = str(self.ca_bundle)
        return env

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The server's process id (its workers, if any, are in this process group).

        Raises:
            LocalKmsError: the server is not running.
        """
        if self._proc is None:
            raise LocalKmsError("the local KMS is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and exit_code(self._proc) is None

    def start(self) -> LocalKms:
        """Start the server and wait until ``/healthz`` answers; return ``self``.

        Raises:
            LocalKmsError: it is already running, exited early (the message has its log's
                tail), or did not answer in time.
        """
        if self._proc is not None:
            raise LocalKmsError("the local KMS is already running")
        if self._workdir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="enclave-kms-")
            self._workdir = Path(self._tempdir.name)
        try:
            self._prepare_files()
            # This run's output only: a line left by an earlier run in a reused workdir
            # ("address already in use") must not steer this one.
            self.log_path.write_bytes(b"")
            for attempt in range(_PORT_ATTEMPTS):
                port = free_loopback_port()
                self._launch(port)
                if self._wait_until_serving(last_attempt=attempt == _PORT_ATTEMPTS - 1):
                    return self
        except BaseException:
            self.stop()
            raise
        self.stop()
        raise LocalKmsError(f"no free loopback port after {_PORT_ATTEMPTS} attempts")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove a temporary work directory.

        Safe to call more than once, and on a server that never started.
        """
        proc, self._proc, self._port = self._proc, None, None
        if proc is not None:
            terminate_group(proc)
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
            self._workdir = None

    def __enter__(self) -> LocalKms:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Looked at without reaping the server, so stop() can still reach its workers.
        code = exit_code(self._proc) if self._proc is not None else None
        died = code is not None
        tail = self._log_tail() if died else ""
        self.stop()
        if died and exc_type is None:
            # A server that crashed mid-test must not pass unnoticed as a clean run.
            raise LocalKmsError(f"the local KMS had died with exit code {code}{tail}")

    # --- steps ------------------------------------------------------------------------------

    def _prepare_files(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        creds = self.workdir / "credentials.json"
        entries: list[dict[str, str]] = []
        for c in self.credentials:
            entry = {
                "access_key_id": c.access_key_id,
                "secret_access_key": c.secret_access_key,
                "principal": c.principal,
            }
            if c.session_token is not None:
                entry["session_token"] = c.session_token
            entries.append(entry)
        # Created 0600 from the start, and created anew: an existing file in a reused workdir
        # would keep its mode, and a planted symlink must not be followed.
        creds.unlink(missing_ok=True)
        fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"credentials": entries}, out)
        for i, root in enumerate(self._trust_roots):
            (self.workdir / f"trust-root-{i}.pem").write_bytes(root.public_bytes(Encoding.PEM))
        if self._tls:
            tls_dir = self.workdir / "tls"
            tls_dir.mkdir(mode=0o700, exist_ok=True)
            write_test_tls_files(tls_dir)

    def _command(self, port: int) -> list[str]:
        options: list[str] = []
        for i in range(len(self._trust_roots)):
            options += ["--trust-root", str(self.workdir / f"trust-root-{i}.pem")]
        if self._tls:
            tls_dir = self.workdir / "tls"
            options += [
                "--tls-cert",
                str(tls_dir / "server.pem"),
                "--tls-key",
                str(tls_dir / "server.key"),
            ]
        return [
            sys.executable, "-m", "enclave_kms", "serve",
            "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(self.data_dir),
            "--credentials-file", str(self.workdir / "credentials.json"),
            "--region", self.region, "--account-id", self.account_id,
            *options, *self._extra_args,
        ]  # fmt: skip

    def _launch(self, port: int) -> None:
        # Hermetic: an ENCLAVE_KMS_* setting inherited from the caller's shell (a production
        # store URL, a root key) must not reach a throwaway server; only ``env`` sets them.
        # Case-insensitive, as the server's settings read them.
        inherited = {
            k: v for k, v in os.environ.items() if not k.upper().startswith(_SETTINGS_PREFIX)
        }
        env = {**inherited, **self._env}
        with self.log_path.open("ab") as log:
            # Our own module run by this interpreter; the arguments are this object's settings.
            self._proc = subprocess.Popen(  # noqa: S603
                self._command(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                # Its own process group, so stop() reaches every worker it forks.
                start_new_session=True,
            )
        self._port = port

    def _wait_until_serving(self, *, last_attempt: bool) -> bool:
        """True once it serves; False if it lost a race for its port (and may retry)."""
        proc = self._proc
        assert proc is not None  # noqa: S101 - set by _launch
        scheme = "https" if self._tls else "http"
        url = f"{scheme}://127.0.0.1:{self._port}/healthz"
        deadline = time.monotonic() + self._start_timeout
        while True:
            code = exit_code(proc)
            if code is not None:
                self._proc = None
                terminate_group(proc)
                tail = self._log_tail()
                if "address already in use" in tail.lower() and not last_attempt:
                    return False
                raise LocalKmsError(f"the local KMS exited with code {code} on start{tail}")
            if healthy(url, cafile=self.ca_bundle):
                if self._answers_as_ours():
                    return True
                # Someone else took the port first and answered for it (another test
                # session's server, say); ours will fail to bind. Try another port.
                self._proc = None
                terminate_group(proc)
                if last_attempt:
                    raise LocalKmsError(f"another process answers on port {self._port}")
                return False
            if time.monotonic() > deadline:
                raise LocalKmsError(
                    f"the local KMS did not answer {url} within {self._start_timeout:.0f} s"
                    f"{self._log_tail()}"
                )
            time.sleep(0.05)

    def _answers_as_ours(self) -> bool:
        """Whether the server on our port accepts a request signed with our fresh keys."""
        from botocore.config import Config

        try:
            client = self.client(
                config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
            )
            client.list_keys(Limit=1)
        except Exception:  # any refusal or failure: not (yet) provably ours
            return False
        return self.running

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, LocalKmsError):
            return ""
        tail = text.splitlines()[-lines:]
        return ("\n--- server log (last lines) ---\n" + "\n".join(tail)) if tail else ""
