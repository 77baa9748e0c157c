"""Store backends for the contract tests: open stores on one piece of storage, peek at it."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pg_cluster import PgCluster

from enclave_kms._rootkey import RootKey
from enclave_kms.store import Store

ROOT_KEY_BYTES = bytes(range(32))


class Backend:
    """Opens stores of one kind on one piece of storage, and closes them all at the end."""

    def __init__(self, name: str, opener: Callable[..., Store]) -> None:
        self.name = name
        self._opener = opener
        self._opened: list[Store] = []
        self.location = ""  # SQLite file path or PostgreSQL URL
        self.pg_cluster: PgCluster | None = None

    def open(self, root_key: RootKey | None = None) -> Store:
        """A new store instance (a new connection set, as another replica would have)."""
        store = self._opener(root_key or RootKey(ROOT_KEY_BYTES))
        self._opened.append(store)
        return store

    def open_unsealed(self, root_key: RootKey | None = None) -> Any:
        """A store opened as ``enclave-kms seal-records`` opens it (unsealed records allowed)."""
        store = self._opener(root_key or RootKey(ROOT_KEY_BYTES), allow_unsealed=True)
        self._opened.append(store)
        return store

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run raw SQL against the storage, bypassing the store (for tampering and peeking)."""
        if self.name == "sqlite":
            with sqlite3.connect(self.location) as db:
                return list(db.execute(statement, params).fetchall())
        import psycopg

        with psycopg.connect(self.location, autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[call-overload]
            return list(cur.fetchall()) if cur.description else []

    def raw_bytes(self) -> bytes:
        """Everything the backend has on disk or would export (file bytes / pg_dump output)."""
        if self.name == "sqlite":
            path = Path(self.location)
            files = [path, path.with_name(path.name + "-wal")]
            return b"".join(p.read_bytes() for p in files if p.exists())
        assert self.pg_cluster is not None
        dump = self.pg_cluster.bindir / "pg_dump"
        done = subprocess.run(
            [str(dump), "--data-only", self.location], capture_output=True, check=True
        )
        return done.stdout

    def make_schema_newer(self) -> None:
        """Mark the storage as written by a newer, unknown schema version."""
        if self.name == "sqlite":
            self.sql("UPDATE meta SET value='999' WHERE name='schema_version'")
        else:
            self.sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")

    def close_all(self) -> None:
        for store in self._opened:
            store.close()
