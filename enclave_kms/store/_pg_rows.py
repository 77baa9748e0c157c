"""Row conversion and driver-error mapping for the PostgreSQL store (psycopg 3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from enclave_kms.audit import AuditRecord
from enclave_kms.store._interface import (
    AliasRecord,
    DuplicateError,
    KeyRecord,
    MaterialRecord,
    RecordNotFoundError,
    StoreBusyError,
    StoreError,
)

__all__ = [
    "ALIAS_SELECT",
    "AUDIT_SELECT",
    "KEY_RECORD_COLUMNS",
    "KEY_SELECT",
    "RETRYABLE",
    "alias_from_row",
    "audit_from_row",
    "convert_error",
    "driver_message",
    "key_from_row",
    "material_from_row",
]

# The 14 columns of a key record, in table order (what its MAC covers), then its MAC.
KEY_RECORD_COLUMNS = (
    "key_id, creation_date, key_state, description, key_usage, key_spec, policy, "
    "current_version, deletion_date, pending_window_days, rotation_enabled, "
    "rotation_period_days, next_rotation_date, on_demand_rotation_date"
)
KEY_SELECT = f"SELECT {KEY_RECORD_COLUMNS}, mac FROM keys"  # noqa: S608 - constant
ALIAS_SELECT = "SELECT alias_name, target_key_id, creation_date, last_updated, mac FROM aliases"
AUDIT_SELECT = (
    "SELECT time, operation, outcome, principal_arn, caller_account, key_arn, access_key_id, "
    "ec_keys, att_module_id, att_image_digest, att_pcrs, deny_reason, dry_run, source_ip "
    "FROM audit"
)

# SQLSTATE 40001 and 40P01: the transaction lost a race and can simply run again.
RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


def _utc(value: datetime | None) -> datetime | None:
    # The session runs with TimeZone=UTC; normalise the tzinfo object to datetime.UTC.
    return None if value is None else value.astimezone(UTC)


def _utc_req(value: datetime) -> datetime:
    return value.astimezone(UTC)


def key_from_row(row: Sequence[Any]) -> KeyRecord:
    """Build a :class:`KeyRecord` from the first 14 columns of a :data:`KEY_SELECT` row."""
    return KeyRecord(
        key_id=row[0],
        creation_date=_utc_req(row[1]),
        key_state=row[2],
        description=row[3],
        key_usage=row[4],
        key_spec=row[5],
        policy=row[6],
        current_version=row[7],
        deletion_date=_utc(row[8]),
        pending_window_days=row[9],
        rotation_enabled=bool(row[10]),
        rotation_period_days=row[11],
        next_rotation_date=_utc(row[12]),
        on_demand_rotation_date=_utc(row[13]),
    )


def material_from_row(row: Sequence[Any]) -> MaterialRecord:
    """Build a :class:`MaterialRecord` from ``key_id, version, material_id, created, type``."""
    return MaterialRecord(row[0], row[1], row[2], _utc_req(row[3]), row[4])


def alias_from_row(row: Sequence[Any]) -> AliasRecord:
    """Build an :class:`AliasRecord` from the first 4 columns of an :data:`ALIAS_SELECT` row."""
    return AliasRecord(row[0], row[1], _utc_req(row[2]), _utc_req(row[3]))


def audit_from_row(row: Sequence[Any]) -> AuditRecord:
    """Build an :class:`AuditRecord` from an :data:`AUDIT_SELECT` row (jsonb arrays decoded)."""
    return AuditRecord(
        time=_utc_req(row[0]),
        operation=row[1],
        outcome=row[2],
        principal_arn=row[3],
        caller_account=row[4],
        key_arn=row[5],
        access_key_id=row[6],
        encryption_context_keys=tuple(row[7]),
        attestation_module_id=row[8],
        attestation_image_digest=row[9],
        attestation_pcrs=tuple(int(i) for i in row[10]),
        deny_reason=row[11],
        dry_run=bool(row[12]),
        source_ip=row[13],
    )


def driver_message(exc: psycopg.Error) -> str:
    """The server's or libpq's one-line reason for ``exc`` (no row values, no password)."""
    # diag.message_primary is the server's one-line message; the DETAIL line (which may quote
    # row values) and the statement's parameters are never included.
    message = exc.diag.message_primary if exc.diag is not None else None
    if message:
        return message
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def convert_error(exc: Exception, where: str) -> StoreError:
    """Map a psycopg / pool exception to the store's error classes."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, PoolTimeout):
        return StoreBusyError(f"no connection to {where} became free in time")
    if not isinstance(exc, psycopg.Error):
        return StoreError(f"store failure on {where}: {type(exc).__name__}")
    text = driver_message(exc)
    if isinstance(exc, pg_errors.UniqueViolation):
        return DuplicateError(text)
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return RecordNotFoundError(f"the key does not exist ({text})")
    # 55P03 lock_timeout, 57014 statement_timeout, 40001/40P01 after the last retry.
    if isinstance(exc, (pg_errors.LockNotAvailable, pg_errors.QueryCanceled, *RETRYABLE)):
        return StoreBusyError(f"{where} is busy: {text}")
    return StoreError(f"store failure on {where}: {text}")
