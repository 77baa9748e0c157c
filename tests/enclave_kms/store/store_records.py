"""Record builders shared by the store tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from enclave_kms.audit import AuditRecord
from enclave_kms.store import AliasRecord, KeyRecord, MaterialRecord

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def key_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def make_key(n: int, **changes: object) -> KeyRecord:
    key = KeyRecord(
        key_id=key_id(n),
        creation_date=T0,
        key_state="Enabled",
        description=f"key {n}",
        key_usage="ENCRYPT_DECRYPT",
        key_spec="SYMMETRIC_DEFAULT",
        policy='{"Version": "2012-10-17"}',
        current_version=1,
    )
    return replace(key, **changes)  # type: ignore[arg-type]


def make_material(n: int, version: int = 1, rotation_type: str | None = None) -> MaterialRecord:
    return MaterialRecord(
        key_id=key_id(n),
        version=version,
        material_id=f"{n:032x}{version:032x}",
        created=T0 + timedelta(days=version - 1),
        rotation_type=rotation_type,
    )


def secret_for(n: int, version: int = 1) -> bytes:
    # Distinctive 32 bytes, so a leak into the storage is easy to spot.
    return bytes([0xA5, n % 256, version % 256]) + b"PLAINTEXT-MATERIAL-MARKER-29b"


def make_alias(name: str, n: int, when: datetime = T0) -> AliasRecord:
    return AliasRecord(name, key_id(n), when, when)


def make_audit(i: int, key_arn: str | None = None, **changes: object) -> AuditRecord:
    record = AuditRecord(
        time=T0 + timedelta(seconds=i),
        operation="Decrypt",
        outcome="success",
        principal_arn="arn:aws:iam::111122223333:role/app",
        caller_account="111122223333",
        key_arn=key_arn,
        access_key_id="AKIAEXAMPLE",
        source_ip="192.0.2.10",
        encryption_context_keys=("purpose", "tenant"),
        attestation_module_id="i-0123-enc0123",
        attestation_image_digest="ab" * 48,
        attestation_pcrs=(0, 1, 2),
        deny_reason=None,
        dry_run=False,
    )
    return replace(record, **changes)  # type: ignore[arg-type]
