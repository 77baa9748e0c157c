"""Aliases in the SQLite store (a mixin of :class:`~enclave_kms.store.sqlite.SqliteStore`).

Each alias row is sealed with a MAC under the root key (:mod:`enclave_kms.store._integrity`),
so an alias pointed at another key in the file itself is refused when it is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from enclave_kms.store._integrity import ALIAS_RECORD, check_alias_row, seal_record
from enclave_kms.store._interface import AliasRecord, RecordNotFoundError
from enclave_kms.store._sqlite_base import SqliteBase
from enclave_kms.store._sqlite_rows import ALIAS_SELECT, dt_req, ts

__all__ = ["SqliteAliases"]


class SqliteAliases(SqliteBase):
    """``create_alias`` … ``list_aliases``."""

    def _checked_alias(self, row: Sequence[object]) -> AliasRecord:
        check_alias_row(self._root, row)
        return AliasRecord(str(row[0]), str(row[1]), dt_req(row[2]), dt_req(row[3]))  # type: ignore[arg-type]

    def create_alias(self, alias: AliasRecord) -> None:
        """Insert an alias.

        Raises:
            DuplicateError: the name exists.
            RecordNotFoundError: the target key does not exist.
        """
        with self._write() as db:
            self._require_key(db, alias.target_key_id)
            row = (
                alias.alias_name,
                alias.target_key_id,
                ts(alias.creation_date),
                ts(alias.last_updated_date),
            )
            db.execute(
                "INSERT INTO aliases VALUES (?,?,?,?,?)",
                (*row, seal_record(self._root, ALIAS_RECORD, row)),
            )
            self._touch(db)

    def get_alias(self, alias_name: str) -> AliasRecord | None:
        """Return the alias, or ``None``.

        Raises:
            RecordIntegrityError: the row was changed outside the store.
        """
        row = self._read(
            lambda db: db.execute(ALIAS_SELECT + " WHERE alias_name=?", (alias_name,)).fetchone()
        )
        return None if row is None else self._checked_alias(row)

    def update_alias(self, alias_name: str, target_key_id: str, now: datetime) -> None:
        """Point an alias at another key.

        Raises:
            RecordNotFoundError: no such alias, or no such target key.
        """
        with self._write() as db:
            self._require_key(db, target_key_id)
            old = db.execute(ALIAS_SELECT + " WHERE alias_name=?", (alias_name,)).fetchone()
            if old is None:
                raise RecordNotFoundError(f"alias {alias_name} does not exist")
            self._checked_alias(old)
            row = (alias_name, target_key_id, old[2], ts(now))
            db.execute(
                "UPDATE aliases SET target_key_id=?, last_updated=?, mac=? WHERE alias_name=?",
                (target_key_id, ts(now), seal_record(self._root, ALIAS_RECORD, row), alias_name),
            )
            self._touch(db)

    def delete_alias(self, alias_name: str) -> None:
        """Delete an alias; raises ``RecordNotFoundError``."""
        with self._write() as db:
            cur = db.execute("DELETE FROM aliases WHERE alias_name=?", (alias_name,))
            if cur.rowcount == 0:
                raise RecordNotFoundError(f"alias {alias_name} does not exist")
            self._touch(db)

    def list_aliases(
        self, *, target_key_id: str | None, after: str | None, limit: int
    ) -> Sequence[AliasRecord]:
        """Return up to ``limit`` aliases ordered by name, optionally only one key's."""
        sql = ALIAS_SELECT + " WHERE alias_name > ?"
        args: list[object] = [after or ""]
        if target_key_id is not None:
            sql += " AND target_key_id = ?"
            args.append(target_key_id)
        sql += " ORDER BY alias_name LIMIT ?"
        args.append(limit)
        rows = self._read(lambda db: db.execute(sql, args).fetchall())
        return [self._checked_alias(r) for r in rows]
