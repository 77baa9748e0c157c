"""The stores' asynchronous audit writers (group commit): batches, guards, refusals, failures.

Requests run as asyncio tasks on one event loop, as in the server; every record goes through
the store's ``audit_batcher()`` and is read back with ``query_audit``. Both stores, then what
only PostgreSQL has (its own connection: lost, unreachable, configured).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from store_backends import Backend
from store_records import key_id, make_audit, make_key, make_material, secret_for

from enclave_kms.audit import AuditRecord
from enclave_kms.store import KeyRecord, StoreError
from enclave_kms.store._audit_batch import AsyncAuditBatcher, AuditBatcher, InProcessAuditBatcher
from enclave_kms.store._pg_audit import PgAuditBatcher
from enclave_kms.store.postgres import PostgresStore

_T = TypeVar("_T")


@pytest.fixture
def store(backend: Backend) -> Any:
    """A store on fresh storage holding keys 1 and 2."""
    opened = backend.open()
    for n in (1, 2):
        opened.create_key(make_key(n), make_material(n), secret_for(n), [])
    return opened


@pytest.fixture
def pg_store(pg_url: str) -> Any:
    from store_backends import ROOT_KEY_BYTES

    from enclave_kms._rootkey import RootKey
    from enclave_kms.store.postgres import open_store

    opened = open_store(pg_url, RootKey(ROOT_KEY_BYTES))
    yield opened
    opened.close()


def _run(store: Any, body: Callable[[AuditBatcher], Awaitable[_T]]) -> _T:
    """Run ``body`` with a fresh batcher on a fresh event loop, closing the batcher after."""

    async def main() -> _T:
        batcher = store.audit_batcher()
        try:
            return await body(batcher)
        finally:
            await batcher.aclose()

    return asyncio.run(main())


def _key(store: Any, n: int) -> KeyRecord:
    key = store.get_key(key_id(n))
    assert key is not None
    return key


def _stored(store: Any) -> list[AuditRecord]:
    return list(store.query_audit(since=None, key_arn=None, limit=1000))


def _before_each_batch(batcher: AuditBatcher, before: Callable[[list[Any]], None]) -> None:
    """Call ``before(writes)`` ahead of every batch ``batcher`` writes (it may raise)."""
    if isinstance(batcher, InProcessAuditBatcher):
        write_now = batcher._write_batch_now

        def now(writes: list[Any], *, wait: bool) -> list[Any] | None:
            before(writes)
            return write_now(writes, wait=wait)

        batcher._write_batch_now = now  # type: ignore[method-assign]
    else:
        assert isinstance(batcher, AsyncAuditBatcher)
        write_later = batcher._write_batch

        async def later(writes: list[Any]) -> list[Any]:
            before(writes)
            return await write_later(writes)

        batcher._write_batch = later  # type: ignore[method-assign]


# --- both stores ------------------------------------------------------------------------------


def test_records_written_concurrently_share_one_batch_and_all_arrive(store: Any) -> None:
    records = [make_audit(i, f"arn:{i}") for i in range(40)]
    sizes: list[int] = []

    async def body(batcher: AuditBatcher) -> list[list[bool]]:
        _before_each_batch(batcher, lambda writes: sizes.append(len(writes)))
        return await asyncio.gather(*(batcher.write([(r, ())]) for r in records))

    assert _run(store, body) == [[True]] * 40
    assert sorted(_stored(store), key=lambda r: r.time) == records
    # All 40 queued before the writer ran: one batch (one transaction, one round trip).
    assert sizes == [40]


def test_what_queues_while_a_batch_is_written_goes_in_the_next(store: Any) -> None:
    sizes: list[int] = []

    async def body(batcher: AuditBatcher) -> list[list[bool]]:
        _before_each_batch(batcher, lambda writes: sizes.append(len(writes)))
        first = asyncio.ensure_future(batcher.write([(make_audit(0), ())]))
        await asyncio.sleep(0)  # the batcher takes the first record alone
        later = [batcher.write([(make_audit(i), ())]) for i in range(1, 6)]
        return await asyncio.gather(first, *later)

    assert _run(store, body) == [[True]] * 6
    assert sizes == [1, 5]
    assert len(_stored(store)) == 6


def test_a_guarded_record_is_written_only_while_its_keys_are_unchanged(store: Any) -> None:
    one, two = _key(store, 1), _key(store, 2)
    store.update_key(key_id(2), {"key_state": "Disabled"})
    writes: list[tuple[AuditRecord, tuple[KeyRecord, ...]]] = [
        (make_audit(0, "unguarded"), ()),
        (make_audit(1, "key 1 unchanged"), (one,)),
        (make_audit(2, "key 2 disabled since"), (two,)),
        (make_audit(3, "both keys"), (one, two)),
        (make_audit(4, "key 1 twice"), (one, one)),
        (make_audit(5, "key 1 with an old policy"), (replace(one, policy="{}"),)),
        (make_audit(6, "key 1 at another version"), (replace(one, current_version=2),)),
    ]

    async def body(batcher: AuditBatcher) -> list[list[bool]]:
        # One batch holding rows with 0, 1 and 2 guards: one result each.
        return await asyncio.gather(*(batcher.write([w]) for w in writes))

    outcomes = [written for [written] in _run(store, body)]
    assert outcomes == [True, True, False, False, True, False, False]
    assert [r.key_arn for r in _stored(store)] == ["unguarded", "key 1 unchanged", "key 1 twice"]


def test_several_records_from_one_request_come_back_in_order(store: Any) -> None:
    one = _key(store, 1)
    stale = replace(one, key_state="Disabled")
    writes = [
        (make_audit(0, "a"), (one,)),
        (make_audit(1, "b"), (stale,)),
        (make_audit(2, "c"), ()),
    ]
    assert _run(store, lambda batcher: batcher.write(writes)) == [True, False, True]


def test_a_string_that_is_not_text_fails_its_record_alone(store: Any) -> None:
    # A lone surrogate (JSON allows "\udc80") cannot be encoded as UTF-8 by either driver.
    bad = make_audit(1, "bad", principal_arn="arn:aws:iam::111122223333:role/\udc80")
    good = [make_audit(i, f"good {i}") for i in (0, 2, 3)]

    async def body(batcher: AuditBatcher) -> list[list[bool] | BaseException]:
        return await asyncio.gather(
            *(batcher.write([(r, ())]) for r in (good[0], bad, *good[1:])),
            return_exceptions=True,
        )

    outcomes = _run(store, body)
    assert outcomes[0] == outcomes[2] == outcomes[3] == [True]
    assert isinstance(outcomes[1], StoreError)
    assert "\udc80" not in str(outcomes[1])
    # Written exactly once each, though the batch they were in failed as a whole first.
    assert sorted(r.key_arn or "" for r in _stored(store)) == ["good 0", "good 2", "good 3"]


def test_an_unexpected_failure_fails_the_waiting_writes_instead_of_hanging_them(
    store: Any,
) -> None:
    async def body(batcher: AuditBatcher) -> list[Any]:
        def broken(writes: Any) -> None:
            raise RuntimeError("a bug, quoting arn:secret-looking-detail")

        _before_each_batch(batcher, broken)
        writes = (batcher.write([(make_audit(i), ())]) for i in range(3))
        async with asyncio.timeout(10):
            return await asyncio.gather(*writes, return_exceptions=True)

    outcomes = _run(store, body)
    assert all(isinstance(o, StoreError) for o in outcomes), outcomes
    assert all("RuntimeError" in str(o) and "secret" not in str(o) for o in outcomes)
    assert _stored(store) == []


# --- PostgreSQL: the writer's own connection ------------------------------------------------


def _backend_pids(store: PostgresStore) -> set[int]:
    """Every other session's backend pid (the batcher's among them)."""
    with store._pool.connection() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return {int(pid) for (pid,) in rows}


@pytest.mark.interop
def test_postgresql_refuses_nul_in_one_record_and_keeps_the_rest(pg_store: Any) -> None:
    bad = make_audit(1, "bad", principal_arn="arn:aws:iam::111122223333:role/\x00")

    async def body(batcher: AuditBatcher) -> list[list[bool] | BaseException]:
        writes = (make_audit(0, "good 0"), bad, make_audit(2, "good 2"))
        return await asyncio.gather(
            *(batcher.write([(r, ())]) for r in writes), return_exceptions=True
        )

    outcomes = _run(pg_store, body)
    assert outcomes[0] == outcomes[2] == [True]
    assert isinstance(outcomes[1], StoreError) and "\x00" not in str(outcomes[1])
    assert sorted(r.key_arn or "" for r in _stored(pg_store)) == ["good 0", "good 2"]


@pytest.mark.interop
def test_a_lost_connection_fails_the_writes_in_flight_then_reconnects(pg_store: Any) -> None:
    before = _backend_pids(pg_store)

    async def body(batcher: AuditBatcher) -> tuple[Any, list[bool]]:
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


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
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


@pytest.mark.interop
def test_the_batcher_session_has_the_pools_settings(pg_store: Any) -> None:
    async def body(batcher: Any) -> tuple[Any, ...]:
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


# --- SQLite: another process holds the writer lock ------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Any]:
    from store_backends import ROOT_KEY_BYTES

    from enclave_kms._rootkey import RootKey
    from enclave_kms.store.sqlite import SqliteStore

    opened = SqliteStore(tmp_path / "store.sqlite3", RootKey(ROOT_KEY_BYTES))
    yield opened
    opened.close()


@contextmanager
def _writer_lock_held_elsewhere(store: Any) -> Iterator[None]:
    """Hold the store's cross-process writer lock through a file description of our own."""
    fd = os.open(f"{store.path}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def test_a_batch_that_may_not_wait_writes_nothing_while_another_writer_holds_the_store(
    sqlite_store: Any,
) -> None:
    writes = [(make_audit(i), ()) for i in range(3)]
    with _writer_lock_held_elsewhere(sqlite_store):
        assert sqlite_store.append_audits(writes, wait=False) is None
        assert sqlite_store.append_audits(writes[:1], wait=False) is None
        assert _stored(sqlite_store) == []
    assert sqlite_store.append_audits(writes, wait=False) == [True] * 3


def test_the_event_loop_serves_on_while_the_writer_lock_is_busy(sqlite_store: Any) -> None:
    sizes: list[int] = []

    async def body(batcher: AuditBatcher) -> tuple[list[bool], int]:
        _before_each_batch(batcher, lambda writes: sizes.append(len(writes)))
        with _writer_lock_held_elsewhere(sqlite_store):
            first = asyncio.ensure_future(batcher.write([(make_audit(0), ())]))
            turns = 0
            for _ in range(5):  # the loop keeps turning; the batch is put off each time
                await asyncio.sleep(0)
                turns += 1
            later = asyncio.ensure_future(batcher.write([(make_audit(1), ())]))
            await asyncio.sleep(0)
            assert not first.done() and not later.done()
        # Released: the batch, grown by the later record, is written on the next try.
        return [*await first, *await later], turns

    written, turns = _run(sqlite_store, body)
    assert (written, turns) == ([True, True], 5)
    assert sizes[-1] == 2 and len(_stored(sqlite_store)) == 2


def test_a_batch_put_off_too_long_waits_for_the_lock(sqlite_store: Any) -> None:
    # The other writer lets go from another thread, well after the batch stops being put off:
    # by then this loop's thread waits in flock for it.
    fd = os.open(f"{sqlite_store.path}.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    timer = threading.Timer(0.2, os.close, (fd,))
    tries: list[bool] = []  # the ``wait`` of each try

    async def body(batcher: Any) -> list[bool]:
        write_now = batcher._write_batch_now

        def counted(writes: Any, *, wait: bool) -> Any:
            tries.append(wait)
            return write_now(writes, wait=wait)

        batcher._write_batch_now = counted
        return await batcher.write([(make_audit(0), ())])

    timer.start()
    try:
        assert _run(sqlite_store, body) == [True]
    finally:
        timer.join()
    assert len(_stored(sqlite_store)) == 1
    # Put off a few times, then one try that waited (not a spin until the lock came free).
    assert tries[-1] is True and tries.count(True) == 1 and tries.count(False) >= 1
