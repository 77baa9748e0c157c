"""The PostgreSQL store: one shared database behind several ``enclave-kms serve`` replicas.

Imported only when a ``postgresql://`` (or ``postgres://``) store URL is chosen; this module
and its ``_pg_*`` helpers are the only importers of psycopg.

* **Schema**: versioned with Alembic (``enclave-kms migrate --store URL`` →
  :func:`enclave_kms.store._pg_migrate.migrate`). At start-up the store reads
  ``alembic_version`` and raises :class:`SchemaVersionError` if the schema is missing, older
  ("run enclave-kms migrate") or an unknown (newer) revision. It never migrates by itself.
* **Connections**: a psycopg 3 pool (autocommit connections; explicit transactions for
  multi-statement changes). Each session runs with ``TimeZone=UTC``, ``lock_timeout``,
  ``statement_timeout`` and ``synchronous_commit=on``, so every change is flushed to the
  server's WAL before the call returns.
* **Concurrency** is settled by PostgreSQL, never by in-process locks: unique keys turn an
  alias-create race into :class:`DuplicateError`; ``rotate_key`` locks the key row
  (``SELECT … FOR NO KEY UPDATE``) and re-checks ``next_rotation_date`` under the lock, so a
  due rotation happens once across replicas; ``delete_keys_due`` locks the due rows in key-id
  order and deletes them in the same statement, so each id is returned by exactly one
  replica; foreign keys with ``ON DELETE CASCADE`` make a key's deletion take its material,
  aliases and tags with it, and make an alias or tag written for a vanished key fail with
  :class:`RecordNotFoundError`. Deadlocks and serialization failures (SQLSTATE 40P01,
  40001) are retried a bounded number of times, then surface as :class:`StoreBusyError`, as
  do lock and statement timeouts and an exhausted pool.
* **Cache invalidation across replicas**: every transaction that changes a key, its
  material, tags or aliases also increments the single-row ``change_counter`` and, for key
  changes, the key's ``epoch``, and sends ``NOTIFY enclave_kms_key_changed`` with the key id
  or alias name as payload. All three become visible exactly when the change commits. A
  replica that caches records calls :meth:`PostgresStore.change_counter` at most every
  ``poll_interval`` seconds (one indexed single-row read) and drops its cache when the value
  moved: its staleness is then bounded by ``poll_interval`` plus one round trip.
  :meth:`PostgresStore.key_epoch` gives the same per key. (Backing material for a given key
  id and version never changes, so caching it needs no invalidation.)
* **Material at rest**: wrapped under the root key exactly as in the SQLite store
  (AES-256-GCM, AAD = key id + version); the root key's check value is kept in ``meta`` and
  verified at start-up, so a changed root key is a clear error, not garbage. Plaintext
  material is returned in a ``bytearray`` the caller should overwrite; Python cannot
  guarantee that no other copy remains in memory.
* **Audit records from the server** go through :meth:`PostgresStore.audit_batcher`: an
  asyncio writer on its own connection that commits, in one statement and one round trip,
  every record that queued while the previous batch was in flight (group commit). Each
  request is answered only once its record is committed; see :mod:`._pg_audit`.
* **Records sealed**: key and alias rows carry a MAC under the root key, checked on every read
  and before every change (:mod:`enclave_kms.store._integrity`), as in the SQLite store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from enclave_kms._rootkey import RootKey
from enclave_kms.audit import AuditRecord
from enclave_kms.store._integrity import (
    ALIAS_RECORD,
    SEAL_MARKER,
    SealReport,
    check_alias_row,
    plan_seal,
    seal_marker_value,
    seal_record,
    seals_for,
)
from enclave_kms.store._interface import (
    AliasRecord,
    KeyRecord,
    RecordNotFoundError,
    Store,
    StoreError,
)
from enclave_kms.store._pg_audit import (
    AUDIT_INSERT,
    PgAuditBatcher,
    audit_params,
    guarded_insert,
)
from enclave_kms.store._pg_base import CHANGE_CHANNEL, SESSION_SETTINGS, Conn
from enclave_kms.store._pg_keys import TAG_UPSERT, PgKeys
from enclave_kms.store._pg_rows import (
    ALIAS_SELECT,
    AUDIT_SELECT,
    KEY_SELECT,
    alias_from_row,
    audit_from_row,
)
from enclave_kms.store._pg_schema import HEAD_REVISION

__all__ = ["CHANGE_CHANNEL", "SCHEMA_REVISION", "PostgresStore", "open_store"]

SCHEMA_REVISION = HEAD_REVISION


class PostgresStore(PgKeys):
    """A :class:`~enclave_kms.store.Store` on a shared PostgreSQL database.

    Args:
        url: a libpq URL, ``postgresql://user:password@host:port/dbname?sslmode=...``.
        root_key: wraps backing material; checked against the stored check value.
        min_connections: connections the pool keeps open.
        max_connections: the most connections the pool opens.
        pool_timeout: seconds to wait for a free pooled connection (then StoreBusyError).
        connect_timeout: seconds to wait for the first connection at start-up.
        lock_timeout: seconds a statement waits for a row lock (then StoreBusyError).
        statement_timeout: seconds any statement may run (then StoreBusyError).
        max_attempts: tries for a transaction that hits a deadlock or serialization failure.
        sleep: waits between those tries (a parameter so tests can pin it).

    Raises:
        RootKeyMismatchError: the root key is not the one the database was created with.
        SchemaVersionError: no schema, an older one, or an unknown (newer) revision.
        StoreError: the database cannot be reached.
    """

    def seal_existing_records(self, *, confirm: str | None) -> SealReport:
        """List, and with ``confirm`` (the listing's digest) seal, the records without a MAC.

        The operator's one-time step for a store written before record integrity (see
        :mod:`enclave_kms.store._integrity`): the records are trusted exactly as listed, and
        only if they are still exactly the listed ones.

        Raises:
            RecordIntegrityError: see :func:`enclave_kms.store._integrity.plan_seal`.
        """

        def tx(conn: Conn) -> SealReport:
            conn.execute("LOCK TABLE keys, aliases IN SHARE ROW EXCLUSIVE MODE")
            marker = conn.execute(
                "SELECT value FROM meta WHERE name = %s", (SEAL_MARKER,)
            ).fetchone()
            keys, aliases, report = plan_seal(
                self._root,
                marker=None if marker is None else marker[0],
                keys=conn.execute(KEY_SELECT + " ORDER BY key_id").fetchall(),
                aliases=conn.execute(ALIAS_SELECT + " ORDER BY alias_name").fetchall(),
                confirm=confirm,
                where=self._where,
            )
            if report.sealed:
                key_seals, alias_seals = seals_for(self._root, keys, aliases)
                with conn.cursor() as cur:
                    cur.executemany("UPDATE keys SET mac = %s WHERE key_id = %s", key_seals)
                    cur.executemany(
                        "UPDATE aliases SET mac = %s WHERE alias_name = %s", alias_seals
                    )
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES (%s, %s)",
                    (SEAL_MARKER, seal_marker_value(self._root)),
                )
                self._touch(conn, [str(r[0]) for r in keys])
            return report

        return self._run(tx)

    # --- aliases ------------------------------------------------------------------------------

    def create_alias(self, alias: AliasRecord) -> None:
        """Insert an alias.

        Raises:
            DuplicateError: the name exists (also when another replica won the race).
            RecordNotFoundError: the target key does not exist.
        """

        row = (alias.alias_name, alias.target_key_id, alias.creation_date, alias.last_updated_date)

        def tx(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO aliases (alias_name, target_key_id, creation_date, last_updated, "
                "mac) VALUES (%s, %s, %s, %s, %s)",
                (*row, seal_record(self._root, ALIAS_RECORD, row)),
            )
            self._touch(conn, [alias.alias_name])

        self._run(tx)

    def _checked_alias(self, row: Sequence[object]) -> AliasRecord:
        check_alias_row(self._root, row)
        return alias_from_row(row)

    def get_alias(self, alias_name: str) -> AliasRecord | None:
        """Return the alias, or ``None``.

        Raises:
            RecordIntegrityError: the row was changed outside the store.
        """
        row = self._read(
            lambda c: c.execute(ALIAS_SELECT + " WHERE alias_name = %s", (alias_name,)).fetchone()
        )
        return None if row is None else self._checked_alias(row)

    def update_alias(self, alias_name: str, target_key_id: str, now: datetime) -> None:
        """Point an alias at another key.

        Raises:
            RecordNotFoundError: no such alias (for example deleted concurrently), or no
                such target key.
        """

        def tx(conn: Conn) -> None:
            old = conn.execute(
                ALIAS_SELECT + " WHERE alias_name = %s FOR UPDATE", (alias_name,)
            ).fetchone()
            if old is None:
                raise RecordNotFoundError(f"alias {alias_name} does not exist")
            self._checked_alias(old)
            mac = seal_record(self._root, ALIAS_RECORD, (alias_name, target_key_id, old[2], now))
            conn.execute(
                "UPDATE aliases SET target_key_id = %s, last_updated = %s, mac = %s "
                "WHERE alias_name = %s",
                (target_key_id, now, mac, alias_name),
            )
            self._touch(conn, [alias_name])

        self._run(tx)

    def delete_alias(self, alias_name: str) -> None:
        """Delete an alias.

        Raises:
            RecordNotFoundError: no such alias.
        """

        def tx(conn: Conn) -> None:
            cur = conn.execute("DELETE FROM aliases WHERE alias_name = %s", (alias_name,))
            if cur.rowcount == 0:
                raise RecordNotFoundError(f"alias {alias_name} does not exist")
            self._touch(conn, [alias_name])

        self._run(tx)

    def list_aliases(
        self, *, target_key_id: str | None, after: str | None, limit: int
    ) -> Sequence[AliasRecord]:
        """Return up to ``limit`` aliases ordered by name (byte order), optionally one key's."""
        query = ALIAS_SELECT + " WHERE alias_name > %s"
        args: list[object] = [after or ""]
        if target_key_id is not None:
            query += " AND target_key_id = %s"
            args.append(target_key_id)
        query += " ORDER BY alias_name LIMIT %s"
        args.append(limit)
        rows = self._read(lambda c: c.execute(query, args).fetchall())
        return [self._checked_alias(r) for r in rows]

    # --- tags ---------------------------------------------------------------------------------

    def put_tags(self, key_id: str, tags: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite tags in one transaction.

        Raises:
            RecordNotFoundError: no such key.
        """

        def tx(conn: Conn) -> None:
            cur = conn.execute("UPDATE keys SET epoch = epoch + 1 WHERE key_id = %s", (key_id,))
            if cur.rowcount == 0:
                raise RecordNotFoundError(f"key {key_id} does not exist")
            if tags:
                with conn.cursor() as c:
                    c.executemany(TAG_UPSERT, [(key_id, k, v) for k, v in tags])
            self._touch(conn, [key_id])

        self._run(tx)

    def remove_tags(self, key_id: str, tag_keys: Sequence[str]) -> None:
        """Remove tags (missing tag keys, and a missing key, are ignored)."""

        def tx(conn: Conn) -> None:
            cur = conn.execute(
                "DELETE FROM tags WHERE key_id = %s AND tag_key = ANY(%s)", (key_id, list(tag_keys))
            )
            if cur.rowcount:
                conn.execute("UPDATE keys SET epoch = epoch + 1 WHERE key_id = %s", (key_id,))
                self._touch(conn, [key_id])

        self._run(tx)

    def list_tags(self, key_id: str) -> Sequence[tuple[str, str]]:
        """Return the key's tags ordered by tag key (byte order)."""
        rows = self._read(
            lambda c: c.execute(
                "SELECT tag_key, tag_value FROM tags WHERE key_id = %s ORDER BY tag_key",
                (key_id,),
            ).fetchall()
        )
        return [(str(k), str(v)) for k, v in rows]

    # --- audit --------------------------------------------------------------------------------

    def append_audit(self, record: AuditRecord) -> None:
        """Append an audit record (one autocommit INSERT, ``synchronous_commit=off``).

        The row is committed, and visible to every replica, before this returns; it is not
        waited on to reach the server's disk: a crash of the database server (not of this
        process) can lose the last few records (up to three ``wal_writer_delay``, 600 ms by
        default), the same trade as the SQLite store's ``synchronous=NORMAL`` audit rows.
        """
        self._read(lambda c: c.execute(AUDIT_INSERT, audit_params(record)))

    def append_audit_guarded(self, record: AuditRecord, keys: Sequence[KeyRecord]) -> bool:
        """Append ``record`` only if every key in ``keys`` is still exactly as given.

        One statement: the check and the insert see the same snapshot, so the record (and the
        operation it concludes) is based on key state, policy and current version that were
        still the committed ones when it was written. A key that was disabled, scheduled for
        deletion, deleted, rotated or given another policy since makes this write nothing.

        Returns:
            Whether the record was written.
        """
        if not keys:
            self.append_audit(record)
            return True
        query, params = guarded_insert(len(keys)), audit_params(record, keys)
        cur = self._read(lambda c: c.execute(query, params))
        return cur.rowcount == 1

    def audit_batcher(self) -> PgAuditBatcher:
        """A writer of audit records for an asyncio server (see :mod:`._pg_audit`).

        It has its own connection, opened on first use inside the server's event loop: each
        record is committed before :meth:`PgAuditBatcher.write` returns, as with
        :meth:`append_audit_guarded`, but whatever queues while one batch is in flight is
        written together in the next round trip.
        """
        return PgAuditBatcher(
            self._url,
            session_settings=(SESSION_SETTINGS, self._settings),
            where=self._where,
            connect_timeout=self._connect_timeout,
        )

    def query_audit(
        self, *, since: datetime | None, key_arn: str | None, limit: int
    ) -> Sequence[AuditRecord]:
        """Return up to ``limit`` audit records, oldest first (by time, then as written)."""
        query = AUDIT_SELECT + " WHERE true"
        args: list[object] = []
        if since is not None:
            query += " AND time >= %s"
            args.append(since)
        if key_arn is not None:
            query += " AND key_arn = %s"
            args.append(key_arn)
        query += " ORDER BY time, seq LIMIT %s"  # oldest first: the indexes' order
        args.append(limit)
        rows = self._read(lambda c: c.execute(query, args).fetchall())
        return [audit_from_row(r) for r in rows]


def open_store(url: str, root_key: RootKey, **options: Any) -> PostgresStore:
    """Open the PostgreSQL store at ``url`` (the schema must already be migrated).

    Args:
        url: ``postgresql://`` or ``postgres://`` URL.
        root_key: the root key shared by every replica (it must come from
            ``ENCLAVE_KMS_ROOT_KEY`` or a key file, never be generated per replica).
        **options: keyword arguments of :class:`PostgresStore`.

    Returns:
        The open store.

    Raises:
        RootKeyMismatchError: the root key is not the one the database was created with.
        SchemaVersionError: the schema is missing, older or newer than this build.
        StoreError: the URL is not a PostgreSQL URL or the database cannot be reached.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        raise StoreError("the store URL must start with postgresql:// or postgres://")
    return PostgresStore(url, root_key, **options)


if TYPE_CHECKING:

    def _implements_store(store: PostgresStore) -> Store:
        # mypy proves here that PostgresStore satisfies the Store protocol.
        return store
