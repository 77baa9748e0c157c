"""Audit records in the SQLite store (a mixin of :class:`~enclave_kms.store.sqlite.SqliteStore`).

Records go through the store's second connection, ``synchronous=NORMAL``: in WAL mode a
commit there survives a process crash, but the last few records may be lost on power loss or
an OS crash (see :mod:`enclave_kms.store.sqlite`).

``append_audit_guarded`` lets the service decide a cryptographic call on a cached key record
and check it in the audit statement itself (see :mod:`enclave_kms._service_context`): one
autocommit ``INSERT ... SELECT ... WHERE EXISTS``. SQLite runs a write statement in a write
transaction taken before it reads anything, so the check and the insert see the latest
committed state of the file with every other writer (any process) shut out until it commits:
a key change either committed before (nothing is written, the call runs again) or commits
after the record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from enclave_kms.audit import AuditRecord, json_array
from enclave_kms.store._interface import KeyRecord
from enclave_kms.store._sqlite_audit_index import AUDIT_FIELDS, audit_query
from enclave_kms.store._sqlite_base import SqliteBase
from enclave_kms.store._sqlite_rows import dt_req, ts

__all__ = ["SqliteAudit"]

# indexed = 0: the record enters the audit indexes with the next batch (_sqlite_audit_index).
_INSERT_INTO_AUDIT = f"INSERT INTO audit ({AUDIT_FIELDS}, indexed) "
_AUDIT_INSERT = _INSERT_INTO_AUDIT + "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)"
_AUDIT_INSERT_GUARDED = _INSERT_INTO_AUDIT + "SELECT ?,?,?,?,?,?,?,?,?,?,?,?,?,?,0 WHERE "
# The key's state, policy and current version: what a cryptographic decision rests on.
_KEY_UNCHANGED = (
    "EXISTS (SELECT 1 FROM keys WHERE key_id=? AND key_state=? AND current_version=? AND policy=?)"
)


def _audit_params(record: AuditRecord) -> tuple[object, ...]:
    return (
        ts(record.time), record.operation, record.outcome, record.principal_arn,
        record.caller_account, record.key_arn, record.access_key_id,
        json_array(record.encryption_context_keys),
        record.attestation_module_id, record.attestation_image_digest,
        json_array(record.attestation_pcrs), record.deny_reason,
        int(record.dry_run), record.source_ip,
    )  # fmt: skip


class SqliteAudit(SqliteBase):
    """``append_audit`` and ``query_audit``."""

    def append_audit(self, record: AuditRecord) -> None:
        """Append an audit record (on the ``synchronous=NORMAL`` connection)."""
        self._execute_alone(self._audit_db, _AUDIT_INSERT, _audit_params(record))

    def append_audit_guarded(self, record: AuditRecord, keys: Sequence[KeyRecord]) -> bool:
        """Append ``record`` only if every key in ``keys`` is still exactly as given.

        One statement (see the module docstring): a key that was disabled, scheduled for
        deletion, deleted, rotated or given another policy since the record was read makes
        this write nothing.

        Returns:
            Whether the record was written.
        """
        if not keys:
            self.append_audit(record)
            return True
        sql = _AUDIT_INSERT_GUARDED + " AND ".join([_KEY_UNCHANGED] * len(keys))
        params: list[object] = list(_audit_params(record))
        for key in keys:
            params += [key.key_id, key.key_state, key.current_version, key.policy]
        return self._execute_alone(self._audit_db, sql, tuple(params)) == 1

    def query_audit(
        self, *, since: datetime | None, key_arn: str | None, limit: int
    ) -> Sequence[AuditRecord]:
        """Return up to ``limit`` audit records, oldest first (by time, then as written)."""
        sql = audit_query(since=since is not None, key=key_arn is not None)
        args: dict[str, object] = {"limit": limit}
        if since is not None:
            args["since"] = ts(since)
        if key_arn is not None:
            args["key"] = key_arn
        rows = self._read(lambda db: db.execute(sql, args).fetchall())
        return [
            AuditRecord(
                time=dt_req(r[1]),
                operation=r[2],
                outcome=r[3],
                principal_arn=r[4],
                caller_account=r[5],
                key_arn=r[6],
                access_key_id=r[7],
                encryption_context_keys=tuple(json.loads(r[8])),
                attestation_module_id=r[9],
                attestation_image_digest=r[10],
                attestation_pcrs=tuple(json.loads(r[11])),
                deny_reason=r[12],
                dry_run=bool(r[13]),
                source_ip=r[14],
            )
            for r in rows
        ]
