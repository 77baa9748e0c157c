"""The embedded store: one SQLite file, safe for several processes on one machine.

* WAL journal, ``synchronous=FULL`` on the connection that changes keys, aliases, tags and
  policies, so a change is on disk before the call returns.
* Audit records go through a second connection with ``synchronous=NORMAL``: in WAL mode a
  commit there survives a process crash but the last few records may be lost on power loss
  or an OS crash. That trade keeps an fsync (hundreds of microseconds) off every
  cryptographic call; the next key-changing commit flushes them too.
* Every write is a short ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so
  two processes never deadlock upgrading read locks) and waits up to ``busy_timeout`` for the
  lock; multi-step changes are one transaction.
* No in-process lock is relied on for correctness across processes; the per-instance lock
  only serialises use of the connection between threads.
* Backing material is stored wrapped under the root key (AES-256-GCM, AAD = key id + version);
  the root key's check value is kept in ``meta`` and checked when the store opens. Key and
  alias rows carry a MAC under the root key, checked on every read
  (:mod:`enclave_kms.store._integrity`).
* Cache invalidation, as in the PostgreSQL store: every transaction that changes a key, its
  material, aliases, tags or policy also increments the ``change_counter`` row of ``meta``, so
  the change and the new counter value become visible together; :meth:`SqliteStore.change_counter`
  is one primary-key read, and covers several processes sharing the file.
* ``append_audit_guarded`` (as in the PostgreSQL store) writes an audit record only if the
  key records a cryptographic call decided on are still the committed ones, in one statement
  (:mod:`enclave_kms.store._sqlite_audit`), so the service needs no key read per call.
* The audit indexes (by time, by key) are brought up to date in batches, not on every insert
  (:mod:`enclave_kms.store._sqlite_audit_index`); queries see every committed record either way.
* Behaves like the PostgreSQL store where SQLite alone would differ: an alias or tag written
  for a key that does not exist raises :class:`RecordNotFoundError` (checked inside the write
  transaction, which holds the file's write lock), and only a unique or primary-key violation
  is a :class:`DuplicateError` (a NOT NULL or CHECK violation is a plain :class:`StoreError`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from enclave_kms._rootkey import RootKey, RootKeyError
from enclave_kms.store._integrity import (
    KEY_RECORD,
    SEAL_MARKER,
    SealReport,
    changed_row,
    check_key_row,
    plan_seal,
    seal_marker_value,
    seal_record,
    seals_for,
    verified_key_rows,
)
from enclave_kms.store._interface import (
    KEY_COLUMNS,
    KeyRecord,
    MaterialRecord,
    RecordNotFoundError,
    StoreError,
)
from enclave_kms.store._sqlite_aliases import SqliteAliases
from enclave_kms.store._sqlite_audit import SqliteAudit
from enclave_kms.store._sqlite_base import SCHEMA_VERSION
from enclave_kms.store._sqlite_rows import (
    ALIAS_SELECT,
    KEY_SELECT,
    KEY_WITH_MATERIAL,
    column_value,
    dt_req,
    key_from_row,
    ts,
)

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

DB_FILE_NAME = "enclave-kms.sqlite3"


class SqliteStore(SqliteAliases, SqliteAudit):
    """A :class:`~enclave_kms.store.Store` on one SQLite file.

    Args:
        path: the database file (created if missing).
        root_key: wraps backing material; checked against the stored check value.
        busy_timeout: seconds to wait for another process's write lock.

    Raises:
        RootKeyMismatchError: the root key is not the one the file was created with.
        SchemaVersionError: the file was written by an unknown schema version.
        StoreError: the file cannot be opened as a database.
    """

    @classmethod
    def in_directory(
        cls,
        data_dir: Path,
        root_key: RootKey,
        *,
        busy_timeout: float = 10.0,
        allow_unsealed: bool = False,
    ) -> SqliteStore:
        """Open (or create) the store file in ``data_dir``."""
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return cls(
            Path(data_dir) / DB_FILE_NAME,
            root_key,
            busy_timeout=busy_timeout,
            allow_unsealed=allow_unsealed,
        )

    def seal_existing_records(self, *, confirm: str | None) -> SealReport:
        """List, and with ``confirm`` (the listing's digest) seal, the records without a MAC.

        The operator's one-time step for a store written before record integrity (see
        :mod:`enclave_kms.store._integrity`): the records are trusted exactly as listed, and
        only if they are still exactly the listed ones.

        Raises:
            RecordIntegrityError: see :func:`enclave_kms.store._integrity.plan_seal`.
        """
        with self._write() as db:
            marker = db.execute("SELECT value FROM meta WHERE name=?", (SEAL_MARKER,)).fetchone()
            keys, aliases, report = plan_seal(
                self._root,
                marker=None if marker is None else marker[0],
                keys=db.execute(KEY_SELECT + " ORDER BY key_id").fetchall(),
                aliases=db.execute(ALIAS_SELECT + " ORDER BY alias_name").fetchall(),
                confirm=confirm,
                where=str(self.path),
            )
            if report.sealed:
                key_seals, alias_seals = seals_for(self._root, keys, aliases)
                db.executemany("UPDATE keys SET mac=? WHERE key_id=?", key_seals)
                db.executemany("UPDATE aliases SET mac=? WHERE alias_name=?", alias_seals)
                db.execute(
                    "INSERT INTO meta VALUES (?, ?)", (SEAL_MARKER, seal_marker_value(self._root))
                )
                self._touch(db)
            return report

    # --- keys and material ----------------------------------------------------------------

    def create_key(
        self,
        key: KeyRecord,
        material: MaterialRecord,
        secret: bytes | bytearray,
        tags: Sequence[tuple[str, str]],
    ) -> None:
        """Insert a key, its first material version and its tags in one transaction."""
        wrapped = self._root.wrap(key.key_id, material.version, secret)
        row = (
            key.key_id, ts(key.creation_date), key.key_state, key.description,
            key.key_usage, key.key_spec, key.policy, key.current_version,
            ts(key.deletion_date), key.pending_window_days, int(key.rotation_enabled),
            key.rotation_period_days, ts(key.next_rotation_date),
            ts(key.on_demand_rotation_date),
        )  # fmt: skip
        with self._write() as db:
            db.execute(
                "INSERT INTO keys VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (*row, seal_record(self._root, KEY_RECORD, row)),
            )
            self._insert_material(db, material, wrapped)
            db.executemany(
                "INSERT OR REPLACE INTO tags VALUES (?,?,?)", [(key.key_id, k, v) for k, v in tags]
            )
            self._touch(db)

    @staticmethod
    def _insert_material(db: sqlite3.Connection, m: MaterialRecord, wrapped: bytes) -> None:
        db.execute(
            "INSERT INTO key_versions VALUES (?,?,?,?,?,?)",
            (m.key_id, m.version, m.material_id, ts(m.created), m.rotation_type, wrapped),
        )

    def _checked_key(self, row: Sequence[object]) -> KeyRecord:
        """The record of a ``KEY_SELECT`` row whose MAC checks out."""
        check_key_row(self._root, row)
        return key_from_row(row[:14])

    def _write_changes(
        self, db: sqlite3.Connection, row: Sequence[object], changes: Mapping[str, object]
    ) -> tuple[object, ...]:
        """Apply ``changes`` to a checked row and seal the result, in one UPDATE."""
        stored = {name: column_value(value) for name, value in changes.items()}
        new_row = changed_row(row, stored)
        # Column names come from the KEY_COLUMNS whitelist, never from input.
        sets = ", ".join(f"{name}=?" for name in stored)
        db.execute(
            f"UPDATE keys SET {sets}, mac=? WHERE key_id=?",  # noqa: S608
            (*stored.values(), seal_record(self._root, KEY_RECORD, new_row), row[0]),
        )
        return new_row

    def get_key(self, key_id: str) -> KeyRecord | None:
        """Return the key, or ``None``.

        Raises:
            RecordIntegrityError: the row was changed outside the store.
        """
        row = self._read(
            lambda db: db.execute(KEY_SELECT + " WHERE key_id=?", (key_id,)).fetchone()
        )
        return None if row is None else self._checked_key(row)

    def list_keys(self, *, after: str | None, limit: int) -> Sequence[KeyRecord]:
        """Return up to ``limit`` keys ordered by key id, starting after ``after``."""
        rows = self._read(
            lambda db: db.execute(
                KEY_SELECT + " WHERE key_id > ? ORDER BY key_id LIMIT ?", (after or "", limit)
            ).fetchall()
        )
        return [self._checked_key(r) for r in rows]

    def update_key(self, key_id: str, changes: Mapping[str, object]) -> KeyRecord:
        """Change fields in ``KEY_COLUMNS``; raises ``RecordNotFoundError``."""
        unknown = set(changes) - KEY_COLUMNS
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        with self._write() as db:
            row = db.execute(KEY_SELECT + " WHERE key_id=?", (key_id,)).fetchone()
            if row is None:
                raise RecordNotFoundError(f"key {key_id} does not exist")
            # Checked before it changes: re-sealing a tampered row would launder it.
            current = self._checked_key(row)
            if not changes:
                return current
            new_row = self._write_changes(db, row, changes)
            self._touch(db)
            return key_from_row(new_row)

    def rotate_key(
        self,
        key_id: str,
        *,
        material_id: str,
        secret: bytes | bytearray,
        created: datetime,
        rotation_type: str,
        changes: Mapping[str, object],
        only_if_due_at: datetime | None = None,
    ) -> MaterialRecord | None:
        """Add the next material version, make it current and apply ``changes`` atomically."""
        unknown = set(changes) - KEY_COLUMNS
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        with self._write() as db:
            row = db.execute(KEY_SELECT + " WHERE key_id=?", (key_id,)).fetchone()
            if row is None:
                raise RecordNotFoundError(f"key {key_id} does not exist")
            current = self._checked_key(row)
            if only_if_due_at is not None:
                due = current.next_rotation_date
                if due is None or due > only_if_due_at:
                    return None
            (top,) = db.execute(
                "SELECT MAX(version) FROM key_versions WHERE key_id=?", (key_id,)
            ).fetchone()
            version = int(top) + 1
            material = MaterialRecord(key_id, version, material_id, created, rotation_type)
            self._insert_material(db, material, self._root.wrap(key_id, version, secret))
            self._write_changes(db, row, {"current_version": version, **changes})
            self._touch(db)
            return material

    def get_material(self, key_id: str, version: int) -> bytearray:
        """Return the plaintext backing material; raises ``RecordNotFoundError``."""
        row = self._read(
            lambda db: db.execute(
                "SELECT wrapped FROM key_versions WHERE key_id=? AND version=?", (key_id, version)
            ).fetchone()
        )
        if row is None:
            raise RecordNotFoundError(f"key {key_id} has no material version {version}")
        try:
            return self._root.unwrap(key_id, version, bytes(row[0]))
        except RootKeyError as exc:
            raise StoreError(str(exc)) from None

    def get_key_with_material(
        self, key_id: str, version: int | None = None
    ) -> tuple[KeyRecord, bytearray] | None:
        """Read a key and one material version (default: current) in a single snapshot.

        One SELECT, so a change committed by another process is entirely before or after it.

        Returns:
            ``None`` if the key does not exist.

        Raises:
            RecordNotFoundError: the key exists but not that version.
            RecordIntegrityError: the key row was changed outside the store.
            StoreError: the stored blob does not authenticate under the root key.
        """
        row = self._read(lambda db: db.execute(KEY_WITH_MATERIAL, (version, key_id)).fetchone())
        if row is None:
            return None
        key = self._checked_key(row[:15])
        if row[16] is None:
            raise RecordNotFoundError(f"key {key_id} has no material version {version}")
        try:
            return key, self._root.unwrap(key_id, int(row[15]), bytes(row[16]))
        except RootKeyError as exc:
            raise StoreError(str(exc)) from None

    def list_materials(self, key_id: str) -> Sequence[MaterialRecord]:
        """Return every material version of the key, oldest first."""
        rows = self._read(
            lambda db: db.execute(
                "SELECT key_id, version, material_id, created, rotation_type FROM key_versions "
                "WHERE key_id=? ORDER BY version",
                (key_id,),
            ).fetchall()
        )
        return [MaterialRecord(r[0], r[1], r[2], dt_req(r[3]), r[4]) for r in rows]

    def delete_key(self, key_id: str) -> None:
        """Delete the key with its material, aliases and tags in one transaction."""
        with self._write() as db:
            if self._delete_key(db, key_id):
                self._touch(db)

    @staticmethod
    def _delete_key(db: sqlite3.Connection, key_id: str) -> bool:
        deleted = 0
        for table, column in (
            ("key_versions", "key_id"),
            ("aliases", "target_key_id"),
            ("tags", "key_id"),
            ("keys", "key_id"),
        ):
            cur = db.execute(f"DELETE FROM {table} WHERE {column}=?", (key_id,))  # noqa: S608
            deleted += cur.rowcount
        return deleted > 0

    def delete_keys_due(self, now: datetime) -> Sequence[str]:
        """Delete every PendingDeletion key whose deletion date has passed; return their ids."""
        with self._write() as db:
            # Only rows whose MAC checks out: a state and date written into the database by
            # someone else must not get a key destroyed. A tampered row is left for the
            # operator (every use of it fails with RecordIntegrityError).
            due = db.execute(
                KEY_SELECT + " WHERE key_state='PendingDeletion' AND deletion_date <= ?",
                (ts(now),),
            ).fetchall()
            ids = [str(r[0]) for r in verified_key_rows(self._root, due)]
            for key_id in ids:
                self._delete_key(db, key_id)
            if ids:
                self._touch(db)
            return ids

    # --- tags ---------------------------------------------------------------------------------

    def put_tags(self, key_id: str, tags: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite tags in one transaction.

        Raises:
            RecordNotFoundError: no such key.
        """
        with self._write() as db:
            self._require_key(db, key_id)
            db.executemany(
                "INSERT OR REPLACE INTO tags VALUES (?,?,?)", [(key_id, k, v) for k, v in tags]
            )
            self._touch(db)

    def remove_tags(self, key_id: str, tag_keys: Sequence[str]) -> None:
        """Remove tags (missing tag keys, and a missing key, are ignored)."""
        with self._write() as db:
            removed = 0
            for tag_key in tag_keys:
                cur = db.execute("DELETE FROM tags WHERE key_id=? AND tag_key=?", (key_id, tag_key))
                removed += cur.rowcount
            if removed:
                self._touch(db)

    def list_tags(self, key_id: str) -> Sequence[tuple[str, str]]:
        """Return the key's tags ordered by tag key."""
        rows = self._read(
            lambda db: db.execute(
                "SELECT tag_key, tag_value FROM tags WHERE key_id=? ORDER BY tag_key", (key_id,)
            ).fetchall()
        )
        return [(str(k), str(v)) for k, v in rows]
