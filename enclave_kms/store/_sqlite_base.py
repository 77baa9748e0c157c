"""Connections, schema, transactions and change publication of the SQLite store.

See :mod:`enclave_kms.store.sqlite` for the guarantees; this module holds the mechanics every
method of :class:`~enclave_kms.store.sqlite.SqliteStore` builds on.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from enclave_kms._rootkey import RootKey
from enclave_kms.store._integrity import (
    SEAL_MARKER,
    check_seal_marker,
    seal_marker_value,
    unsealed_message,
)
from enclave_kms.store._interface import (
    DuplicateError,
    RecordIntegrityError,
    RecordNotFoundError,
    SchemaVersionError,
    StoreBusyError,
    StoreError,
    UnsealedRecordsError,
)
from enclave_kms.store._sqlite_audit_index import create_audit_indexes, upgrade_audit_to_v4
from enclave_kms.store._sqlite_rows import (
    AUDIT_COLUMNS,
    AUDIT_SOURCE_IP_COLUMN,
    DUPLICATE_ERRORS,
    SCHEMA,
)
from enclave_kms.store._writer_lock import lock_exclusive, unlock

__all__ = ["SCHEMA_VERSION", "SqliteBase"]

SCHEMA_VERSION = 5
_T = TypeVar("_T")


_CHECKPOINT_INTERVAL = 0.25  # seconds between background WAL checkpoints
_WAL_RESTART_SIZE = 8 * 1024 * 1024  # past this, make the WAL start over (see _checkpoint_loop)
_WAL_SIZE_LIMIT = 64 * 1024 * 1024  # truncate the WAL back to this after a checkpoint
_CHECKPOINT_BUSY_TIMEOUT = 0.05  # seconds a RESTART may wait for readers while writers wait
# Past this size an audit writer restarts the WAL itself (_restart_wal_if_huge): the backstop
# when the checkpoint thread cannot keep up (starved of CPU, or of the writer lock by a tight
# write loop).
_WAL_FORCE_SIZE = 64 * 1024 * 1024


def _upgrade_from_v1(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the audit table without AUTOINCREMENT (rows, order and seq kept).

    Runs inside the opener's ``BEGIN IMMEDIATE`` (DDL is transactional in SQLite), so another
    process opening the file at the same time waits and then finds version 2.
    """
    db.execute(f"CREATE TABLE audit_v2 ({AUDIT_COLUMNS})")
    db.execute("INSERT INTO audit_v2 SELECT * FROM audit ORDER BY seq")
    db.execute("DROP TABLE audit")  # its indexes and sqlite_sequence row go with it
    db.execute("ALTER TABLE audit_v2 RENAME TO audit")
    db.execute("CREATE INDEX audit_by_time ON audit (time)")  # as version 2 had them
    db.execute("CREATE INDEX audit_by_key ON audit (key_arn, time)")
    db.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")


def _upgrade_from_v2(db: sqlite3.Connection) -> None:
    """Schema 2 -> 3: a MAC column on key and alias rows (see ``_integrity``).

    The rows already there are left unsealed: sealing them here would also seal whatever
    someone with write access had put there (``enclave-kms seal-records`` does it, on an
    operator's word). Runs in the opener's ``BEGIN IMMEDIATE``, like every upgrade.
    """
    db.execute("ALTER TABLE keys ADD COLUMN mac BLOB")
    db.execute("ALTER TABLE aliases ADD COLUMN mac BLOB")
    db.execute("UPDATE meta SET value = '3' WHERE name = 'schema_version'")


def _upgrade_from_v4(db: sqlite3.Connection) -> None:
    """Schema 4 -> 5: audit records keep the address the request came from.

    ADD COLUMN rewrites no row: the records already there read as NULL (address unknown).
    Runs in the opener's ``BEGIN IMMEDIATE``, like every upgrade.
    """
    db.execute(f"ALTER TABLE audit ADD COLUMN {AUDIT_SOURCE_IP_COLUMN}")
    db.execute("UPDATE meta SET value = '5' WHERE name = 'schema_version'")


class SqliteBase:
    """Opens the file (two connections), checks schema and root key, runs transactions."""

    def __init__(
        self,
        path: Path,
        root_key: RootKey,
        *,
        busy_timeout: float = 10.0,
        allow_unsealed: bool = False,
    ) -> None:
        self.path = Path(path)
        self._root = root_key
        self._lock = threading.RLock()
        # Writers of every process on this file queue on an exclusive flock before SQLite's
        # own write lock: a blocked flock wakes the moment it is released, where SQLite's busy
        # handler sleeps in growing steps (idle cores under load with several workers); a
        # waiter retries briefly before it sleeps at all (see _writer_lock).
        # SQLite's locking stays the guarantee of correctness; the kernel drops a killed
        # process's flock.
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._writer_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._wal_path = self.path.with_name(self.path.name + "-wal")
        self._writes_unchecked = 0
        try:
            self._db = self._connect(busy_timeout, "FULL")
            self._audit_db = self._connect(busy_timeout, "NORMAL")
            self._init_schema()
            self._refuse_triggers()
            self._check_sealed(allow_unsealed)
        except BaseException as exc:
            # Refused or failed: release what was opened (a caller may retry many times).
            for name in ("_db", "_audit_db"):
                conn = getattr(self, name, None)
                if conn is not None:
                    conn.close()
            os.close(self._writer_fd)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open the store at {self.path}: {exc}") from None
            raise
        # Checkpoints run here, off the request path: an automatic checkpoint fsyncs inside
        # whichever write crosses the threshold, holding the write lock (p99 of an audit
        # insert with two writer processes: 3.6 ms with it, 0.25 ms without). Durability is
        # the WAL's and does not depend on when pages are copied back into the database.
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _connect(self, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
        # Create the file 0600 before SQLite does (it would honour the umask): the WAL and
        # shared-memory files take the database file's mode. Key material in it is wrapped,
        # but audit records and policies are not for other local users to read.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint_loop
        db.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _init_schema(self) -> None:
        # executescript commits on its own; every statement is CREATE ... IF NOT EXISTS, so
        # processes opening a new file at once all converge on the same schema.
        self._db.executescript(SCHEMA)
        with self._write() as db:
            # The root key first: an upgrade seals records under it, so it must be the file's.
            check = db.execute("SELECT value FROM meta WHERE name='root_key_check'").fetchone()
            if check is None:
                db.execute(
                    "INSERT INTO meta VALUES ('root_key_check', ?)", (self._root.check_value(),)
                )
            else:
                self._root.verify_check_value(str(check[0]))
            row = db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                create_audit_indexes(db)
            elif int(row[0]) in (1, 2, 3, 4):
                # Each step runs after the ones before it, in this one transaction.
                if int(row[0]) == 1:
                    _upgrade_from_v1(db)
                if int(row[0]) <= 2:
                    _upgrade_from_v2(db)
                if int(row[0]) <= 3:
                    upgrade_audit_to_v4(db)
                _upgrade_from_v4(db)
            elif int(row[0]) != SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path} has schema version {row[0]}; this build reads versions 1 "
                    f"to 4 (upgraded when opened) and {SCHEMA_VERSION}"
                )
            # Files created before the counter existed get it here, with no other change.
            db.execute("INSERT OR IGNORE INTO meta VALUES ('change_counter', '0')")

    def _refuse_triggers(self) -> None:
        """The schema has no triggers; one found in the file was planted there.

        A trigger runs inside the store's own write transactions, where it could change a
        record between the store's check and its commit.

        Raises:
            RecordIntegrityError: the file holds a trigger.
        """
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall()
        if rows:
            raise RecordIntegrityError(
                f"{self.path} holds {len(rows)} trigger(s) that enclave-kms never creates: "
                "they were added outside enclave-kms; remove them after checking the records"
            )

    def _check_sealed(self, allow_unsealed: bool) -> None:
        """A new, empty store is sealed from birth; one with unsealed records does not open.

        After the schema transaction has committed, so an upgraded file stays upgraded.

        Raises:
            UnsealedRecordsError: records but no seal marker (unless ``allow_unsealed``).
            RecordIntegrityError: a seal marker that does not verify.
        """
        with self._write() as db:
            marker = db.execute("SELECT value FROM meta WHERE name=?", (SEAL_MARKER,)).fetchone()
            if marker is not None:
                check_seal_marker(self._root, marker[0], str(self.path))
                return
            unsealed, total = db.execute(
                "SELECT count(*) FILTER (WHERE mac IS NULL), count(*) FROM "
                "(SELECT mac FROM keys UNION ALL SELECT mac FROM aliases)"
            ).fetchone()
            if not total:
                db.execute(
                    "INSERT INTO meta VALUES (?, ?)", (SEAL_MARKER, seal_marker_value(self._root))
                )
            elif not allow_unsealed:
                command = f"enclave-kms seal-records --data-dir {self.path.parent}"
                raise UnsealedRecordsError(
                    unsealed_message(str(self.path), int(unsealed), int(total - unsealed), command)
                )

    # --- transaction helpers ------------------------------------------------------------------

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """This process's turn to write (after ``self._lock``, so the order is always the same)."""
        lock_exclusive(self._writer_fd)
        try:
            yield
        finally:
            unlock(self._writer_fd)

    @contextmanager
    def _write(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        conn = self._db if db is None else db
        with self._lock, self._writer():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise self._convert(exc) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                # A failed COMMIT may already have ended the transaction; rolling back again
                # would raise "no transaction is active" and hide the original error.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._convert(exc) from None
                raise

    def _restart_wal_if_huge(self, conn: sqlite3.Connection) -> None:
        """The backstop of _checkpoint_loop; the caller holds both writer locks."""
        try:
            huge = self._wal_path.stat().st_size > _WAL_FORCE_SIZE
        except OSError:
            return
        if huge:
            # Best effort: a reader in another process may keep it from finishing; the
            # record just written is committed either way.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                raise self._convert(exc) from None

    @staticmethod
    def _convert(exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreBusyError(f"the store is busy: {text}")
        # Only a duplicate name is a DuplicateError (PostgreSQL's UniqueViolation); NOT NULL,
        # CHECK and the like are bugs or bad input and stay plain store failures.
        if getattr(exc, "sqlite_errorname", "") in DUPLICATE_ERRORS:
            return DuplicateError(text)
        return StoreError(f"store failure: {text}")

    @staticmethod
    def _touch(db: sqlite3.Connection) -> None:
        """Publish a change: bump the change counter in the caller's write transaction."""
        db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name='change_counter'")

    @staticmethod
    def _require_key(db: sqlite3.Connection, key_id: str) -> None:
        # Inside BEGIN IMMEDIATE: no other process can delete the key before we commit.
        if db.execute("SELECT 1 FROM keys WHERE key_id=?", (key_id,)).fetchone() is None:
            raise RecordNotFoundError(f"key {key_id} does not exist")

    def change_counter(self) -> int:
        """Return the store-wide change counter (grows with every committed key change).

        A service that caches key records, aliases or policies polls this and drops its
        caches when the value moved (see ``KmsService``).
        """
        row = self._read(
            lambda db: db.execute("SELECT value FROM meta WHERE name='change_counter'").fetchone()
        )
        if row is None:
            raise StoreError(f"{self.path} lost its change counter row")
        return int(row[0])

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database, and keep the WAL file from growing forever.

        PASSIVE never blocks writers, but it cannot make the WAL start over: a writer rewinds
        the WAL only when it finds every frame already copied back, and under steady load a
        new frame always arrives first, so the file grew by every commit (about 15 kB for an
        audit row: 1.35 GB after 90 000 rows in 4 s). Once the file passes
        ``_WAL_RESTART_SIZE``, this machine's writers are held off (the same per-process lock
        and flock every writer takes first) for the moment a RESTART checkpoint needs to copy
        the last frames; the next write then starts the WAL from its beginning.
        """
        # Its own short busy timeout: PASSIVE never waits, and RESTART waits for readers
        # while this machine's writers wait for it.
        try:
            db = sqlite3.connect(self.path, timeout=_CHECKPOINT_BUSY_TIMEOUT, isolation_level=None)
        except sqlite3.Error:
            return
        wal = self._wal_path
        try:
            while not self._stop_checkpoints.wait(_CHECKPOINT_INTERVAL):
                # Another process may be checkpointing at the same moment: then this one
                # is busy and simply tries again next time.
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                try:
                    large = wal.stat().st_size > _WAL_RESTART_SIZE
                except OSError:
                    large = False
                if large:
                    self._restart_wal(db)
        finally:
            db.close()

    def _restart_wal(self, db: sqlite3.Connection) -> None:
        # The same order as every writer (process lock, then flock), so no deadlock; the
        # PASSIVE pass just before left only the frames of the last moments to copy.
        with self._lock:
            lock_exclusive(self._writer_fd)
            try:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            finally:
                unlock(self._writer_fd)

    def close(self) -> None:
        """Stop the checkpoints and close the connections."""
        self._stop_checkpoints.set()
        self._checkpointer.join(timeout=5)
        with self._lock:
            self._db.close()
            self._audit_db.close()
            os.close(self._writer_fd)
