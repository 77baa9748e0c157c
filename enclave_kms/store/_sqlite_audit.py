"""Audit records in the SQLite store (a mixin of :class:`~enclave_kms.store.sqlite.SqliteStore`).

Records go through the store's second connection, ``synchronous=NORMAL``: in WAL mode a
commit there survives a process crash, but the last few records may be lost on power loss or
an OS crash (see :mod:`enclave_kms.store.sqlite`).

``append_audit_guarded`` lets the service decide a cryptographic call on a cached key record
and check it in the audit statement itself (see :mod:`enclave_kms._service_context`): one
autocommit ``INSERT ... SELECT ... WHERE EXISTS``. SQLite runs a write statement in a write
transaction taken before it reads anything, so the check and the insert see the latest
committed state of the file with every other writer (any process) shut out until it commits:
a key change either committed before (nothing is written, the call runs again) or commits
after the record.

``audit_batcher`` is the server's group commit (:mod:`._audit_batch`): the records that queued
during one turn of the event loop go in one transaction, so one writer-lock turn and one WAL
commit serve them all, each guarded record still checked by its own statement.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from enclave_kms.audit import AuditRecord, json_array
from enclave_kms.store._audit_batch import (
    AuditWrite,
    InProcessAuditBatcher,
    Outcome,
    record_refused,
)
from enclave_kms.store._interface import KeyRecord
from enclave_kms.store._sqlite_audit_index import AUDIT_FIELDS, audit_query, index_pending_audit
from enclave_kms.store._sqlite_base import SqliteBase
from enclave_kms.store._sqlite_rows import dt_req, ts
from enclave_kms.store._writer_lock import lock_exclusive, try_lock_exclusive, unlock

__all__ = ["SqliteAudit", "SqliteAuditBatcher"]

# Every _WAL_CHECK_EVERY audit writes, a writer brings the audit indexes up to date (see
# _sqlite_audit_index) and looks at the WAL (see SqliteBase._restart_wal_if_huge).
_WAL_CHECK_EVERY = 256
# indexed = 0: the record enters the audit indexes with the next batch (_sqlite_audit_index).
_INSERT_INTO_AUDIT = f"INSERT INTO audit ({AUDIT_FIELDS}, indexed) "
_AUDIT_INSERT = _INSERT_INTO_AUDIT + "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)"
_AUDIT_INSERT_GUARDED = _INSERT_INTO_AUDIT + "SELECT ?,?,?,?,?,?,?,?,?,?,?,?,?,?,0 WHERE "
# The key's state, policy and current version: what a cryptographic decision rests on.
_KEY_UNCHANGED = (
    "EXISTS (SELECT 1 FROM keys WHERE key_id=? AND key_state=? AND current_version=? AND policy=?)"
)


def _audit_params(record: AuditRecord) -> tuple[object, ...]:
    return (
        ts(record.time), record.operation, record.outcome, record.principal_arn,
        record.caller_account, record.key_arn, record.access_key_id,
        json_array(record.encryption_context_keys),
        record.attestation_module_id, record.attestation_image_digest,
        json_array(record.attestation_pcrs), record.deny_reason,
        int(record.dry_run), record.source_ip,
    )  # fmt: skip


@functools.cache
def _guarded_sql(guards: int) -> str:
    return _AUDIT_INSERT_GUARDED + " AND ".join([_KEY_UNCHANGED] * guards)


def _insert_statement(
    record: AuditRecord, keys: Sequence[KeyRecord]
) -> tuple[str, tuple[object, ...]]:
    """The insert of ``record``: guarded by ``keys`` (written only if each is unchanged)."""
    if not keys:
        return _AUDIT_INSERT, _audit_params(record)
    params: list[object] = list(_audit_params(record))
    for key in keys:
        params += [key.key_id, key.key_state, key.current_version, key.policy]
    return _guarded_sql(len(keys)), tuple(params)


class SqliteAuditBatcher(InProcessAuditBatcher):
    """Group commit on SQLite: each batch is one transaction, run on the event loop.

    What it saves is the per-transaction work: one turn of the writer lock and one WAL commit
    per batch, and in the other workers one fewer reload of pages per commit they did not
    make.
    """

    def __init__(self, store: SqliteAudit) -> None:
        super().__init__(where=str(store.path))
        self._store = store

    def _write_batch_now(self, writes: list[AuditWrite], *, wait: bool) -> list[Outcome] | None:
        return self._store.append_audits(writes, wait=wait)


class SqliteAudit(SqliteBase):
    """``append_audit`` and ``query_audit``."""

    def append_audit(self, record: AuditRecord) -> None:
        """Append an audit record (on the ``synchronous=NORMAL`` connection)."""
        self._execute_alone(self._audit_db, _AUDIT_INSERT, _audit_params(record))

    def append_audit_guarded(self, record: AuditRecord, keys: Sequence[KeyRecord]) -> bool:
        """Append ``record`` only if every key in ``keys`` is still exactly as given.

        One statement (see the module docstring): a key that was disabled, scheduled for
        deletion, deleted, rotated or given another policy since the record was read makes
        this write nothing.

        Returns:
            Whether the record was written.
        """
        return self._execute_alone(self._audit_db, *_insert_statement(record, keys)) == 1

    def append_audits(
        self, writes: Sequence[AuditWrite], *, wait: bool = True
    ) -> list[Outcome] | None:
        """Append several ``(record, guards)`` in one transaction; per record, its outcome.

        Each record with guards is written only if its keys are unchanged (as
        :meth:`append_audit_guarded`), and answers whether it was. A record SQLite cannot take
        (a string that is not text) answers a StoreError; the others are written. Without
        ``wait``, nothing is written and None returned if another writer holds the store.

        Raises:
            StoreError: the transaction failed: none of the records was written.
        """
        statements = [_insert_statement(record, keys) for record, keys in writes]
        if len(statements) == 1:  # alone, a statement is its own transaction: no BEGIN/COMMIT
            try:
                count = self._execute_alone(self._audit_db, *statements[0], wait=wait)
            except ValueError as exc:
                return [record_refused(str(self.path), exc)]
            return None if count is None else [count == 1]
        counts = self._execute_batch(self._audit_db, statements, wait=wait)
        if counts is None:
            return None
        return [
            record_refused(str(self.path), count) if isinstance(count, ValueError) else count == 1
            for count in counts
        ]

    def audit_batcher(self) -> SqliteAuditBatcher:
        """A group-committing writer of audit records for an asyncio server (one event loop)."""
        return SqliteAuditBatcher(self)

    def query_audit(
        self, *, since: datetime | None, key_arn: str | None, limit: int
    ) -> Sequence[AuditRecord]:
        """Return up to ``limit`` audit records, oldest first (by time, then as written)."""
        sql = audit_query(since=since is not None, key=key_arn is not None)
        args: dict[str, object] = {"limit": limit}
        if since is not None:
            args["since"] = ts(since)
        if key_arn is not None:
            args["key"] = key_arn
        rows = self._read(lambda db: db.execute(sql, args).fetchall())
        return [
            AuditRecord(
                time=dt_req(r[1]),
                operation=r[2],
                outcome=r[3],
                principal_arn=r[4],
                caller_account=r[5],
                key_arn=r[6],
                access_key_id=r[7],
                encryption_context_keys=tuple(json.loads(r[8])),
                attestation_module_id=r[9],
                attestation_image_digest=r[10],
                attestation_pcrs=tuple(json.loads(r[11])),
                deny_reason=r[12],
                dry_run=bool(r[13]),
                source_ip=r[14],
            )
            for r in rows
        ]

    # --- writing -------------------------------------------------------------------------------

    def _execute_alone(
        self, conn: sqlite3.Connection, sql: str, params: tuple[object, ...], *, wait: bool = True
    ) -> int | None:
        """Run one single-row write in its own implicit transaction; return its row count.

        A lone statement is atomic by itself, so this is what ``_write`` would do in a third of
        the round trips (no BEGIN IMMEDIATE / COMMIT): it is the audit insert's hot path.
        Without ``wait``, return None at once if another writer holds the store.
        """
        # The writer lock taken inline, not through the _writer() generator: this runs on every
        # audited call, and the generator machinery costs more than the two flock calls.
        with self._lock:
            if not self._lock_writer(wait):
                return None
            try:
                count = conn.execute(sql, params).rowcount
                self._count_writes(conn, 1)
                return count
            except sqlite3.Error as exc:
                raise self._convert(exc) from None
            finally:
                unlock(self._writer_fd)

    def _execute_batch(
        self,
        conn: sqlite3.Connection,
        statements: Sequence[tuple[str, tuple[object, ...]]],
        *,
        wait: bool = True,
    ) -> list[int | ValueError] | None:
        """Run single-row writes in one transaction; per statement, its row count.

        A statement whose parameters cannot be bound (a ``str`` that is not text, such as a
        lone surrogate) is skipped and answered with its ValueError; the others commit.
        Without ``wait``, return None at once if another writer holds the store.
        """
        with self._lock:
            if not self._lock_writer(wait):
                return None
            try:
                conn.execute("BEGIN IMMEDIATE")
                counts: list[int | ValueError] = []
                try:
                    for sql, params in statements:
                        try:
                            counts.append(conn.execute(sql, params).rowcount)
                        except ValueError as exc:  # raised before SQLite runs anything
                            counts.append(exc)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                self._count_writes(conn, len(statements))
                return counts
            except sqlite3.Error as exc:
                raise self._convert(exc) from None
            finally:
                unlock(self._writer_fd)

    def _lock_writer(self, wait: bool) -> bool:
        if wait:
            lock_exclusive(self._writer_fd)
            return True
        return try_lock_exclusive(self._writer_fd)

    def _count_writes(self, conn: sqlite3.Connection, count: int) -> None:
        """After ``count`` audit writes: index pending records and check the WAL, now and then.

        The caller holds both writer locks, outside any transaction.
        """
        self._writes_unchecked += count
        if self._writes_unchecked >= _WAL_CHECK_EVERY:
            self._writes_unchecked = 0
            index_pending_audit(conn)
            self._restart_wal_if_huge(conn)
