"""The SQLite store's audit indexes are brought up to date in batches (schema version 4).

A record is written outside the indexes and enters them with the next batch; queries must see
every record exactly once either way, and the planner must still be able to use the indexes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_versions import V3_AUDIT, rewind

from enclave_kms._rootkey import RootKey
from enclave_kms.audit import AuditRecord
from enclave_kms.store import _sqlite_audit
from enclave_kms.store._sqlite_audit_index import audit_query
from enclave_kms.store.sqlite import SqliteStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEYS = [f"arn:aws:kms:us-east-1:111122223333:key/k{i}" for i in range(3)]
BATCH = 7


def record(minute: int, key_arn: str | None, operation: str = "Decrypt") -> AuditRecord:
    return AuditRecord(
        time=T0 + timedelta(minutes=minute),
        operation=operation,
        outcome="success",
        principal_arn="arn:aws:iam::111122223333:root",
        caller_account="111122223333",
        key_arn=key_arn,
    )


def watermark(store: SqliteStore) -> int:
    row = store._db.execute("SELECT value FROM meta WHERE name='audit_indexed_through'").fetchone()
    return int(row[0])


def in_index(store: SqliteStore, index: str) -> int:
    sql = f"SELECT count(*) FROM audit INDEXED BY {index} WHERE indexed = 1"  # noqa: S608
    return int(store._db.execute(sql).fetchone()[0])


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sqlite_audit, "_WAL_CHECK_EVERY", BATCH)


@pytest.mark.usefixtures("small_batches")
def test_a_record_enters_the_indexes_with_the_next_batch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))
    for i in range(BATCH - 1):
        store.append_audit(record(i, KEYS[0]))
    # Written and queryable, but in no index yet.
    assert watermark(store) == 0
    assert in_index(store, "audit_by_time") == in_index(store, "audit_by_key") == 0
    assert len(store.query_audit(since=T0, key_arn=KEYS[0], limit=100)) == BATCH - 1
    store.append_audit(record(BATCH, KEYS[0]))  # the write that crosses the count
    assert watermark(store) == BATCH
    assert in_index(store, "audit_by_time") == in_index(store, "audit_by_key") == BATCH
    store.close()


@pytest.mark.usefixtures("small_batches")
def test_a_group_commit_counts_each_of_its_records_towards_the_next_batch(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))
    store.append_audits([(record(i, KEYS[1]), ()) for i in range(BATCH - 2)])
    assert watermark(store) == 0
    store.append_audits([(record(i, KEYS[1]), ()) for i in range(2)])  # crosses the count
    assert watermark(store) == BATCH
    assert in_index(store, "audit_by_key") == BATCH
    store.close()


@pytest.mark.usefixtures("small_batches")
def test_queries_see_every_record_once_on_both_sides_of_the_watermark(tmp_path: Path) -> None:
    # Two stores on one file stand for two worker processes: each counts its own writes.
    path = tmp_path / "s.db"
    first, second = (SqliteStore(path, RootKey(bytes(32))) for _ in range(2))
    rng = random.Random(7)
    written: list[tuple[int, str | None, str]] = []
    straddled = 0
    for n in range(60):
        # Times out of seq order, as clocks and lock waits make them; some keyless records.
        minute, key_arn = rng.randrange(40), rng.choice([*KEYS, None])
        operation = f"Op{n}"
        rng.choice([first, second]).append_audit(record(minute, key_arn, operation))
        written.append((minute, key_arn, operation))
        top = len(written)
        if 0 < watermark(first) < top:
            straddled += 1
        for since in (None, rng.randrange(40)):
            for wanted_key in (None, rng.choice(KEYS)):
                limit = rng.choice([3, 10, 100])
                matching = [
                    (m, op)
                    for m, k, op in written
                    if (since is None or m >= since) and (wanted_key is None or k == wanted_key)
                ]
                # Oldest first: by time, then in the order written (a stable sort keeps it).
                expected = [op for _, op in sorted(matching, key=lambda pair: pair[0])][:limit]
                since_at = None if since is None else T0 + timedelta(minutes=since)
                for store in (first, second):
                    got = store.query_audit(since=since_at, key_arn=wanted_key, limit=limit)
                    assert [r.operation for r in got] == expected
    # The loop really ran with records on both sides of the watermark.
    assert straddled > 30
    assert watermark(first) > 0
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("since", "key", "index"),
    [
        (False, False, "audit_by_time"),
        (True, False, "audit_by_time (time>?)"),
        (False, True, "audit_by_key (key_arn=?)"),
        (True, True, "audit_by_key (key_arn=? AND time>?)"),
    ],
)
def test_queries_read_the_indexed_part_from_an_index_in_order(
    tmp_path: Path, since: bool, key: bool, index: str
) -> None:
    # Read in (time, seq) order straight from the index, the first branch needs no sort and
    # stops at the limit: a recent --since on a large table does not scan it.
    store = SqliteStore(tmp_path / "s.db", RootKey(bytes(32)))
    sql = audit_query(since=since, key=key)
    args = {"since": 0, "key": "k", "limit": 10}
    steps = [r[3] for r in store._db.execute("EXPLAIN QUERY PLAN " + sql, args)]
    first_branch = steps[steps.index("LEFT") + 1]
    assert first_branch in (f"SCAN audit USING INDEX {index}", f"SEARCH audit USING INDEX {index}")
    assert "SEARCH audit USING INTEGER PRIMARY KEY (rowid>?)" in steps  # the tail, by seq
    store.close()


def test_a_version_3_file_is_upgraded_keeping_its_records_indexed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path, RootKey(bytes(32)))
    for i in range(5):
        store.append_audit(record(i, KEYS[i % 2]))
    store.close()
    rewind(path, 3, V3_AUDIT)

    upgraded = SqliteStore(path, RootKey(bytes(32)))
    version = upgraded._db.execute("SELECT value FROM meta WHERE name='schema_version'")
    assert version.fetchone() == ("5",)
    assert watermark(upgraded) == 5
    assert in_index(upgraded, "audit_by_key") == 5
    upgraded.append_audit(record(9, KEYS[0]))  # above the watermark, outside the indexes
    got = upgraded.query_audit(since=T0 + timedelta(minutes=2), key_arn=KEYS[0], limit=10)
    assert [r.time for r in got] == [T0 + timedelta(minutes=m) for m in (2, 4, 9)]
    upgraded.close()
