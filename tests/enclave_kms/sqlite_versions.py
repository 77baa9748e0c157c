"""SQL that turns a new SQLite store file back into what older versions left, for upgrades."""

from __future__ import annotations

import sqlite3
from pathlib import Path

# Schema 3 added a MAC column to keys and aliases; without it a file is at schema 2.
V2_WITHOUT_MACS = "ALTER TABLE keys DROP COLUMN mac; ALTER TABLE aliases DROP COLUMN mac;"

# Schema 5 added the request's source address to audit records: the audit table as version 4
# had it.
V4_AUDIT = "ALTER TABLE audit DROP COLUMN source_ip;"

# Schema 4 made the audit indexes partial, over a new `indexed` column: the audit table as
# versions 2 and 3 had it.
V3_AUDIT = (
    V4_AUDIT
    + """
DROP INDEX audit_by_time; DROP INDEX audit_by_key; ALTER TABLE audit DROP COLUMN indexed;
CREATE INDEX audit_by_time ON audit (time); CREATE INDEX audit_by_key ON audit (key_arn, time);
DELETE FROM meta WHERE name='audit_indexed_through';
"""
)

# A file from before record integrity: schema 2, no MACs, and no seal marker.
V2_FILE = V2_WITHOUT_MACS + V3_AUDIT + "DELETE FROM meta WHERE name='records_sealed';"  # noqa: S608 - constants


def rewind(path: Path, version: int, sql: str) -> None:
    """Make the closed store file at ``path`` look as schema ``version`` left it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(sql)
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(version),))
    finally:
        db.close()
