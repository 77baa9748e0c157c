"""The PostgreSQL store's asynchronous audit writer: group commit, guards, refusals, reconnects.

Requests run as asyncio tasks on one event loop, as in the server; every record goes through
``PostgresStore.audit_batcher()`` and is read back with ``query_audit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
import pytest
from store_records import key_id, make_audit, make_key, make_material, secret_for

from enclave_kms._rootkey import RootKey
from enclave_kms.audit import AuditRecord
from enclave_kms.store import KeyRecord, StoreError, _pg_audit
from enclave_kms.store._pg_audit import PgAuditBatcher
from enclave_kms.store.postgres import PostgresStore, open_store

pytestmark = pytest.mark.interop
_T = TypeVar("_T")


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[PostgresStore]:
    store = open_store(pg_url, RootKey(bytes(range(32))))
    for n in (1, 2):
        store.create_key(make_key(n), make_material(n), secret_for(n), [])
    yield store
    store.close()


def _run(store: PostgresStore, body: Callable[[PgAuditBatcher], Awaitable[_T]]) -> _T:
    """Run ``body`` with a fresh batcher on a fresh event loop, closing the batcher after."""

    async def main() -> _T:
        batcher = store.audit_batcher()
        try:
            return await body(batcher)
        finally:
            await batcher.aclose()

    return asyncio.run(main())


def _key(store: PostgresStore, n: int) -> KeyRecord:
    key = store.get_key(key_id(n))
    assert key is not None
    return key


def _stored(store: PostgresStore) -> list[AuditRecord]:
    return list(store.query_audit(since=None, key_arn=None, limit=1000))


def _backend_pids(store: PostgresStore) -> set[int]:
    """Every other session's backend pid (the batcher's among them)."""
    with store._pool.connection() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return {int(pid) for (pid,) in rows}


def test_records_written_concurrently_share_round_trips_and_all_arrive(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [make_audit(i, f"arn:{i}") for i in range(40)]
    round_trips: list[int] = []
    insert = _pg_audit._insert

    async def counted(conn: Any, writes: Any) -> list[bool]:
        round_trips.append(len(writes))
        return await insert(conn, writes)

    monkeypatch.setattr(_pg_audit, "_insert", counted)

    async def body(batcher: PgAuditBatcher) -> list[list[bool]]:
        return await asyncio.gather(*(batcher.write([(r, ())]) for r in records))

    assert _run(pg_store, body) == [[True]] * 40
    assert sorted(_stored(pg_store), key=lambda r: r.time) == records
    # All 40 queued before the writer ran: one statement, one round trip.
    assert round_trips == [40]


def test_a_guarded_record_is_written_only_while_its_keys_are_unchanged(
    pg_store: PostgresStore,
) -> None:
    one, two = _key(pg_store, 1), _key(pg_store, 2)
    pg_store.update_key(key_id(2), {"key_state": "Disabled"})
    writes: list[tuple[AuditRecord, tuple[KeyRecord, ...]]] = [
        (make_audit(0, "unguarded"), ()),
        (make_audit(1, "key 1 unchanged"), (one,)),
        (make_audit(2, "key 2 disabled since"), (two,)),
        (make_audit(3, "both keys"), (one, two)),
        (make_audit(4, "key 1 twice"), (one, one)),
        (make_audit(5, "key 1 with an old policy"), (replace(one, policy="{}"),)),
        (make_audit(6, "key 1 at another version"), (replace(one, current_version=2),)),
    ]

    async def body(batcher: PgAuditBatcher) -> list[list[bool]]:
        # One batch holding rows with 0, 1 and 2 guards: one transaction, one result each.
        return await asyncio.gather(*(batcher.write([w]) for w in writes))

    outcomes = [written for [written] in _run(pg_store, body)]
    assert outcomes == [True, True, False, False, True, False, False]
    assert [r.key_arn for r in _stored(pg_store)] == ["unguarded", "key 1 unchanged", "key 1 twice"]


@pytest.mark.parametrize(
    "unstorable",
    [
        "role/\x00",  # PostgreSQL text cannot hold NUL
        "role/\udc80",  # a lone surrogate is not UTF-8: the driver cannot send it
    ],
)
def test_a_refused_record_fails_alone_and_its_batch_is_written_once(
    pg_store: PostgresStore, unstorable: str
) -> None:
    bad = make_audit(1, "bad", principal_arn=f"arn:aws:iam::111122223333:{unstorable}")
    good = [make_audit(i, f"good {i}") for i in (0, 2, 3)]

    async def body(batcher: PgAuditBatcher) -> list[list[bool] | BaseException]:
        return await asyncio.gather(
            *(batcher.write([(r, ())]) for r in (good[0], bad, *good[1:])),
            return_exceptions=True,
        )

    outcomes = _run(pg_store, body)
    assert outcomes[0] == outcomes[2] == outcomes[3] == [True]
    assert isinstance(outcomes[1], StoreError)
    assert unstorable not in str(outcomes[1])
    assert sorted(r.key_arn or "" for r in _stored(pg_store)) == ["good 0", "good 2", "good 3"]


def test_a_lost_connection_fails_the_writes_in_flight_then_reconnects(
    pg_store: PostgresStore,
) -> None:
    before = _backend_pids(pg_store)

    async def body(batcher: PgAuditBatcher) -> tuple[Any, list[bool]]:
        assert await batcher.write([(make_audit(0, "before"), ())]) == [True]
        (batcher_pid,) = _backend_pids(pg_store) - before
        with pg_store._pool.connection() as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (batcher_pid,))
        lost = await asyncio.gather(
            batcher.write([(make_audit(1, "lost"), ())]), return_exceptions=True
        )
        return lost[0], await batcher.write([(make_audit(2, "after"), ())])

    lost, after = _run(pg_store, body)
    assert isinstance(lost, StoreError)
    assert after == [True]
    assert [r.key_arn for r in _stored(pg_store)] == ["before", "after"]


def test_an_unreachable_database_is_a_store_error_without_the_password(
    pg_store: PostgresStore,
) -> None:
    batcher = PgAuditBatcher(
        "postgresql://kms:hunter2-secret@127.0.0.1:1/nowhere",
        session_settings=("SELECT 1", ()),
        where="postgresql://127.0.0.1:1/nowhere",
        connect_timeout=2,
    )

    async def body() -> BaseException | list[bool]:
        (outcome,) = await asyncio.gather(
            batcher.write([(make_audit(0), ())]), return_exceptions=True
        )
        return outcome

    outcome = asyncio.run(body())
    assert isinstance(outcome, StoreError), outcome
    assert "hunter2" not in str(outcome)
    assert "hunter2" not in repr(batcher)


def test_the_batcher_session_has_the_pools_settings(pg_store: PostgresStore) -> None:
    async def body(batcher: PgAuditBatcher) -> tuple[Any, ...]:
        await batcher.write([(make_audit(0), ())])
        conn = batcher._conn
        assert isinstance(conn, psycopg.AsyncConnection)
        cur = await conn.execute(
            "SELECT current_setting('TimeZone'), current_setting('synchronous_commit'), "
            "current_setting('lock_timeout')"
        )
        row = await cur.fetchone()
        assert row is not None
        return tuple(row)

    assert _run(pg_store, body) == ("UTC", "off", "5s")


def test_an_unexpected_failure_fails_the_waiting_writes_instead_of_hanging_them(
    pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(conn: Any, writes: Any) -> list[bool]:
        raise RuntimeError("a bug, quoting arn:secret-looking-detail")

    monkeypatch.setattr(_pg_audit, "_insert", broken)

    async def body(batcher: PgAuditBatcher) -> list[Any]:
        writes = (batcher.write([(make_audit(i), ())]) for i in range(3))
        async with asyncio.timeout(10):
            return await asyncio.gather(*writes, return_exceptions=True)

    outcomes = _run(pg_store, body)
    assert all(isinstance(o, StoreError) for o in outcomes), outcomes
    assert all("RuntimeError" in str(o) and "secret" not in str(o) for o in outcomes)
