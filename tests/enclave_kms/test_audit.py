"""Audit: one record per operation, whatever the outcome, and never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_service_support import ROOT_CALLER, STRANGER, PinnedClock, make_service, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.audit import AuditRecord, MemoryAuditSink
from enclave_kms.errors import AccessDeniedException, KMSInternalException, NotFoundException
from enclave_kms.model import (
    DecryptRequest,
    DescribeKeyRequest,
    EncryptRequest,
    GenerateDataKeyPairRequest,
    GenerateDataKeyRequest,
    GenerateRandomRequest,
)
from enclave_kms.service import KmsService

CTX = {"tenant-id": "do-not-log-this-value"}
SECRET_TEXT = b"attack at dawn, very secret plaintext"


def test_every_outcome_is_recorded(service: KmsService) -> None:
    kid = new_key(service)
    service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x", encryption_context=CTX))
    with pytest.raises(AccessDeniedException):
        service.describe_key(STRANGER, DescribeKeyRequest(key_id=kid))
    with pytest.raises(NotFoundException):
        service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id="alias/none"))
    records = service.query_audit(limit=10)
    assert [(r.operation, r.outcome) for r in records] == [
        ("CreateKey", "success"),
        ("Encrypt", "success"),
        ("DescribeKey", "AccessDeniedException"),
        ("DescribeKey", "NotFoundException"),
    ]
    enc, denied = records[1], records[2]
    assert enc.encryption_context_keys == ("tenant-id",)
    assert enc.key_arn is not None and enc.key_arn.endswith(kid)
    assert denied.principal_arn == STRANGER.principal_arn
    assert denied.caller_account == STRANGER.account_id
    assert denied.deny_reason is not None and "no statement allows" in denied.deny_reason
    assert service.query_audit(key_arn=enc.key_arn, limit=10)[0].operation == "CreateKey"
    assert service.query_audit(since=records[-1].time, limit=10)[-1] == records[-1]


# Reads the SQLite files; the PostgreSQL store's bytes at rest are checked by the store
# contract tests (test_material_is_encrypted_at_rest, on a pg_dump of the database).
@pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)
def test_no_secret_reaches_the_store_files(
    db_path: Path, clock: PinnedClock, tmp_path: Path
) -> None:
    service = make_service(db_path, clock)
    kid = new_key(service)
    blob = service.encrypt(
        ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=SECRET_TEXT, encryption_context=CTX)
    ).ciphertext_blob
    plain = service.decrypt(
        ROOT_CALLER, DecryptRequest(ciphertext_blob=blob, encryption_context=CTX)
    )
    dk = service.generate_data_key(
        ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", encryption_context=CTX)
    )
    pair = service.generate_data_key_pair(
        ROOT_CALLER, GenerateDataKeyPairRequest(key_id=kid, key_pair_spec="ECC_NIST_P256")
    )
    rnd = service.generate_random(ROOT_CALLER, GenerateRandomRequest(number_of_bytes=32))
    material = service._material(kid, 1)
    service.close()
    assert plain.plaintext == SECRET_TEXT
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for secret in (
        SECRET_TEXT,
        dk.plaintext,
        pair.private_key_plaintext,
        rnd.plaintext,
        material,
        b"do-not-log-this-value",
    ):
        assert secret and secret not in data


def test_memory_sink_and_fail_closed(db_path: Path, clock: PinnedClock) -> None:
    sink = MemoryAuditSink()
    service = make_service(db_path, clock, audit=sink)
    new_key(service)
    assert [r.operation for r in sink.records] == ["CreateKey"]
    assert service.query_audit(limit=10) == []  # the store is not the sink any more

    class Broken:
        def write(self, record: AuditRecord) -> None:
            raise OSError("disk full")

    broken = make_service(db_path, clock, audit=Broken())
    with pytest.raises(KMSInternalException):
        broken.generate_random(ROOT_CALLER, GenerateRandomRequest(number_of_bytes=8))
