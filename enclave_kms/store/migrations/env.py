"""Alembic environment: runs the revisions online, on one connection, under an advisory lock.

Only ``enclave_kms.store._pg_migrate.migrate`` drives this file; it passes the SQLAlchemy URL
in ``config.attributes["url"]`` (not the ini file, whose ``%`` interpolation would mangle
percent-encoded passwords). SQLAlchemy is used for migrations only; the runtime store talks
to PostgreSQL through psycopg directly.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

# Any fixed 64-bit number: replicas that all run ``migrate`` at start-up queue on this lock
# instead of racing to create the same tables (the loser would fail on "already exists").
_MIGRATION_LOCK_ID = 0x656B6D5F6D696772  # "ekm_migr"


def _run() -> None:
    url = context.config.attributes["url"]
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            # PostgreSQL DDL is transactional: the whole upgrade commits or nothing does.
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run enclave-kms migrate")
_run()
