"""``enclave-kms migrate --store postgresql://...``: bring the PostgreSQL schema up to date.

Registered by the ``enclave-kms`` command (``register(subparsers)``). The migration code and
its dependencies (Alembic, SQLAlchemy, psycopg) are imported only when the command runs, so
the CLI works without the ``postgres`` extra installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["STORE_URL_ENV", "register"]

STORE_URL_ENV = "ENCLAVE_KMS_STORE_URL"


def register(subparsers: Any) -> None:
    """Add the ``migrate`` subcommand to the ``enclave-kms`` parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the PostgreSQL store's schema",
        description="Upgrade the PostgreSQL store to the schema this version needs. Safe to "
        "run from several replicas at once; run it before starting upgraded servers.",
    )
    p.add_argument(
        "--store",
        default=os.environ.get(STORE_URL_ENV),
        help=f"postgresql:// URL (default: ${STORE_URL_ENV}); prefer the environment "
        "variable or a libpq password file to a password on the command line",
    )
    p.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    if not args.store:
        print(f"enclave-kms migrate: give --store or set {STORE_URL_ENV}", file=sys.stderr)
        return 2
    try:
        from enclave_kms.store._pg_migrate import migrate
    except ModuleNotFoundError as exc:
        print(
            f"enclave-kms migrate: {exc.name} is missing; install enclave-kms[postgres]",
            file=sys.stderr,
        )
        return 1
    from enclave_kms.store._interface import StoreError
    from enclave_kms.store._pg_schema import describe_url

    try:
        revision = migrate(args.store)
    except StoreError as exc:
        print(f"enclave-kms migrate: {exc}", file=sys.stderr)
        return 1
    print(f"{describe_url(args.store)} is at schema revision {revision}")
    return 0
