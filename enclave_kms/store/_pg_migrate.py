"""Apply the PostgreSQL store's schema migrations (Alembic; SQLAlchemy is used only here).

``enclave-kms migrate --store postgresql://...`` calls :func:`migrate`. Running it from
several replicas at once is safe: the migration environment holds a PostgreSQL advisory
lock for the whole upgrade, and PostgreSQL's transactional DDL makes each upgrade all or
nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.exc import SQLAlchemyError

from enclave_kms.store._interface import StoreError
from enclave_kms.store._pg_schema import HEAD_REVISION, describe_url

__all__ = ["MIGRATIONS_DIR", "downgrade", "migrate", "sqlalchemy_url"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Alembic keeps its migration context in module globals, so two migrations in one process
# must not overlap; across processes (replicas) the advisory lock in env.py serialises them.
_ALEMBIC_GLOBALS = threading.Lock()


def sqlalchemy_url(url: str) -> str:
    """Turn a libpq ``postgresql://`` URL into SQLAlchemy's psycopg 3 dialect URL.

    Raises:
        StoreError: the URL is not a ``postgresql://`` or ``postgres://`` URL.
    """
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    raise StoreError("the store URL must start with postgresql:// or postgres://")


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not a main option: the ini parser would interpret '%' in a
    # percent-encoded password.
    config.attributes["url"] = sqlalchemy_url(url)
    return config


def _reason(exc: Exception) -> str:
    # The driver's first line ("connection refused", "relation exists"): libpq never puts the
    # password in it, and the SQL statement and its parameters (SQLAlchemy appends them) are
    # left out.
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def migrate(url: str, revision: str = "head") -> str:
    """Upgrade the database at ``url`` to ``revision`` (the newest by default).

    Args:
        url: a ``postgresql://`` URL (libpq syntax; a password in it is never echoed).
        revision: the target revision; ``"head"`` for the one this build needs.

    Returns:
        The revision the database is at afterwards.

    Raises:
        StoreError: the database cannot be reached or a migration fails.
    """
    config = _config(url)
    try:
        with _ALEMBIC_GLOBALS:
            command.upgrade(config, revision)
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"migrating {describe_url(url)} failed: {_reason(exc)}") from None
    return HEAD_REVISION if revision == "head" else revision


def downgrade(url: str, revision: str) -> None:
    """Downgrade the database at ``url`` to ``revision`` (``"base"`` drops everything).

    Meant for tests and for rolling back a failed deployment; it destroys data that newer
    revisions added.

    Raises:
        StoreError: the database cannot be reached or a migration fails.
    """
    config = _config(url)
    try:
        with _ALEMBIC_GLOBALS:
            command.downgrade(config, revision)
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"downgrading {describe_url(url)} failed: {_reason(exc)}") from None
