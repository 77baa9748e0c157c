"""Schema revisions the PostgreSQL store understands, and the check it runs at start-up.

The revision ids mirror the Alembic scripts in ``migrations/versions`` (a test keeps the two
in step). The runtime path only reads ``alembic_version``; it never imports Alembic.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import UndefinedTable

from enclave_kms.store._interface import SchemaVersionError, StoreError

__all__ = ["HEAD_REVISION", "KNOWN_REVISIONS", "check_revision", "describe_url"]

# Oldest first; the last one is what this build's queries are written for.
KNOWN_REVISIONS: tuple[str, ...] = ("0001_initial", "0002_record_mac", "0003_audit_source_ip")
HEAD_REVISION = KNOWN_REVISIONS[-1]


def describe_url(url: str) -> str:
    """A store URL for messages: host, port and database only (never user or password)."""
    try:
        parts = conninfo_to_dict(url)
    except Exception:  # any parse failure: describe nothing rather than leak
        return "the PostgreSQL store"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    db = parts.get("dbname") or "(default database)"
    return f"PostgreSQL {host}:{port}/{db}"


def check_revision(conn: Connection[Any], where: str) -> None:
    """Raise unless the database is exactly at :data:`HEAD_REVISION`.

    Raises:
        SchemaVersionError: no schema yet or an older one ("run enclave-kms migrate"), or a
            revision this build does not know (written by a newer version).
    """
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except UndefinedTable:
        rows = []
    except Exception as exc:
        raise StoreError(f"cannot read the schema revision of {where}: {exc}") from None
    found = [str(r[0]) for r in rows]
    hint = f"run `enclave-kms migrate --store <url>` to upgrade it to {HEAD_REVISION}"
    if not found:
        raise SchemaVersionError(f"{where} has no enclave-kms schema; {hint}")
    if len(found) > 1:
        raise SchemaVersionError(f"{where} has several schema heads {found}; expected one")
    (revision,) = found
    if revision == HEAD_REVISION:
        return
    if revision in KNOWN_REVISIONS:
        raise SchemaVersionError(f"{where} is at the older schema revision {revision}; {hint}")
    raise SchemaVersionError(
        f"{where} is at schema revision {revision}, which this build does not know (it was "
        f"written by a newer enclave-kms); this build needs {HEAD_REVISION}"
    )
