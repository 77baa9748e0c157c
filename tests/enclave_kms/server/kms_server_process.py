"""Start ``enclave-kms serve`` in a subprocess for a test module, and stop it afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY

from enclave_kms.testing import LocalCredentials, LocalKms

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


_ROOT = f"arn:aws:iam::{ACCOUNT}:root"
# The statement AWS documents for keys that must only be used over TLS.
TLS_ONLY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": _ROOT},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "DenyWithoutTls", "Effect": "Deny", "Principal": "*",
             "Action": "kms:GenerateDataKey", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }
)  # fmt: skip


def generates_data_key(kms: Any, key_id: str) -> bool:
    """Whether GenerateDataKey on ``key_id`` is allowed (any error but AccessDenied fails)."""
    try:
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDeniedException"
        return False
    return True


def with_header(kms: Any, name: str, value: str) -> Any:
    """``kms`` (a boto3 client), now sending ``name: value`` on every request."""

    def add_header(request: Any, **_: object) -> None:
        request.headers[name] = value

    kms.meta.events.register("before-sign.kms.*", add_header)
    return kms


def audit_rows(server: RunningServer, key_id: str) -> list[dict[str, Any]]:
    """The records ``enclave-kms audit --json`` lists for ``key_id`` on ``server``'s store."""
    out = subprocess.run(
        [*enclave_kms_command(), "audit", "--data-dir", str(server.data_dir), "--json",
         "--region", REGION, "--account-id", ACCOUNT, "--key", key_id],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines()]


TEST_CREDENTIALS = (
    # Root (the tests' default signer) and bob (an IAM user of the same account).
    LocalCredentials(ACCESS_KEY, SECRET_KEY, "root"),
    LocalCredentials(BOB_KEY, BOB_SECRET, "user/bob"),
)


@contextmanager
def running_server(
    work: Path, extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """Start the server on a free loopback port in ``work``; wait for /healthz; stop it on exit.

    It is the product's own :class:`enclave_kms.testing.LocalKms`, with the tests' fixed keys.
    """
    with LocalKms(
        credentials=TEST_CREDENTIALS,
        region=REGION,
        account_id=ACCOUNT,
        workdir=work,
        extra_args=extra_args,
        env=env,
    ) as server:
        yield RunningServer(server.port, server.data_dir, server.log_path)


class Endpoint(Protocol):
    """Anything the tests reach over HTTP: a server they started, or one of its replicas."""

    @property
    def endpoint(self) -> str: ...


def kms_client(server: Endpoint, key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> Any:
    """A boto3 KMS client for ``server``, signing as the account root unless told otherwise."""
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
