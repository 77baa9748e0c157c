"""Fixtures for the store tests: for every contract test, a ``backend`` that opens stores on
fresh storage (SQLite file or PostgreSQL database). The PostgreSQL cluster fixtures
(``pg_cluster``, ``pg_url``, ...) live in ``tests/enclave_kms/conftest.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_backends import ROOT_KEY_BYTES, Backend

from enclave_kms._rootkey import RootKey
from enclave_kms.store import Store


@pytest.fixture
def root_key() -> RootKey:
    return RootKey(ROOT_KEY_BYTES)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each contract test runs once per backend, on fresh storage."""
    if request.param == "sqlite":
        from enclave_kms.store.sqlite import SqliteStore

        path = tmp_path / "store.sqlite3"
        backend = Backend("sqlite", lambda rk, **kw: SqliteStore(path, rk, **kw))
        backend.location = str(path)
    else:
        from enclave_kms.store.postgres import open_store

        url: str = request.getfixturevalue("pg_url")
        backend = Backend(
            "postgresql", lambda rk, **kw: open_store(url, rk, lock_timeout=10.0, **kw)
        )
        backend.location = url
        backend.pg_cluster = request.getfixturevalue("pg_cluster")
    try:
        yield backend
    finally:
        backend.close_all()


@pytest.fixture
def store(backend: Backend) -> Store:
    """A store on fresh storage."""
    return backend.open()
