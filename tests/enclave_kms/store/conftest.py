"""Fixtures for the store tests: a session-wide throwaway PostgreSQL cluster and, for every
contract test, a ``backend`` that opens stores on fresh storage (SQLite file or PostgreSQL
database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import PgCluster, running_cluster
from store_backends import ROOT_KEY_BYTES, Backend

from enclave_kms._rootkey import RootKey
from enclave_kms.store import Store


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL cluster per test run (skipped only when no server binaries exist)."""
    try:
        with running_cluster() as cluster:
            yield cluster
    except FileNotFoundError as exc:
        pytest.skip(f"PostgreSQL tests need the server binaries: {exc}")


@pytest.fixture
def pg_empty_url(pg_cluster: PgCluster) -> str:
    """A fresh database with no schema."""
    return pg_cluster.create_database("empty")


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """A database migrated once per run; each test gets a copy (faster than migrating)."""
    from enclave_kms.store._pg_migrate import migrate

    url = pg_cluster.create_database("template")
    migrate(url)
    return url.rsplit("/", 1)[1]


@pytest.fixture
def pg_url(pg_cluster: PgCluster, pg_template: str) -> str:
    """A fresh database at the newest schema revision (a copy of the migrated template)."""
    return pg_cluster.create_database("kms", template=pg_template)


@pytest.fixture
def root_key() -> RootKey:
    return RootKey(ROOT_KEY_BYTES)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each contract test runs once per backend, on fresh storage."""
    if request.param == "sqlite":
        from enclave_kms.store.sqlite import SqliteStore

        path = tmp_path / "store.sqlite3"
        backend = Backend("sqlite", lambda rk: SqliteStore(path, rk))
        backend.location = str(path)
    else:
        from enclave_kms.store.postgres import open_store

        url: str = request.getfixturevalue("pg_url")
        backend = Backend("postgresql", lambda rk: open_store(url, rk, lock_timeout=10.0))
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
