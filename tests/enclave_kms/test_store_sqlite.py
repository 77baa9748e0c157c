"""The SQLite store: records round-trip, transactions are atomic, processes share the file."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_versions import V2_FILE, V2_WITHOUT_MACS, V4_AUDIT, rewind

from enclave_kms._rootkey import RootKey
from enclave_kms.audit import AuditRecord
from enclave_kms.store import (
    AliasRecord,
    DuplicateError,
    KeyRecord,
    MaterialRecord,
    RecordIntegrityError,
    RecordNotFoundError,
    SchemaVersionError,
    UnsealedRecordsError,
)
from enclave_kms.store.sqlite import SqliteStore

NOW = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
SECRET = b"S" * 16 + b"\x00\x01unique-material"


def key(key_id: str = "k1", **kw: object) -> KeyRecord:
    fields: dict[str, object] = {
        "key_id": key_id,
        "creation_date": NOW,
        "key_state": "Enabled",
        "description": "d",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_spec": "SYMMETRIC_DEFAULT",
        "policy": "{}",
        "current_version": 1,
    }
    fields.update(kw)
    return KeyRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))


def test_key_round_trip_and_update(store: SqliteStore) -> None:
    store.create_key(key(), MaterialRecord("k1", 1, "m" * 64, NOW), SECRET, [("t", "v")])
    assert store.get_key("k1") == key()
    assert store.get_material("k1", 1) == bytearray(SECRET)
    assert list(store.list_tags("k1")) == [("t", "v")]
    later = NOW + timedelta(days=7)
    updated = store.update_key("k1", {"key_state": "PendingDeletion", "deletion_date": later})
    assert updated.key_state == "PendingDeletion"
    assert updated.deletion_date == later
    with pytest.raises(ValueError, match="not updatable"):
        store.update_key("k1", {"key_id": "x"})
    with pytest.raises(RecordNotFoundError):
        store.update_key("nope", {"description": "x"})


def test_material_is_encrypted_at_rest(tmp_path: Path, store: SqliteStore) -> None:
    store.create_key(key(), MaterialRecord("k1", 1, "m" * 64, NOW), SECRET, [])
    store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"unique-material" not in data


def test_create_key_is_atomic(store: SqliteStore) -> None:
    store.create_key(key(), MaterialRecord("k1", 1, "m" * 64, NOW), SECRET, [])
    # Same key id again: the key insert fails, and neither material nor tags are left behind.
    with pytest.raises(DuplicateError):
        store.create_key(
            key("k1"), MaterialRecord("k1", 1, "n" * 64, NOW), b"x" * 32, [("orphan", "tag")]
        )
    assert list(store.list_tags("k1")) == []
    assert [m.material_id for m in store.list_materials("k1")] == ["m" * 64]


def test_rotation_versions_and_due_check(store: SqliteStore) -> None:
    store.create_key(
        key(rotation_enabled=True, next_rotation_date=NOW + timedelta(days=1)),
        MaterialRecord("k1", 1, "a" * 64, NOW),
        SECRET,
        [],
    )
    not_due = store.rotate_key(
        "k1",
        material_id="b" * 64,
        secret=b"2" * 32,
        created=NOW,
        rotation_type="AUTOMATIC",
        changes={},
        only_if_due_at=NOW,
    )
    assert not_due is None
    m = store.rotate_key(
        "k1",
        material_id="b" * 64,
        secret=b"2" * 32,
        created=NOW,
        rotation_type="ON_DEMAND",
        changes={"on_demand_rotation_date": NOW},
    )
    assert m is not None and m.version == 2
    record = store.get_key("k1")
    assert record is not None and record.current_version == 2
    assert store.get_material("k1", 1) == bytearray(SECRET)
    assert store.get_material("k1", 2) == bytearray(b"2" * 32)


def test_delete_key_removes_everything(store: SqliteStore) -> None:
    store.create_key(key(), MaterialRecord("k1", 1, "a" * 64, NOW), SECRET, [("a", "b")])
    store.create_alias(AliasRecord("alias/x", "k1", NOW, NOW))
    store.delete_key("k1")
    assert store.get_key("k1") is None
    assert store.get_alias("alias/x") is None
    assert list(store.list_tags("k1")) == []
    with pytest.raises(RecordNotFoundError):
        store.get_material("k1", 1)


def test_delete_keys_due(store: SqliteStore) -> None:
    store.create_key(
        key("k1", key_state="PendingDeletion", deletion_date=NOW),
        MaterialRecord("k1", 1, "a" * 64, NOW),
        SECRET,
        [],
    )
    store.create_key(key("k2"), MaterialRecord("k2", 1, "a" * 64, NOW), SECRET, [])
    assert list(store.delete_keys_due(NOW - timedelta(seconds=1))) == []
    assert list(store.delete_keys_due(NOW)) == ["k1"]
    assert [k.key_id for k in store.list_keys(after=None, limit=10)] == ["k2"]


def test_aliases(store: SqliteStore) -> None:
    for kid in ("k1", "k2"):
        store.create_key(key(kid), MaterialRecord(kid, 1, "m" * 64, NOW), SECRET, [])
    store.create_alias(AliasRecord("alias/a", "k1", NOW, NOW))
    store.create_alias(AliasRecord("alias/b", "k2", NOW, NOW))
    with pytest.raises(DuplicateError):
        store.create_alias(AliasRecord("alias/a", "k2", NOW, NOW))
    store.update_alias("alias/a", "k2", NOW + timedelta(1))
    names = [a.alias_name for a in store.list_aliases(target_key_id="k2", after=None, limit=10)]
    assert names == ["alias/a", "alias/b"]
    page = store.list_aliases(target_key_id=None, after="alias/a", limit=10)
    assert [a.alias_name for a in page] == ["alias/b"]
    store.delete_alias("alias/a")
    with pytest.raises(RecordNotFoundError):
        store.delete_alias("alias/a")


def test_audit_query(store: SqliteStore) -> None:
    for i in range(3):
        store.append_audit(
            AuditRecord(
                time=NOW + timedelta(seconds=i),
                operation="Decrypt",
                outcome="success",
                principal_arn="p",
                caller_account="a",
                key_arn=f"arn{i % 2}",
                encryption_context_keys=("k",),
                attestation_pcrs=(0, 1),
            )
        )
    assert len(store.query_audit(since=None, key_arn=None, limit=10)) == 3
    assert len(store.query_audit(since=NOW + timedelta(seconds=1), key_arn=None, limit=10)) == 2
    got = store.query_audit(since=None, key_arn="arn0", limit=10)
    assert [r.time for r in got] == [NOW, NOW + timedelta(seconds=2)]
    assert got[0].attestation_pcrs == (0, 1)


def test_two_instances_share_the_file(tmp_path: Path) -> None:
    a = SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))
    b = SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))
    a.create_key(key(), MaterialRecord("k1", 1, "a" * 64, NOW), SECRET, [])
    assert b.get_key("k1") == key()
    b.update_key("k1", {"description": "from b"})
    record = a.get_key("k1")
    assert record is not None and record.description == "from b"


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "s.db", RootKey(bytes(32))).close()
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(SchemaVersionError, match="99"):
        SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))


# The audit table as schema version 1 created it (AUTOINCREMENT), for the upgrade test.
_V1_AUDIT = """
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, operation TEXT NOT NULL,
    outcome TEXT NOT NULL, principal_arn TEXT NOT NULL, caller_account TEXT NOT NULL,
    key_arn TEXT, access_key_id TEXT, ec_keys TEXT NOT NULL, att_module_id TEXT,
    att_image_digest TEXT, att_pcrs TEXT NOT NULL, deny_reason TEXT, dry_run INTEGER NOT NULL
);
CREATE INDEX audit_by_time ON audit (time);
CREATE INDEX audit_by_key ON audit (key_arn, time);
"""


def _audit(operation: str, minute: int) -> AuditRecord:
    return AuditRecord(
        time=NOW + timedelta(minutes=minute),
        operation=operation,
        outcome="success",
        principal_arn="arn:aws:iam::111122223333:root",
        caller_account="111122223333",
        key_arn="arn:aws:kms:us-east-1:111122223333:key/k1",
        encryption_context_keys=("purpose",),
    )


def _audit_columns(store: SqliteStore) -> list[tuple[object, ...]]:
    """Name, type, NOT NULL and default of each audit column, in table order."""
    return [tuple(c[1:5]) for c in store._db.execute("PRAGMA table_info(audit)")]


def test_a_version_4_file_is_upgraded_and_its_records_have_no_source_ip(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, RootKey(bytes(32)))
    store.append_audit(replace(_audit("Encrypt", 0), source_ip="192.0.2.1"))
    store.close()
    rewind(path, 4, V4_AUDIT)

    upgraded = SqliteStore(path, RootKey(bytes(32)))
    version = upgraded._db.execute("SELECT value FROM meta WHERE name='schema_version'")
    assert version.fetchone() == ("5",)
    new = SqliteStore(tmp_path / "new.db", RootKey(bytes(32)))
    assert _audit_columns(upgraded) == _audit_columns(new)  # same columns, same order
    new.close()
    upgraded.append_audit(replace(_audit("Decrypt", 1), source_ip="2001:db8::1"))
    got = upgraded.query_audit(since=None, key_arn=None, limit=10)
    # The address recorded before the upgrade went with the column: unknown, not invented.
    assert [(r.operation, r.source_ip) for r in got] == [
        ("Encrypt", None), ("Decrypt", "2001:db8::1"),
    ]  # fmt: skip
    upgraded.close()


def test_a_version_1_file_is_upgraded_keeping_its_audit_records(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path, RootKey(bytes(32))).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("DROP TABLE audit;" + _V1_AUDIT + V2_WITHOUT_MACS)
    db.execute("UPDATE meta SET value='1' WHERE name='schema_version'")
    for i, op in enumerate(["Encrypt", "Decrypt", "GenerateDataKey"]):
        db.execute(
            "INSERT INTO audit (time, operation, outcome, principal_arn, caller_account, "
            "key_arn, access_key_id, ec_keys, att_module_id, att_image_digest, att_pcrs, "
            "deny_reason, dry_run) VALUES (?,?,'success','p','111122223333','k',NULL,'[]',"
            "NULL,NULL,'[]',NULL,0)",
            (i, op),
        )
    db.close()

    store = SqliteStore(path, RootKey(bytes(32)))
    version = store._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
    assert version == ("5",)
    new = SqliteStore(tmp_path / "new.db", RootKey(bytes(32)))
    assert _audit_columns(store) == _audit_columns(new)  # same columns, same order
    new.close()
    (ddl,) = store._db.execute("SELECT sql FROM sqlite_master WHERE name='audit'").fetchone()
    assert "AUTOINCREMENT" not in ddl
    # The upgrade runs on to version 5: partial indexes, holding the three old rows.
    indexes = {r[1]: r[4] for r in store._db.execute("PRAGMA index_list(audit)")}
    assert indexes == {"audit_by_time": 1, "audit_by_key": 1}  # 1: partial
    in_index = "SELECT count(*) FROM audit INDEXED BY audit_by_time WHERE indexed = 1"
    assert store._db.execute(in_index).fetchone() == (3,)
    store.append_audit(_audit("ReEncrypt", 10))
    rows = store._db.execute("SELECT seq, operation FROM audit ORDER BY seq").fetchall()
    assert rows == [(1, "Encrypt"), (2, "Decrypt"), (3, "GenerateDataKey"), (4, "ReEncrypt")]
    store.close()
    # Opening again finds version 5 and changes nothing.
    again = SqliteStore(path, RootKey(bytes(32)))
    assert [r.operation for r in again.query_audit(since=None, key_arn=None, limit=10)] == [
        "Encrypt", "Decrypt", "GenerateDataKey", "ReEncrypt",
    ]  # fmt: skip
    again.close()


def test_durability_pragmas(store: SqliteStore) -> None:
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # 2 = FULL for key changes; the audit connection uses NORMAL (1), see the module docs.
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert store._audit_db.execute("PRAGMA synchronous").fetchone()[0] == 1


def test_the_store_files_are_private(tmp_path: Path) -> None:
    # Created 0600 whatever the umask: the WAL and shared-memory files take the same mode.
    import os
    import stat

    old = os.umask(0o022)
    try:
        store = SqliteStore(tmp_path / "kms.db", RootKey(bytes(32)))
        store.close()
    finally:
        os.umask(old)
    for name in ("kms.db", "kms.db-wal", "kms.db-shm", "kms.db.lock"):
        path = tmp_path / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


def test_the_wal_file_stays_bounded_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Background PASSIVE checkpoints alone never let the WAL start over while writes keep
    # coming, so every commit (about 15 kB for an audit row) grew the file for good. Scaled
    # down here: checkpoints every 20 ms, a restart past 256 KiB.
    from enclave_kms.store import _sqlite_base

    monkeypatch.setattr(_sqlite_base, "_CHECKPOINT_INTERVAL", 0.02)
    monkeypatch.setattr(_sqlite_base, "_WAL_RESTART_SIZE", 256 * 1024)
    # The writers' own backstop, for when this loop starves the checkpoint thread.
    monkeypatch.setattr(_sqlite_base, "_WAL_FORCE_SIZE", 4 * 1024 * 1024)
    store = SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))
    wal = tmp_path / "s.db-wal"
    record = _audit("GenerateDataKey", 0)
    written = 16_000  # a count, not a time: a slow machine writes fewer rows per interval
    for i in range(written // 50):
        for _ in range(50):
            store.append_audit(record)
        if i % 4 == 0:
            time.sleep(0.001)  # a server's pace leaves the checkpoint thread room to run
    high_water = wal.stat().st_size
    store.close()
    # Without restarts the file holds every frame: at least written x 12 kB (192 MB). With
    # them, it holds about one checkpoint interval's worth.
    assert high_water < written * 12_000 / 8


def _make_pre_integrity(path: Path) -> None:
    """Make the file look as a version without record integrity left it."""
    rewind(path, 2, V2_FILE)


def test_a_version_2_file_opens_only_after_an_operator_seals_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, RootKey(bytes(32)))
    store.create_key(key(), MaterialRecord("k1", 1, "m" * 64, NOW), SECRET, [])
    store.create_alias(AliasRecord("alias/app", "k1", NOW, NOW))
    store.close()
    _make_pre_integrity(path)

    with pytest.raises(UnsealedRecordsError, match="2 key and alias records carry no MAC and 0 do"):
        SqliteStore(path, RootKey(bytes(32)))
    sealer = SqliteStore(path, RootKey(bytes(32)), allow_unsealed=True)
    version = sealer._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
    assert version == ("5",)  # the schema upgrade itself went through
    listed = sealer.seal_existing_records(confirm=None)
    assert [(k["key_id"], k["key_state"], k["policy"]) for k in listed.keys] == [
        ("k1", "Enabled", "{}")
    ]
    assert listed.keys[0]["current_version"] == "1"  # every sealed column is shown
    assert [(a["alias_name"], a["target_key_id"]) for a in listed.aliases] == [("alias/app", "k1")]
    assert not listed.sealed and listed.already_sealed == 0
    with pytest.raises(RecordIntegrityError, match="not the ones listed"):
        sealer.seal_existing_records(confirm="0" * 64)
    assert sealer.seal_existing_records(confirm=listed.digest).sealed
    sealer.close()
    upgraded = SqliteStore(path, RootKey(bytes(32)))
    assert upgraded.get_key("k1") == key()
    upgraded.close()
    # Sealed now: a change in the file from here on is refused.
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE keys SET key_state='Disabled'")
    db.close()
    with pytest.raises(RecordIntegrityError):
        SqliteStore(path, RootKey(bytes(32))).get_key("k1")


def test_making_a_file_look_old_does_not_get_a_tampered_row_sealed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, RootKey(bytes(32)))
    store.create_key(key(policy="{}"), MaterialRecord("k1", 1, "m" * 64, NOW), SECRET, [])
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE keys SET policy='OPEN', key_state='Enabled'")
    db.close()
    _make_pre_integrity(path)
    # Opening (as a restarted server does) seals nothing: it refuses, and the operator's
    # command shows the policy it would vouch for.
    with pytest.raises(UnsealedRecordsError):
        SqliteStore(path, RootKey(bytes(32)))
    sealer = SqliteStore(path, RootKey(bytes(32)), allow_unsealed=True)
    assert [k["policy"] for k in sealer.seal_existing_records(confirm=None).keys] == ["OPEN"]
    sealer.close()


def test_an_unsealed_row_in_a_sealed_file_is_tampering(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, RootKey(bytes(32)))
    store.create_key(key(), MaterialRecord("k1", 1, "m" * 64, NOW), SECRET, [])
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE keys SET mac=NULL, policy='OPEN'")
    db.close()
    reopened = SqliteStore(path, RootKey(bytes(32)))
    with pytest.raises(RecordIntegrityError):
        reopened.get_key("k1")
    with pytest.raises(RecordIntegrityError, match="was sealed, yet 1 records"):
        reopened.seal_existing_records(confirm=None)
    reopened.close()


def test_a_forged_seal_marker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path, RootKey(bytes(32))).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE meta SET value='00' WHERE name='records_sealed'")
    db.close()
    with pytest.raises(RecordIntegrityError, match="seal marker"):
        SqliteStore(path, RootKey(bytes(32)))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_a_refused_open_releases_its_files(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, RootKey(bytes(32)))
    store.create_key(key(), MaterialRecord("k1", 1, "m" * 64, NOW), SECRET, [])
    store.close()
    _make_pre_integrity(path)
    before = len(list(Path("/proc/self/fd").iterdir()))
    for _ in range(10):
        with pytest.raises(UnsealedRecordsError):
            SqliteStore(path, RootKey(bytes(32)))
    assert len(list(Path("/proc/self/fd").iterdir())) <= before + 1
