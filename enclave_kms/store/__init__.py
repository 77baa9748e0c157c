"""Key and audit storage behind a small interface; SQLite is the embedded default."""

from __future__ import annotations

from enclave_kms.store._interface import (
    KEY_COLUMNS,
    AliasRecord,
    DuplicateError,
    KeyRecord,
    MaterialRecord,
    RecordIntegrityError,
    RecordNotFoundError,
    SchemaVersionError,
    Store,
    StoreBusyError,
    StoreError,
    UnsealedRecordsError,
)

__all__ = [
    "KEY_COLUMNS",
    "AliasRecord",
    "DuplicateError",
    "KeyRecord",
    "MaterialRecord",
    "RecordIntegrityError",
    "RecordNotFoundError",
    "SchemaVersionError",
    "Store",
    "StoreBusyError",
    "StoreError",
    "UnsealedRecordsError",
]
