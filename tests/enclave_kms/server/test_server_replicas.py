"""Two ``enclave-kms serve`` replicas on one PostgreSQL database, driven with boto3.

The database is migrated once with ``enclave-kms migrate --store URL``; both replicas get the
same root key through ``ENCLAVE_KMS_ROOT_KEY_FILE`` and their own data directory (as two
machines would). Key state, policy and current version are read through on every
cryptographic call, so DisableKey and rotation on one replica are honoured by the other at
once; alias targets and DescribeKey may lag by at most the cache poll interval plus a round
trip, so those are polled for, within that bound plus a margin for this shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kms_server_helpers import ACCOUNT, REGION
from kms_server_process import enclave_kms_command, kms_client, running_server

from enclave_kms import _ciphertext
from enclave_kms.testing import free_loopback_port

pytestmark = [pytest.mark.interop, pytest.mark.slow]

POLL_INTERVAL = 0.5  # the replicas' cache_poll_interval (seconds)
# The documented bound is the poll interval plus one round trip; the margin absorbs a busy
# 2-core machine, it is not part of the guarantee.
STALENESS_DEADLINE = POLL_INTERVAL + 10.0


@dataclass(frozen=True)
class Replica:
    endpoint: str
    log: Path

    def client(self) -> Any:
        return kms_client(self)


def _environment(root_key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_KMS_")}
    env["ENCLAVE_KMS_ROOT_KEY_FILE"] = str(root_key_file)
    env["ENCLAVE_KMS_CACHE_POLL_INTERVAL"] = str(POLL_INTERVAL)
    return env


@contextmanager
def _replica(work: Path, store_url: str, env: dict[str, str]) -> Iterator[Replica]:
    work.mkdir()
    extra = ["--store", store_url, "--log-level", "warning"]
    with running_server(work, extra, env=env) as server:
        yield Replica(server.endpoint, server.log)


@dataclass(frozen=True)
class Cluster:
    a: Replica
    b: Replica
    store_url: str
    env: dict[str, str]
    work: Path


@pytest.fixture(scope="module")
def replicas(pg_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("replicas")
    url: str = pg_cluster.create_database("replicas")
    root_key_file = work / "root.key"
    root_key_file.write_bytes(os.urandom(32))
    root_key_file.chmod(0o600)
    env = _environment(root_key_file)
    migrated = subprocess.run(
        [*enclave_kms_command(), "migrate", "--store", url],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    with ExitStack() as stack:
        a = stack.enter_context(_replica(work / "a", url, env))
        b = stack.enter_context(_replica(work / "b", url, env))
        yield Cluster(a, b, url, env, work)


def _eventually(check: Callable[[], bool], what: str) -> float:
    """Poll ``check`` until it holds; fail after the staleness bound plus margin."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > STALENESS_DEADLINE:
            raise AssertionError(f"{what}: not seen within {STALENESS_DEADLINE} s")
        time.sleep(0.05)
    return time.monotonic() - start


def _version(blob: bytes) -> int:
    return _ciphertext.read_header(blob).key_version


def test_a_key_created_on_one_replica_is_used_through_the_other(replicas: Cluster) -> None:
    a, b = replicas.a.client(), replicas.b.client()
    key_id = a.create_key(Description="shared")["KeyMetadata"]["KeyId"]
    assert b.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "shared"
    blob = b.encrypt(KeyId=key_id, Plaintext=b"hello", EncryptionContext={"t": "1"})[
        "CiphertextBlob"
    ]
    opened = a.decrypt(CiphertextBlob=blob, EncryptionContext={"t": "1"})
    assert opened["Plaintext"] == b"hello"
    assert opened["KeyId"].endswith(key_id)


def test_aliases_resolve_on_the_other_replica(replicas: Cluster) -> None:
    a, b = replicas.a.client(), replicas.b.client()
    first = a.create_key()["KeyMetadata"]["KeyId"]
    second = a.create_key()["KeyMetadata"]["KeyId"]
    a.create_alias(AliasName="alias/replicated", TargetKeyId=first)
    # A new alias is found at once (lookups that miss are never cached).
    assert b.describe_key(KeyId="alias/replicated")["KeyMetadata"]["KeyId"] == first
    a.update_alias(AliasName="alias/replicated", TargetKeyId=second)

    def follows() -> bool:
        blob = b.encrypt(KeyId="alias/replicated", Plaintext=b"x")["CiphertextBlob"]
        return _ciphertext.read_header(blob).key_id == second

    _eventually(follows, "UpdateAlias on replica A, seen by Encrypt on replica B")


def test_a_rotation_on_one_replica_is_honoured_by_the_other(replicas: Cluster) -> None:
    a, b = replicas.a.client(), replicas.b.client()
    key_id = a.create_key()["KeyMetadata"]["KeyId"]
    old = b.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    assert _version(old) == 1
    a.rotate_key_on_demand(KeyId=key_id)
    # The current version is read through on every Encrypt: no waiting.
    new = b.encrypt(KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    assert _version(new) == 2
    assert b.decrypt(CiphertextBlob=old)["Plaintext"] == b"before"
    assert a.decrypt(CiphertextBlob=new)["Plaintext"] == b"after"
    rotations = b.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"]


def test_disable_on_one_replica_stops_crypto_on_the_other_at_once(replicas: Cluster) -> None:
    a, b = replicas.a.client(), replicas.b.client()
    key_id = a.create_key()["KeyMetadata"]["KeyId"]
    blob = b.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    b.describe_key(KeyId=key_id)  # B now holds the Enabled record in its cache
    a.disable_key(KeyId=key_id)
    for call in (
        lambda: b.encrypt(KeyId=key_id, Plaintext=b"x"),
        lambda: b.decrypt(CiphertextBlob=blob),
        lambda: b.generate_data_key(KeyId=key_id, KeySpec="AES_256"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "DisabledException"
    # DescribeKey may answer from the cache, within the documented bound.
    _eventually(
        lambda: b.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled",
        "DisableKey on replica A, seen by DescribeKey on replica B",
    )
    a.enable_key(KeyId=key_id)
    assert b.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_audit_sees_records_from_both_replicas(replicas: Cluster) -> None:
    a, b = replicas.a.client(), replicas.b.client()
    key_id = a.create_key(Description="audited")["KeyMetadata"]["KeyId"]
    b.encrypt(KeyId=key_id, Plaintext=b"x")
    done = subprocess.run(
        [*enclave_kms_command(), "audit", "--store", replicas.store_url, "--key", key_id,
         "--json", "--region", REGION, "--account-id", ACCOUNT,
         "--data-dir", str(replicas.work / "audit")],
        capture_output=True, text=True, env=replicas.env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["operation"] for r in rows] == ["CreateKey", "Encrypt"]
    assert [r["source_ip"] for r in rows] == ["127.0.0.1", "127.0.0.1"]


def test_no_password_in_the_replica_logs(replicas: Cluster) -> None:
    password = replicas.store_url.split(":")[2].split("@")[0]
    assert password
    for replica in (replicas.a, replicas.b):
        text = replica.log.read_text()
        assert "PostgreSQL 127.0.0.1:" in text  # the banner names the store...
        assert password not in text  # ...without its password


def test_serving_an_unmigrated_database_tells_the_operator_to_migrate(
    pg_cluster: Any, tmp_path: Path
) -> None:
    url: str = pg_cluster.create_database("unmigrated")
    key = tmp_path / "root.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    done = subprocess.run(
        [*enclave_kms_command(), "serve", "--store", url, "--port", str(free_loopback_port()),
         "--data-dir", str(tmp_path / "data"), "--insecure-accept-any-credentials"],
        capture_output=True, text=True, env=_environment(key), check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "enclave-kms migrate --store" in done.stderr
    assert pg_cluster.password not in done.stderr + done.stdout


def test_a_shared_store_without_a_root_key_is_refused(pg_cluster: Any, tmp_path: Path) -> None:
    url: str = pg_cluster.create_database("nokey")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_KMS_")}
    done = subprocess.run(
        [*enclave_kms_command(), "serve", "--store", url, "--port", str(free_loopback_port()),
         "--data-dir", str(tmp_path / "data"), "--insecure-accept-any-credentials"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "ENCLAVE_KMS_ROOT_KEY_FILE" in done.stderr
    assert not (tmp_path / "data" / "root.key").exists()  # none generated for one replica
