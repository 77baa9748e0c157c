"""Schema, SQL and row conversion for the SQLite store (see :mod:`enclave_kms.store.sqlite`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from enclave_kms.store._interface import KeyRecord
from enclave_kms.store._sqlite_audit_index import AUDIT_INDEXED_COLUMN

__all__ = [
    "ALIAS_SELECT",
    "AUDIT_COLUMNS",
    "AUDIT_SOURCE_IP_COLUMN",
    "DUPLICATE_ERRORS",
    "KEY_SELECT",
    "KEY_WITH_MATERIAL",
    "SCHEMA",
    "column_value",
    "dt",
    "dt_req",
    "key_from_row",
    "ts",
]

# Audit rows are only ever appended, never deleted, so the rowid alias ``seq`` (largest + 1)
# already grows strictly; AUTOINCREMENT (schema version 1) added a write to sqlite_sequence,
# about 6 us, to every audit insert. These are the columns of schema versions 2 and 3; version 4
# adds AUDIT_INDEXED_COLUMN (see _sqlite_audit_index), and creates the audit indexes itself;
# version 5 adds AUDIT_SOURCE_IP_COLUMN. Later columns are appended by ALTER TABLE, so that an
# upgraded file and a new one have the same columns in the same order.
AUDIT_COLUMNS = """
    seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, operation TEXT NOT NULL,
    outcome TEXT NOT NULL, principal_arn TEXT NOT NULL, caller_account TEXT NOT NULL,
    key_arn TEXT, access_key_id TEXT, ec_keys TEXT NOT NULL, att_module_id TEXT,
    att_image_digest TEXT, att_pcrs TEXT NOT NULL, deny_reason TEXT, dry_run INTEGER NOT NULL
"""
# NULL for records from in-process callers, and for every record written before version 5.
AUDIT_SOURCE_IP_COLUMN = "source_ip TEXT"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY, creation_date INTEGER NOT NULL, key_state TEXT NOT NULL,
    description TEXT NOT NULL, key_usage TEXT NOT NULL, key_spec TEXT NOT NULL,
    policy TEXT NOT NULL, current_version INTEGER NOT NULL, deletion_date INTEGER,
    pending_window_days INTEGER, rotation_enabled INTEGER NOT NULL,
    rotation_period_days INTEGER, next_rotation_date INTEGER, on_demand_rotation_date INTEGER,
    mac BLOB
);
CREATE TABLE IF NOT EXISTS key_versions (
    key_id TEXT NOT NULL, version INTEGER NOT NULL, material_id TEXT NOT NULL,
    created INTEGER NOT NULL, rotation_type TEXT, wrapped BLOB NOT NULL,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    alias_name TEXT PRIMARY KEY, target_key_id TEXT NOT NULL,
    creation_date INTEGER NOT NULL, last_updated INTEGER NOT NULL, mac BLOB
);
CREATE INDEX IF NOT EXISTS aliases_by_key ON aliases (target_key_id);
CREATE TABLE IF NOT EXISTS tags (
    key_id TEXT NOT NULL, tag_key TEXT NOT NULL, tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
CREATE TABLE IF NOT EXISTS audit (
    {AUDIT_COLUMNS}, {AUDIT_INDEXED_COLUMN}, {AUDIT_SOURCE_IP_COLUMN}
);
"""

KEY_SELECT = (
    "SELECT key_id, creation_date, key_state, description, key_usage, key_spec, policy, "
    "current_version, deletion_date, pending_window_days, rotation_enabled, "
    "rotation_period_days, next_rotation_date, on_demand_rotation_date, mac FROM keys"
)
ALIAS_SELECT = "SELECT alias_name, target_key_id, creation_date, last_updated, mac FROM aliases"
KEY_WITH_MATERIAL = (
    "SELECT k.key_id, k.creation_date, k.key_state, k.description, k.key_usage, k.key_spec, "
    "k.policy, k.current_version, k.deletion_date, k.pending_window_days, k.rotation_enabled, "
    "k.rotation_period_days, k.next_rotation_date, k.on_demand_rotation_date, k.mac, "
    "v.version, v.wrapped FROM keys k LEFT JOIN key_versions v ON v.key_id = k.key_id "
    "AND v.version = COALESCE(?, k.current_version) WHERE k.key_id = ?"
)
# sqlite3 error names (Python 3.11+) of the violations PostgreSQL reports as UniqueViolation.
DUPLICATE_ERRORS = frozenset({"SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE"})


def ts(value: datetime | None) -> int | None:
    # Microseconds since the epoch: exact, orderable, and the same in any backend.
    if value is None:
        return None
    return round(value.timestamp() * 1_000_000)


def dt(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def dt_req(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def key_from_row(row: Sequence[object]) -> KeyRecord:
    (kid, created, state, desc, usage, spec, policy, version, deletion, window, rot_on,
     rot_period, next_rot, on_demand) = row  # fmt: skip
    return KeyRecord(
        key_id=str(kid),
        creation_date=dt_req(int(created)),  # type: ignore[call-overload]
        key_state=str(state),
        description=str(desc),
        key_usage=str(usage),
        key_spec=str(spec),
        policy=str(policy),
        current_version=int(version),  # type: ignore[call-overload]
        deletion_date=dt(deletion),  # type: ignore[arg-type]
        pending_window_days=window,  # type: ignore[arg-type]
        rotation_enabled=bool(rot_on),
        rotation_period_days=rot_period,  # type: ignore[arg-type]
        next_rotation_date=dt(next_rot),  # type: ignore[arg-type]
        on_demand_rotation_date=dt(on_demand),  # type: ignore[arg-type]
    )


def column_value(value: object) -> object:
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, bool):
        return int(value)
    return value
