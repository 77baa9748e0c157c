"""Connection pool, transactions, retries and change publication for the PostgreSQL store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool, PoolTimeout

from enclave_kms._rootkey import RootKey, RootKeyError
from enclave_kms.store._integrity import (
    SEAL_MARKER,
    check_seal_marker,
    seal_marker_value,
    unsealed_message,
)
from enclave_kms.store._interface import (
    RecordIntegrityError,
    StoreError,
    UnsealedRecordsError,
)
from enclave_kms.store._pg_rows import RETRYABLE, convert_error, driver_message
from enclave_kms.store._pg_schema import check_revision, describe_url

# The store's tables: no trigger or rule on them is ever enclave-kms's own.
_TABLES = ("keys", "key_versions", "aliases", "tags", "audit", "meta", "change_counter")

__all__ = ["CHANGE_CHANNEL", "SESSION_SETTINGS", "Conn", "PgBase"]

CHANGE_CHANNEL = "enclave_kms_key_changed"
Conn = Connection[Any]
_DURABLE = "SET LOCAL synchronous_commit TO on"
SESSION_SETTINGS = (
    "SELECT set_config('TimeZone', 'UTC', false), "
    "set_config('lock_timeout', %s, false), "
    "set_config('statement_timeout', %s, false), "
    "set_config('synchronous_commit', 'off', false)"
)
_T = TypeVar("_T")


class PgBase:
    """Opens and checks the database, runs transactions, publishes changes (see ``postgres``)."""

    def __init__(
        self,
        url: str,
        root_key: RootKey,
        *,
        min_connections: int = 1,
        max_connections: int = 10,
        pool_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        lock_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        allow_unsealed: bool = False,
    ) -> None:
        self._root = root_key
        self._url = url
        self._connect_timeout = connect_timeout
        self._where = describe_url(url)
        self._settings = (
            f"{round(lock_timeout * 1000)}ms",
            f"{round(statement_timeout * 1000)}ms",
        )
        self._max_attempts = max(1, max_attempts)
        self._sleep = sleep
        # One direct connection first: it fails fast with the server's reason (unknown
        # database, bad password) where the pool would keep retrying until its timeout.
        try:
            with psycopg.connect(
                url, autocommit=True, connect_timeout=max(1, round(connect_timeout))
            ) as conn:
                self._configure(conn)
                check_revision(conn, self._where)
                self._check_root_key(conn)
                self._check_sealed(conn, allow_unsealed)
        except psycopg.Error as exc:
            raise StoreError(f"cannot use {self._where}: {driver_message(exc)}") from None
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_connections,
            max_size=max(min_connections, max_connections),
            kwargs={"autocommit": True, "connect_timeout": max(1, round(connect_timeout))},
            configure=self._configure,
            timeout=pool_timeout,
            open=False,
            name="enclave-kms-store",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except PoolTimeout:
            self._pool.close()
            raise StoreError(f"cannot connect to {self._where}") from None

    def __repr__(self) -> str:
        return f"PostgresStore({self._where})"

    def _configure(self, conn: Conn) -> None:
        conn.execute(SESSION_SETTINGS, self._settings)

    def _check_root_key(self, conn: Conn) -> None:
        # ON CONFLICT DO NOTHING: the first replica to start records the check value; every
        # other one (and every later start) compares against it.
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('root_key_check', %s) "
            "ON CONFLICT (name) DO NOTHING",
            (self._root.check_value(),),
        )
        row = conn.execute("SELECT value FROM meta WHERE name = 'root_key_check'").fetchone()
        if row is None:
            raise StoreError(f"{self._where} lost its root key check value")
        self._root.verify_check_value(str(row[0]))

    def _check_sealed(self, conn: Conn, allow_unsealed: bool) -> None:
        """An empty database is sealed from birth; one with unsealed records does not open.

        Raises:
            UnsealedRecordsError: records but no seal marker (unless ``allow_unsealed``).
            RecordIntegrityError: a seal marker that does not verify, or triggers or rules
                on the store's tables (planted: the schema has none).
        """
        # Triggers and rules run inside the store's own transactions, where they could
        # change a record between the store's check and its commit.
        planted = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
            "(SELECT oid FROM pg_class WHERE relname = ANY(%s) "
            "AND relnamespace = current_schema()::regnamespace)",
            (list(_TABLES),),
        ).fetchone()
        rules = conn.execute(
            "SELECT count(*) FROM pg_rules WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s)",
            (list(_TABLES),),
        ).fetchone()
        if (planted and planted[0]) or (rules and rules[0]):
            raise RecordIntegrityError(
                f"{self._where} has triggers or rules on its tables that enclave-kms never "
                "creates: they were added outside enclave-kms; remove them after checking the "
                "records"
            )
        # The usual case needs no lock: the marker is there (every start after the first).
        marker = conn.execute("SELECT value FROM meta WHERE name = %s", (SEAL_MARKER,)).fetchone()
        if marker is not None:
            check_seal_marker(self._root, marker[0], self._where)
            return
        with conn.transaction():
            # The first replica to open an empty database marks it; the lock makes the
            # "empty, so sealed" decision and the marker one step for every replica.
            conn.execute("LOCK TABLE keys, aliases IN SHARE MODE")
            row = conn.execute("SELECT value FROM meta WHERE name = %s", (SEAL_MARKER,)).fetchone()
            if row is not None:
                check_seal_marker(self._root, row[0], self._where)
                return
            counts = conn.execute(
                "SELECT count(*) FILTER (WHERE mac IS NULL), count(*) FROM "
                "(SELECT mac FROM keys UNION ALL SELECT mac FROM aliases) AS records"
            ).fetchone()
            unsealed, total = (int(counts[0]), int(counts[1])) if counts else (0, 0)
            if not total:
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                    (SEAL_MARKER, seal_marker_value(self._root)),
                )
            elif not allow_unsealed:
                command = "enclave-kms seal-records --store <url>"
                raise UnsealedRecordsError(
                    unsealed_message(self._where, unsealed, total - unsealed, command)
                )

    # --- transaction helpers ------------------------------------------------------------------

    def _run(self, fn: Callable[[Conn], _T], *, transaction: bool = True) -> _T:
        """Run ``fn`` on a pooled connection, in a transaction, retrying lost races."""
        for attempt in range(1, self._max_attempts + 1):
            try:
                with self._pool.connection() as conn:
                    if not transaction:
                        return fn(conn)
                    with conn.transaction():
                        conn.execute(_DURABLE)
                        return fn(conn)
            except RETRYABLE as exc:
                if attempt == self._max_attempts:
                    raise convert_error(exc, self._where) from None
                # Deterministic exponential back-off: 10, 20, 40 ms ...; the other party
                # of a deadlock has already been let through by the server.
                self._sleep(0.01 * 2 ** (attempt - 1))
            except (psycopg.Error, PoolTimeout) as exc:
                raise convert_error(exc, self._where) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, fn: Callable[[Conn], _T]) -> _T:
        # One statement in autocommit mode: it sees one consistent snapshot by itself.
        return self._run(fn, transaction=False)

    @staticmethod
    def _touch(conn: Conn, names: Iterable[str]) -> None:
        """Publish a change (call last in the transaction: it holds the counter row lock)."""
        for name in sorted(set(names)):
            conn.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, name))
        conn.execute("UPDATE change_counter SET value = value + 1 WHERE id = 1")

    def _unwrap(self, key_id: str, version: int, wrapped: bytes) -> bytearray:
        try:
            return self._root.unwrap(key_id, version, bytes(wrapped))
        except RootKeyError as exc:
            raise StoreError(str(exc)) from None

    # --- cache invalidation -------------------------------------------------------------------

    def change_counter(self) -> int:
        """Return the store-wide change counter (grows with every committed key change).

        A replica that caches key records, aliases or tags polls this every
        ``poll_interval`` seconds and drops its cache when the value differs from the last
        one it saw; staleness is bounded by the poll interval plus one round trip.
        """
        row = self._read(
            lambda c: c.execute("SELECT value FROM change_counter WHERE id = 1").fetchone()
        )
        if row is None:
            raise StoreError(f"{self._where} lost its change counter row")
        return int(row[0])

    def key_epoch(self, key_id: str) -> int | None:
        """Return the key's epoch (grows with every change to the key or its tags), or None."""
        row = self._read(
            lambda c: c.execute("SELECT epoch FROM keys WHERE key_id = %s", (key_id,)).fetchone()
        )
        return None if row is None else int(row[0])

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()
