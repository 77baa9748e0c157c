"""The SQLite store's audit indexes, brought up to date in batches (schema version 4).

Every audited call appends one row. Kept current on every insert, ``audit_by_time`` and
``audit_by_key`` cost more than the row itself: an insert took 35 us with them and 19 us
without (benchmark machine). With several worker processes it is worse, because SQLite drops
a connection's page cache whenever another process has written, so each insert read the index
pages it touched again.

Since schema 4 both indexes are partial (``WHERE indexed = 1``). A record is inserted with
``indexed = 0`` and enters no index. Every ``_WAL_CHECK_EVERY`` audit writes of a process
(see ``_sqlite_base``), that writer marks every newer row ``indexed = 1`` in one statement
(about 2 us a row) and moves the watermark ``audit_indexed_through`` in ``meta`` in the same
transaction. The invariant: rows up to the watermark are in the indexes, rows above it are
not. A query reads the indexed part through the indexes and the short tail above the
watermark by a ``seq`` range, in one statement (one snapshot), so it sees every committed row
exactly once.

A record is durable when its insert commits, exactly as before; only its index entries wait.
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "AUDIT_FIELDS",
    "AUDIT_INDEXED_COLUMN",
    "audit_query",
    "create_audit_indexes",
    "index_pending_audit",
    "upgrade_audit_to_v4",
]

# DEFAULT 1: ADD COLUMN gives the rows of an upgraded file this value without rewriting them,
# and they are all in the indexes. New records are inserted with an explicit 0.
AUDIT_INDEXED_COLUMN = "indexed INTEGER NOT NULL DEFAULT 1"
_WATERMARK = "audit_indexed_through"
#: The columns a record is written and read with (all but ``seq`` and ``indexed``).
AUDIT_FIELDS = (
    "time, operation, outcome, principal_arn, caller_account, key_arn, access_key_id, ec_keys, "
    "att_module_id, att_image_digest, att_pcrs, deny_reason, dry_run, source_ip"
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time) WHERE indexed = 1",
    "CREATE INDEX IF NOT EXISTS audit_by_key ON audit (key_arn, time) WHERE indexed = 1",
)


def create_audit_indexes(db: sqlite3.Connection) -> None:
    """Create the partial indexes and the watermark (a new file, or at the end of an upgrade).

    Runs in the opener's write transaction. Every row already in the table must have
    ``indexed = 1``.
    """
    for statement in _INDEXES:
        db.execute(statement)
    db.execute(
        "INSERT OR REPLACE INTO meta VALUES (?, (SELECT CAST(COALESCE(max(seq), 0) AS TEXT) "
        "FROM audit))",
        (_WATERMARK,),
    )


def upgrade_audit_to_v4(db: sqlite3.Connection) -> None:
    """Schema 3 -> 4: the audit indexes become partial (see the module docstring).

    Existing rows keep ``indexed = 1`` through the column default and stay indexed. Runs in
    the opener's ``BEGIN IMMEDIATE``, like every upgrade.
    """
    db.execute(f"ALTER TABLE audit ADD COLUMN {AUDIT_INDEXED_COLUMN}")
    db.execute("DROP INDEX IF EXISTS audit_by_time")
    db.execute("DROP INDEX IF EXISTS audit_by_key")
    create_audit_indexes(db)
    db.execute("UPDATE meta SET value = '4' WHERE name = 'schema_version'")


def index_pending_audit(db: sqlite3.Connection) -> None:
    """Put every record above the watermark into the indexes, and move the watermark.

    The caller holds this process's writer locks and ``db`` is not in a transaction. Best
    effort: a failure leaves the rows where they were (still found by queries, through the
    tail), and a later batch takes them.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error:
        return
    try:
        row = db.execute("SELECT value FROM meta WHERE name = ?", (_WATERMARK,)).fetchone()
        (top,) = db.execute("SELECT max(seq) FROM audit").fetchone()
        if row is not None and top is not None and top > int(row[0]):
            db.execute(
                "UPDATE audit SET indexed = 1 WHERE seq > ? AND seq <= ?", (int(row[0]), top)
            )
            db.execute("UPDATE meta SET value = ? WHERE name = ?", (str(top), _WATERMARK))
        db.execute("COMMIT")
    except sqlite3.Error:
        if db.in_transaction:
            db.execute("ROLLBACK")


def _select(since: bool, key: bool) -> str:
    # seq is selected because a compound SELECT can only be ordered by its result columns.
    fields = f"seq, {AUDIT_FIELDS}"
    filters = (" AND time >= :since" if since else "") + (" AND key_arn = :key" if key else "")
    # Oldest first, by time and then seq: the order of audit_by_time (time, rowid) and of
    # audit_by_key (key_arn, time, rowid), so the first branch reads its rows from an index
    # in order and stops at the limit. The first branch names `indexed = 1` so that SQLite may
    # use the partial indexes.
    return (
        f"SELECT {fields} FROM audit WHERE indexed = 1{filters} "  # noqa: S608 - constants
        f"UNION ALL SELECT {fields} FROM audit WHERE seq > "
        f"COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE name = '{_WATERMARK}'), 0) "
        f"AND indexed = 0{filters} ORDER BY time, seq LIMIT :limit"
    )


_SELECTS = {(since, key): _select(since, key) for since in (False, True) for key in (False, True)}


def audit_query(*, since: bool, key: bool) -> str:
    """The SELECT for ``query_audit``: ``seq`` then :data:`AUDIT_FIELDS` of matching rows.

    Named parameters: ``:since`` (if ``since``), ``:key`` (if ``key``) and ``:limit``.
    """
    return _SELECTS[since, key]
