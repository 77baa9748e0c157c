"""Audit rows in PostgreSQL: the insert statements, and the server's batching writer.

:class:`PgAuditBatcher` is the group commit of :mod:`._audit_batch` on a connection of its
own: whatever queued while one batch was in flight goes in the next round trip. Without it,
a one-worker server held its event loop for one insert round trip per request.

A batch is one statement (:func:`batch_insert`, the records as one JSON array), so it is
kept whole or not at all. When the database (or the driver) refuses one record, none of its
batch is kept; each is then written on its own, and only that one fails.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import psycopg

from enclave_kms.audit import AuditRecord, json_array
from enclave_kms.store._audit_batch import AsyncAuditBatcher, AuditWrite, Outcome
from enclave_kms.store._interface import KeyRecord, StoreError
from enclave_kms.store._pg_rows import convert_error

__all__ = [
    "AUDIT_INSERT",
    "PgAuditBatcher",
    "audit_params",
    "batch_insert",
    "batch_rows",
    "guarded_insert",
]

_AsyncConn = psycopg.AsyncConnection[Any]

# The audit columns in the order of audit_params, with their types (for batch_insert).
_COLUMN_TYPES = (
    ("time", "timestamptz"), ("operation", "text"), ("outcome", "text"),
    ("principal_arn", "text"), ("caller_account", "text"), ("key_arn", "text"),
    ("access_key_id", "text"), ("ec_keys", "jsonb"), ("att_module_id", "text"),
    ("att_image_digest", "text"), ("att_pcrs", "jsonb"), ("deny_reason", "text"),
    ("dry_run", "bool"), ("source_ip", "text"),
)  # fmt: skip
_COLUMNS = ", ".join(name for name, _ in _COLUMN_TYPES)
_VALUES = "%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s::jsonb, %s, %s, %s"
AUDIT_INSERT = f"INSERT INTO audit ({_COLUMNS}) VALUES ({_VALUES})"  # noqa: S608 - constants
# What a cryptographic decision rests on: the key's state, current version and policy.
_GUARD_COLUMNS = (("key_id", "text"), ("key_state", "text"), ("current_version", "int"),
                  ("policy", "text"))  # fmt: skip


def _key_unchanged(value: str) -> str:
    """The check that a key is as given; ``value`` spells where each column's value comes from
    (``{c}`` is the column's name)."""
    same = " AND ".join(f"{c} = {value.format(c=c)}" for c, _ in _GUARD_COLUMNS)
    return f"EXISTS (SELECT 1 FROM keys WHERE {same})"  # noqa: S608 - names made here


_KEY_UNCHANGED = _key_unchanged("%s")


@functools.cache
def guarded_insert(guards: int) -> str:
    """The insert that writes a row only if ``guards`` keys are each as given."""
    checks = " AND ".join([_KEY_UNCHANGED] * guards) or "true"
    return f"INSERT INTO audit ({_COLUMNS}) SELECT {_VALUES} WHERE {checks}"


@functools.cache
def batch_insert(guards: int) -> str:
    """One statement that inserts many records, each only if its ``guards`` keys are as given.

    Its one parameter is :func:`batch_rows`. It answers the 1-based position of each record
    it wrote. (A JSON array of records costs the driver one string, where one array per
    column costs it a dump of each, and PostgreSQL about the same.)
    """
    columns = [
        *_COLUMN_TYPES,
        *((f"g{j}_{c}", t) for j in range(guards) for c, t in _GUARD_COLUMNS),
        ("n", "int"),
    ]
    # Names and types are made here; every value is in the parameter.
    rows = f"jsonb_to_recordset(%s::jsonb) AS r({', '.join(f'{c} {t}' for c, t in columns)})"
    checks = " AND ".join(_key_unchanged(f"r.g{j}_{{c}}") for j in range(guards))
    ok = f"SELECT * FROM {rows} WHERE {checks or 'true'}"  # noqa: S608
    insert = f"INSERT INTO audit ({_COLUMNS}) SELECT {_COLUMNS} FROM ok ORDER BY n"  # noqa: S608
    # "ok" is evaluated once: the rows inserted are exactly the positions answered.
    return f"WITH ok AS ({ok}), written AS ({insert}) SELECT n FROM ok"  # noqa: S608


def batch_rows(writes: Sequence[AuditWrite]) -> str:
    """The parameter of :func:`batch_insert`: the records (and guards) as a JSON array."""
    rows = []
    for n, (record, guards) in enumerate(writes, start=1):
        row: dict[str, object] = {
            "time": record.time.isoformat(),
            "operation": record.operation,
            "outcome": record.outcome,
            "principal_arn": record.principal_arn,
            "caller_account": record.caller_account,
            "key_arn": record.key_arn,
            "access_key_id": record.access_key_id,
            "ec_keys": record.encryption_context_keys,
            "att_module_id": record.attestation_module_id,
            "att_image_digest": record.attestation_image_digest,
            "att_pcrs": record.attestation_pcrs,
            "deny_reason": record.deny_reason,
            "dry_run": bool(record.dry_run),
            "source_ip": record.source_ip,
            "n": n,
        }
        for j, key in enumerate(guards):
            row[f"g{j}_key_id"] = key.key_id
            row[f"g{j}_key_state"] = key.key_state
            row[f"g{j}_current_version"] = key.current_version
            row[f"g{j}_policy"] = key.policy
        rows.append(row)
    return json.dumps(rows)


def audit_params(record: AuditRecord, guards: Sequence[KeyRecord] = ()) -> list[object]:
    """The parameters of :data:`AUDIT_INSERT`, then of each guard (``guarded_insert``)."""
    params: list[object] = [
        record.time, record.operation, record.outcome, record.principal_arn,
        record.caller_account, record.key_arn, record.access_key_id,
        json_array(record.encryption_context_keys),
        record.attestation_module_id, record.attestation_image_digest,
        json_array(record.attestation_pcrs), record.deny_reason, bool(record.dry_run),
        record.source_ip,
    ]  # fmt: skip
    for key in guards:
        params += [key.key_id, key.key_state, key.current_version, key.policy]
    return params


class PgAuditBatcher(AsyncAuditBatcher):
    """Group commit on PostgreSQL: one connection of its own, one statement per batch.

    Args:
        url: the database URL (the same one the store's pool uses).
        session_settings: ``(sql, params)`` that configures a new session as the pool does.
        where: the database as error messages name it (no password).
        connect_timeout: seconds allowed to (re)connect.
    """

    def __init__(
        self,
        url: str,
        *,
        session_settings: tuple[str, Sequence[object]],
        where: str,
        connect_timeout: float,
    ) -> None:
        super().__init__(where=where)
        self._url = url
        self._session = session_settings
        self._connect_timeout = max(1, round(connect_timeout))
        self._conn: _AsyncConn | None = None

    async def aclose(self) -> None:
        """Finish the queued writes, then close the connection."""
        await super().aclose()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _store_error(self, exc: Exception) -> StoreError:
        if isinstance(exc, psycopg.Error):
            return convert_error(exc, self._where)
        if isinstance(exc, OSError):
            return StoreError(f"cannot write to {self._where}: {exc.strerror}")
        return super()._store_error(exc)

    async def _connection(self) -> _AsyncConn:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self._conn = None
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=self._connect_timeout
        )
        sql, params = self._session
        await conn.execute(sql, params)
        self._conn = conn
        return conn

    async def _write_batch(self, writes: list[AuditWrite]) -> list[Outcome]:
        conn = await self._connection()
        outcomes: list[Outcome] = [False] * len(writes)
        groups: dict[int, list[int]] = {}
        for i, (_, guards) in enumerate(writes):  # one statement per number of guards
            groups.setdefault(len(guards), []).append(i)
        for indices in groups.values():  # almost always one
            written = await self._write_group(conn, [writes[i] for i in indices])
            for i, outcome in zip(indices, written, strict=True):
                outcomes[i] = outcome
        return outcomes

    async def _write_group(self, conn: _AsyncConn, group: list[AuditWrite]) -> list[Outcome]:
        try:
            return list(await _insert(conn, group))
        except (psycopg.Error, ValueError) as exc:  # ValueError: a str the driver cannot encode
            if conn.broken or conn.closed:
                raise  # unknown whether it was committed: the whole batch fails
            if len(group) == 1:
                return [self._store_error(exc)]
        # One statement: the database kept none of it. Write each record on its own, so that
        # only the one it refuses fails.
        outcomes: list[Outcome] = []
        for write in group:
            outcomes += await self._write_group(conn, [write])
        return outcomes


async def _insert(conn: _AsyncConn, writes: Sequence[AuditWrite]) -> list[bool]:
    """Insert ``writes`` (each with the same number of guards) in one statement."""
    if len(writes) == 1:
        record, guards = writes[0]
        query = guarded_insert(len(guards)) if guards else AUDIT_INSERT
        cur = await conn.execute(query, audit_params(record, guards))
        return [cur.rowcount == 1]
    cur = await conn.execute(batch_insert(len(writes[0][1])), (batch_rows(writes),))
    written = {int(n) for (n,) in await cur.fetchall()}
    return [i in written for i in range(1, len(writes) + 1)]
