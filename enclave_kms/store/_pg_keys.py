"""Keys and backing material for the PostgreSQL store (a mixin of ``PostgresStore``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from psycopg import sql

from enclave_kms.store._integrity import (
    KEY_RECORD,
    changed_row,
    check_key_row,
    seal_record,
    verified_key_rows,
)
from enclave_kms.store._interface import (
    KEY_COLUMNS,
    KeyRecord,
    MaterialRecord,
    RecordNotFoundError,
)
from enclave_kms.store._pg_base import Conn, PgBase
from enclave_kms.store._pg_rows import (
    KEY_RECORD_COLUMNS,
    KEY_SELECT,
    key_from_row,
    material_from_row,
)

__all__ = ["TAG_UPSERT", "PgKeys"]

_KEY_INSERT = (
    f"INSERT INTO keys ({KEY_RECORD_COLUMNS}, mac) "  # noqa: S608 - constant column names
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
TAG_UPSERT = (
    "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (%s, %s, %s) "
    "ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = EXCLUDED.tag_value"
)
_KEY_WITH_MATERIAL = (
    "SELECT k.key_id, k.creation_date, k.key_state, k.description, k.key_usage, k.key_spec, "
    "k.policy, k.current_version, k.deletion_date, k.pending_window_days, k.rotation_enabled, "
    "k.rotation_period_days, k.next_rotation_date, k.on_demand_rotation_date, k.mac, "
    "v.version, v.wrapped FROM keys k"
)


def _check_changes(changes: Mapping[str, object]) -> dict[str, object]:
    unknown = set(changes) - KEY_COLUMNS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    return {n: bool(v) if n == "rotation_enabled" else v for n, v in changes.items()}


def _set_clause(assignments: Mapping[str, object]) -> sql.Composed:
    # Column names come from the KEY_COLUMNS whitelist and are quoted as identifiers.
    parts = [sql.SQL("{} = %s").format(sql.Identifier(name)) for name in assignments]
    return sql.SQL(", ").join([*parts, sql.SQL("epoch = epoch + 1")])


class PgKeys(PgBase):
    """``create_key`` … ``delete_keys_due``: every method that reads or changes a key."""

    def create_key(
        self,
        key: KeyRecord,
        material: MaterialRecord,
        secret: bytes | bytearray,
        tags: Sequence[tuple[str, str]],
    ) -> None:
        """Insert a key, its first material version and its tags in one transaction.

        Raises:
            DuplicateError: the key id (or material version) already exists.
        """
        wrapped = self._root.wrap(material.key_id, material.version, secret)
        row = (
            key.key_id, key.creation_date, key.key_state, key.description,
            key.key_usage, key.key_spec, key.policy, key.current_version,
            key.deletion_date, key.pending_window_days, bool(key.rotation_enabled),
            key.rotation_period_days, key.next_rotation_date, key.on_demand_rotation_date,
        )  # fmt: skip

        def tx(conn: Conn) -> None:
            conn.execute(_KEY_INSERT, (*row, seal_record(self._root, KEY_RECORD, row)))
            self._insert_material(conn, material, wrapped)
            if tags:
                with conn.cursor() as cur:
                    cur.executemany(TAG_UPSERT, [(key.key_id, k, v) for k, v in tags])
            self._touch(conn, [key.key_id])

        self._run(tx)

    @staticmethod
    def _insert_material(conn: Conn, m: MaterialRecord, wrapped: bytes) -> None:
        conn.execute(
            "INSERT INTO key_versions (key_id, version, material_id, created, rotation_type, "
            "wrapped) VALUES (%s, %s, %s, %s, %s, %s)",
            (m.key_id, m.version, m.material_id, m.created, m.rotation_type, wrapped),
        )

    def _checked_key(self, row: Sequence[object]) -> KeyRecord:
        """The record of a ``KEY_SELECT`` row whose MAC checks out."""
        check_key_row(self._root, row)
        return key_from_row(row[:14])

    def _locked_checked_row(self, conn: Conn, key_id: str) -> Sequence[object]:
        """Lock the key's row for this transaction and check it before it changes.

        Re-sealing a row that was tampered with would launder it, so a change starts here.
        NO KEY UPDATE (not UPDATE): it blocks other changes of this key but not the
        foreign-key checks of concurrent alias or tag writes.

        Raises:
            RecordNotFoundError: no such key.
            RecordIntegrityError: the row was changed outside the store.
        """
        row = conn.execute(
            KEY_SELECT + " WHERE key_id = %s FOR NO KEY UPDATE", (key_id,)
        ).fetchone()
        if row is None:
            raise RecordNotFoundError(f"key {key_id} does not exist")
        self._checked_key(row)
        return tuple(row)

    def _write_changes(
        self, conn: Conn, row: Sequence[object], assignments: Mapping[str, object]
    ) -> KeyRecord:
        """Apply ``assignments`` to a checked, locked row and seal the result, in one UPDATE.

        Sealed from the values computed here, never from the row read back: a trigger in the
        database could have changed that one (it then fails its MAC instead).
        """
        new_row = changed_row(row, assignments)
        update = {**assignments, "mac": seal_record(self._root, KEY_RECORD, new_row)}
        conn.execute(
            sql.SQL("UPDATE keys SET {} WHERE key_id = %s").format(_set_clause(update)),
            (*update.values(), row[0]),
        )
        return key_from_row(new_row)

    def get_key(self, key_id: str) -> KeyRecord | None:
        """Return the key, or ``None``.

        Raises:
            RecordIntegrityError: the row was changed outside the store.
        """
        row = self._read(
            lambda c: c.execute(KEY_SELECT + " WHERE key_id = %s", (key_id,)).fetchone()
        )
        return None if row is None else self._checked_key(row)

    def list_keys(self, *, after: str | None, limit: int) -> Sequence[KeyRecord]:
        """Return up to ``limit`` keys ordered by key id (byte order), starting after ``after``."""
        rows = self._read(
            lambda c: c.execute(
                KEY_SELECT + " WHERE key_id > %s ORDER BY key_id LIMIT %s", (after or "", limit)
            ).fetchall()
        )
        return [self._checked_key(r) for r in rows]

    def update_key(self, key_id: str, changes: Mapping[str, object]) -> KeyRecord:
        """Change fields in ``KEY_COLUMNS`` atomically and return the new record.

        Raises:
            ValueError: a field outside ``KEY_COLUMNS``.
            RecordNotFoundError: no such key (for example deleted by another replica).
        """
        assignments = _check_changes(changes)
        if not assignments:
            found = self.get_key(key_id)
            if found is None:
                raise RecordNotFoundError(f"key {key_id} does not exist")
            return found

        def tx(conn: Conn) -> KeyRecord:
            row = self._locked_checked_row(conn, key_id)
            record = self._write_changes(conn, row, assignments)
            self._touch(conn, [key_id])
            return record

        return self._run(tx)

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
        """Add the next material version, make it current and apply ``changes`` atomically.

        With ``only_if_due_at``, the due date is re-read under the key's row lock, so when
        replicas race, the first rotates and the others see the new date and return ``None``.

        Raises:
            ValueError: a field outside ``KEY_COLUMNS``.
            RecordNotFoundError: no such key.
        """
        assignments = _check_changes(changes)

        def tx(conn: Conn) -> MaterialRecord | None:
            row = self._locked_checked_row(conn, key_id)
            due = key_from_row(row).next_rotation_date
            if only_if_due_at is not None and (due is None or due > only_if_due_at):
                return None
            top = conn.execute(
                "SELECT max(version) FROM key_versions WHERE key_id = %s", (key_id,)
            ).fetchone()
            version = int(top[0] if top is not None and top[0] is not None else 0) + 1
            material = MaterialRecord(key_id, version, material_id, created, rotation_type)
            self._insert_material(conn, material, self._root.wrap(key_id, version, secret))
            self._write_changes(conn, row, {"current_version": version, **assignments})
            self._touch(conn, [key_id])
            return material

        return self._run(tx)

    def get_material(self, key_id: str, version: int) -> bytearray:
        """Return the plaintext backing material (overwrite it when done).

        Raises:
            RecordNotFoundError: no such key or version.
            StoreError: the stored blob does not authenticate under the root key.
        """
        row = self._read(
            lambda c: c.execute(
                "SELECT wrapped FROM key_versions WHERE key_id = %s AND version = %s",
                (key_id, version),
            ).fetchone()
        )
        if row is None:
            raise RecordNotFoundError(f"key {key_id} has no material version {version}")
        return self._unwrap(key_id, version, row[0])

    def get_key_with_material(
        self, key_id: str, version: int | None = None
    ) -> tuple[KeyRecord, bytearray] | None:
        """Read a key and one material version (default: current) in a single snapshot.

        A ScheduleKeyDeletion, disable or deletion committed by another replica is either
        entirely before this read or entirely after it: the state returned is the state
        the material was read under.

        Returns:
            ``None`` if the key does not exist.

        Raises:
            RecordNotFoundError: the key exists but not that version.
            StoreError: the stored blob does not authenticate under the root key.
        """
        row = self._read(
            lambda c: c.execute(
                _KEY_WITH_MATERIAL + " LEFT JOIN key_versions v ON v.key_id = k.key_id"
                " AND v.version = COALESCE(%s, k.current_version) WHERE k.key_id = %s",
                (version, key_id),
            ).fetchone()
        )
        if row is None:
            return None
        key = self._checked_key(row[:15])
        if row[16] is None:
            raise RecordNotFoundError(f"key {key_id} has no material version {version}")
        return key, self._unwrap(key_id, int(row[15]), row[16])

    def list_materials(self, key_id: str) -> Sequence[MaterialRecord]:
        """Return every material version of the key, oldest first."""
        rows = self._read(
            lambda c: c.execute(
                "SELECT key_id, version, material_id, created, rotation_type FROM key_versions "
                "WHERE key_id = %s ORDER BY version",
                (key_id,),
            ).fetchall()
        )
        return [material_from_row(r) for r in rows]

    def delete_key(self, key_id: str) -> None:
        """Delete the key; its material, aliases and tags go with it (ON DELETE CASCADE)."""

        def tx(conn: Conn) -> None:
            cur = conn.execute("DELETE FROM keys WHERE key_id = %s", (key_id,))
            if cur.rowcount:
                self._touch(conn, [key_id])

        self._run(tx)

    def delete_keys_due(self, now: datetime) -> Sequence[str]:
        """Delete every PendingDeletion key whose deletion date has passed; return their ids.

        Safe to run on every replica at once: each id is returned by exactly one caller, and
        a key whose deletion was cancelled meanwhile is re-checked under its row lock and kept.
        """

        def tx(conn: Conn) -> list[str]:
            # Rows are locked in key-id order, so two replicas never deadlock on each other.
            due = conn.execute(
                KEY_SELECT + " WHERE key_state = 'PendingDeletion' AND deletion_date <= %s "
                "ORDER BY key_id FOR UPDATE",
                (now,),
            ).fetchall()
            # Only rows whose MAC checks out: a state and date written into the database by
            # someone else must not get a key destroyed. A tampered row is left for the
            # operator (every use of it fails with RecordIntegrityError).
            ids = sorted(str(r[0]) for r in verified_key_rows(self._root, due))
            if ids:
                conn.execute("DELETE FROM keys WHERE key_id = ANY(%s)", (ids,))
                self._touch(conn, ids)
            return ids

        return self._run(tx)
