"""The demo's throwaway files: test PKI, credentials, allowlist, all in one temp directory.

Everything here is for a single demo run on one machine. The test PKI says DO NOT TRUST in its
names, the credentials are random and exist only in this directory (mode 0600) and in memory,
and the whole directory is removed at the end unless the user asked to keep it.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from attestation.testing.pki import TestPki

__all__ = [
    "ACCOUNT_ID",
    "ENCLAVE_ROLE",
    "REGION",
    "DemoCredential",
    "Workspace",
    "mint_pki",
    "new_credentials",
]

ACCOUNT_ID = "111122223333"
REGION = "us-east-1"
#: The parent instance's IAM role; its temporary credentials are what the enclave receives.
ENCLAVE_ROLE = "role/payments-enclave-parent"
_BASE32 = string.ascii_uppercase + "234567"


@dataclass(frozen=True)
class DemoCredential:
    """An access key the demo server accepts. The secret and token stay out of reprs."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal: str
    session_token: str | None = field(default=None, repr=False)

    @property
    def masked_id(self) -> str:
        """The key id as logs show it (the id is not secret; the output needs no more)."""
        return f"{self.access_key_id[:4]}...{self.access_key_id[-4:]}"


def _key_id(prefix: str) -> str:
    # AWS key ids: a 4-letter type prefix and 16 base32 characters.
    return prefix + "".join(secrets.choice(_BASE32) for _ in range(16))


def new_credentials() -> tuple[DemoCredential, DemoCredential]:
    """Fresh random credentials: the account root (administrator) and the role's session.

    The role's are temporary credentials (``ASIA`` key id plus a session token), the kind the
    parent gets from instance metadata and hands to the enclave. Randomness: :mod:`secrets`.
    """
    admin = DemoCredential(_key_id("AKIA"), secrets.token_urlsafe(30), "root")
    role = DemoCredential(
        _key_id("ASIA"), secrets.token_urlsafe(30), ENCLAVE_ROLE, secrets.token_urlsafe(48)
    )
    return admin, role


@dataclass(frozen=True)
class Workspace:
    """Paths inside the demo's temp directory."""

    root: Path

    @property
    def data_dir(self) -> Path:
        """The server's SQLite store and audit log."""
        return self.root / "kms-data"

    @property
    def pki_dir(self) -> Path:
        """The saved test PKI (``enclave-kms enclave --nsm simulated --pki-dir`` reads it)."""
        return self.root / "test-pki"

    @property
    def trust_root(self) -> Path:
        """The test root certificate the server is told to trust."""
        return self.root / "test-root-DO-NOT-TRUST.pem"

    @property
    def credentials_file(self) -> Path:
        """The server's access keys (secrets; mode 0600)."""
        return self.root / "credentials.json"

    @property
    def allowlist(self) -> Path:
        """The proxy's vsock-proxy style allowlist."""
        return self.root / "vsock-proxy.yaml"

    @property
    def handoff_socket(self) -> Path:
        """Where the "enclave" listens for the parent's credentials."""
        return self.root / "handoff.sock"

    def log(self, name: str) -> Path:
        """A log file for one of the demo's subprocesses."""
        return self.root / f"{name}.log"

    def write_credentials(self, credentials: tuple[DemoCredential, ...]) -> None:
        """Write the server's credentials file, readable by its owner only."""
        entries = []
        for cred in credentials:
            entry = {
                "access_key_id": cred.access_key_id,
                "secret_access_key": cred.secret_access_key,
                "principal": cred.principal,
            }
            if cred.session_token is not None:
                entry["session_token"] = cred.session_token
            entries.append(entry)
        fd = os.open(self.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"credentials": entries}, fh, indent=2)

    def write_allowlist(self, port: int) -> None:
        """Allow the proxy to reach the local server, and nothing else (vsock-proxy's YAML)."""
        self.allowlist.write_text(
            "# enclave-kms demo: the only upstream the parent proxy may reach.\n"
            f"allowlist:\n- {{address: 127.0.0.1, port: {port}}}\n",
            encoding="utf-8",
        )


def mint_pki(root: Path, seed: int, now: datetime) -> TestPki:
    """Derive a test PKI from ``seed``, save it and write its root PEM into the workspace.

    The CAs start a minute before ``now`` so clock rounding never makes them "not yet valid".
    """
    pki = TestPki.create(seed, valid_from=now - timedelta(minutes=1), region=REGION)
    workspace = Workspace(root)
    pki.save(workspace.pki_dir)
    workspace.trust_root.write_bytes(pki.root.public_bytes(Encoding.PEM))
    return pki
