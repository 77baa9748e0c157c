"""Cryptographic calls decide on cached key records, checked in the audit write.

Runs on both stores. Two services on one database (or one SQLite file) play two replicas
(or two workers). Replica B's cache is warm and its poll
interval is an hour, so only the audit statement's check can notice what replica A changed;
every test asserts that B's next call still honours A's change at once, and that B's audit
holds exactly one record per call (a call redone on the committed state leaves no record of
the discarded attempt).

Each test runs twice: calling B directly (the record is written inside the call), and
calling it as the HTTP server does, with the record held back and written afterwards by the
store's group-committing writer (:mod:`held_audit`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from held_audit import HeldAuditCalls

from attestation import Verifier
from enclave_kms._ciphertext import read_header
from enclave_kms._rootkey import RootKey
from enclave_kms.errors import AccessDeniedException, DisabledException, NotFoundException
from enclave_kms.model import (
    Caller,
    CreateKeyRequest,
    DecryptRequest,
    DisableKeyRequest,
    EnableKeyRequest,
    EncryptRequest,
    GenerateDataKeyRequest,
    PutKeyPolicyRequest,
    RotateKeyOnDemandRequest,
    ScheduleKeyDeletionRequest,
)
from enclave_kms.service import KmsService

ACCOUNT = "111122223333"
ROOT = Caller(principal_arn=f"arn:aws:iam::{ACCOUNT}:root", account_id=ACCOUNT)
APP = Caller(principal_arn=f"arn:aws:iam::{ACCOUNT}:role/app", account_id=ACCOUNT)
ROOT_KEY = os.urandom(32)
_CRYPTO = {"Encrypt", "Decrypt", "GenerateDataKey"}


class CountingStore:
    """Forwards to the real store and counts key reads (to show the cache is used)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.key_reads = 0

    def get_key(self, key_id: str) -> Any:
        self.key_reads += 1
        return self._store.get_key(key_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _open(where: Path | str) -> Any:
    if isinstance(where, Path):
        from enclave_kms.store.sqlite import SqliteStore

        return SqliteStore(where, RootKey(ROOT_KEY))
    from enclave_kms.store.postgres import open_store

    return open_store(where, RootKey(ROOT_KEY))


def _service(where: Path | str, *, poll: float) -> tuple[KmsService, CountingStore]:
    store = CountingStore(_open(where))
    service = KmsService(
        store,  # type: ignore[arg-type]
        region="us-east-1",
        account_id=ACCOUNT,
        verifier=Verifier(),
        cache_poll_interval=poll,
    )
    return service, store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.interop)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A SQLite file, or the URL of a fresh migrated PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "kms.sqlite3"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(params=["direct", "held"])
def replicas(
    request: pytest.FixtureRequest, where: Path | str
) -> Iterator[tuple[KmsService, Any, CountingStore]]:
    a, _ = _service(where, poll=0)
    b, b_store = _service(where, poll=3600)  # B never polls during a test
    called: Any = b
    if request.param == "held":
        called = HeldAuditCalls(b, b.held_audit_writer())
    try:
        yield a, called, b_store
    finally:
        a.close()
        called.close()


def _assert_held_stale(b: Any, attempts: int) -> None:
    """Held calls: the writer refused ``attempts`` records, decided on a key since changed."""
    if isinstance(b, HeldAuditCalls):
        assert b.unwritten == attempts


def _key(a: KmsService) -> str:
    key_id = a.create_key(ROOT, CreateKeyRequest()).key_metadata.key_id
    assert key_id is not None
    return key_id


def _outcomes(b: KmsService, key_id: str) -> list[tuple[str, str]]:
    return [
        (r.operation, r.outcome)
        for r in b.query_audit(key_arn=b._arn(key_id), limit=100)
        if r.operation in _CRYPTO  # the store is shared: A's changes are in it too
    ]


def test_a_warm_cache_takes_no_key_read_per_call(replicas: Any) -> None:
    a, b, counted = replicas
    key_id = _key(a)
    b.generate_data_key(ROOT, GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256"))
    before = counted.key_reads
    for _ in range(5):
        b.generate_data_key(ROOT, GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256"))
    assert counted.key_reads == before
    assert _outcomes(b, key_id) == [("GenerateDataKey", "success")] * 6
    _assert_held_stale(b, 0)
    if isinstance(b, HeldAuditCalls):  # each warm call was decided on the cached record
        assert [len(held.guards) for held in b.held[1:]] == [1] * 5


def test_disable_on_a_is_honoured_by_bs_next_call(replicas: Any) -> None:
    a, b, _ = replicas
    key_id = _key(a)
    blob = b.encrypt(ROOT, EncryptRequest(key_id=key_id, plaintext=b"x")).ciphertext_blob
    a.disable_key(ROOT, DisableKeyRequest(key_id=key_id))
    with pytest.raises(DisabledException):
        b.decrypt(ROOT, DecryptRequest(ciphertext_blob=blob))
    with pytest.raises(DisabledException):
        b.generate_data_key(ROOT, GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256"))
    # Re-enabled on A: B's next call succeeds (a non-Enabled record is always read through).
    a.enable_key(ROOT, EnableKeyRequest(key_id=key_id))
    assert b.decrypt(ROOT, DecryptRequest(ciphertext_blob=blob)).plaintext == b"x"
    assert _outcomes(b, key_id) == [
        ("Encrypt", "success"),
        ("Decrypt", "DisabledException"),
        ("GenerateDataKey", "DisabledException"),
        ("Decrypt", "success"),
    ]
    _assert_held_stale(b, 1)  # the Decrypt decided on the cached Enabled record, then again


def test_rotation_on_a_makes_bs_next_encrypt_use_the_new_version(replicas: Any) -> None:
    a, b, _ = replicas
    key_id = _key(a)
    old = b.encrypt(ROOT, EncryptRequest(key_id=key_id, plaintext=b"x")).ciphertext_blob
    a.rotate_key_on_demand(ROOT, RotateKeyOnDemandRequest(key_id=key_id))
    new = b.encrypt(ROOT, EncryptRequest(key_id=key_id, plaintext=b"y")).ciphertext_blob
    assert old is not None and new is not None
    assert (read_header(old).key_version, read_header(new).key_version) == (1, 2)
    assert _outcomes(b, key_id) == [("Encrypt", "success")] * 2
    _assert_held_stale(b, 1)


def test_a_policy_change_on_a_binds_bs_next_call(replicas: Any) -> None:
    a, b, _ = replicas
    key_id = _key(a)
    root_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROOT.principal_arn},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    allow_app = json.loads(json.dumps(root_only))
    allow_app["Statement"][0]["Principal"]["AWS"] = [ROOT.principal_arn, APP.principal_arn]
    a.put_key_policy(ROOT, PutKeyPolicyRequest(key_id=key_id, policy=json.dumps(allow_app)))
    b.encrypt(APP, EncryptRequest(key_id=key_id, plaintext=b"x"))
    a.put_key_policy(ROOT, PutKeyPolicyRequest(key_id=key_id, policy=json.dumps(root_only)))
    with pytest.raises(AccessDeniedException):
        b.encrypt(APP, EncryptRequest(key_id=key_id, plaintext=b"x"))
    assert _outcomes(b, key_id) == [("Encrypt", "success"), ("Encrypt", "AccessDeniedException")]
    _assert_held_stale(b, 1)


def test_a_key_deleted_on_a_is_gone_for_b(replicas: Any, where: Path | str) -> None:
    a, b, _ = replicas
    key_id = _key(a)
    b.encrypt(ROOT, EncryptRequest(key_id=key_id, plaintext=b"x"))
    a.schedule_key_deletion(
        ROOT, ScheduleKeyDeletionRequest(key_id=key_id, pending_window_in_days=7)
    )
    direct = _open(where)
    try:
        direct.delete_key(key_id)
    finally:
        direct.close()
    with pytest.raises(NotFoundException):
        b.encrypt(ROOT, EncryptRequest(key_id=key_id, plaintext=b"x"))
    _assert_held_stale(b, 1)
