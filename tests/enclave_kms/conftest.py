"""Fixtures shared by the store, service and server tests: one throwaway PostgreSQL cluster per
test session, and fresh migrated databases on it (each a fast template copy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pg_cluster import PgCluster, running_cluster


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
