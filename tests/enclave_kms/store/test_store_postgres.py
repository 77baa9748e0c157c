"""PostgreSQL-only behaviour: schema revisions, migrations, change counter, locks, errors."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from pg_cluster import PgCluster
from store_records import (
    T0,
    key_id,
    make_alias,
    make_audit,
    make_key,
    make_material,
    secret_for,
)

from enclave_kms._rootkey import RootKey
from enclave_kms.store import (
    RecordIntegrityError,
    RecordNotFoundError,
    SchemaVersionError,
    StoreBusyError,
    StoreError,
    UnsealedRecordsError,
    _pg_cli,
    _pg_migrate,
    _pg_schema,
)
from enclave_kms.store._integrity import KEY_RECORD, seal_record
from enclave_kms.store._pg_rows import KEY_RECORD_COLUMNS
from enclave_kms.store.postgres import CHANGE_CHANNEL, PostgresStore, open_store

pytestmark = pytest.mark.interop
ROOT = RootKey(bytes(range(32)))


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[PostgresStore]:
    store = open_store(pg_url, ROOT)
    yield store
    store.close()


def _create(store: PostgresStore, n: int, **kw: object) -> None:
    store.create_key(make_key(n, **kw), make_material(n), secret_for(n), [])


def _wait_until_blocked(url: str, timeout: float = 20.0) -> None:
    """Wait until some session of the database waits on a lock held by another."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("no session started waiting for the lock")


# --- schema revisions and migrations ------------------------------------------------------


def test_known_revisions_match_the_alembic_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(_pg_migrate.MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    chain = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(chain) == _pg_schema.KNOWN_REVISIONS
    assert scripts.get_current_head() == _pg_schema.HEAD_REVISION


def test_unmigrated_database_asks_for_migrate(pg_empty_url: str) -> None:
    with pytest.raises(SchemaVersionError, match="run `enclave-kms migrate"):
        open_store(pg_empty_url, ROOT)


def test_downgraded_database_asks_for_migrate(pg_url: str) -> None:
    _pg_migrate.downgrade(pg_url, "base")
    with pytest.raises(SchemaVersionError, match="no enclave-kms schema; run `enclave-kms migrate"):
        open_store(pg_url, ROOT)


def test_older_revision_asks_for_migrate(pg_url: str) -> None:
    _pg_migrate.downgrade(pg_url, "0001_initial")
    with pytest.raises(SchemaVersionError, match="older schema revision 0001_initial; run"):
        open_store(pg_url, ROOT)


def test_audit_records_from_before_the_source_ip_read_back_without_one(pg_url: str) -> None:
    store = open_store(pg_url, ROOT)
    store.append_audit(make_audit(0, operation="Encrypt"))
    store.close()
    _pg_migrate.downgrade(pg_url, "0002_record_mac")  # the column and its values are dropped
    with pytest.raises(SchemaVersionError, match="older schema revision 0002_record_mac; run"):
        open_store(pg_url, ROOT)
    _pg_migrate.migrate(pg_url)
    upgraded = open_store(pg_url, ROOT)
    upgraded.append_audit(make_audit(1, operation="Decrypt", source_ip="2001:db8::1"))
    got = upgraded.query_audit(since=None, key_arn=None, limit=10)
    assert [(r.operation, r.source_ip) for r in got] == [
        ("Encrypt", None), ("Decrypt", "2001:db8::1"),
    ]  # fmt: skip
    upgraded.close()


def test_unknown_newer_revision_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0042_future'")
    with pytest.raises(SchemaVersionError, match="0042_future, which this build does not know"):
        open_store(pg_url, ROOT)


def test_migrate_is_idempotent_and_safe_to_run_from_several_processes(pg_empty_url: str) -> None:
    # Replicas are separate processes that may all run `enclave-kms migrate` at start-up.
    code = (
        "import os; from enclave_kms.store._pg_migrate import migrate; "
        "print(migrate(os.environ['URL']))"
    )
    env = {**os.environ, "URL": pg_empty_url}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [_pg_schema.HEAD_REVISION] * 3
    assert _pg_migrate.migrate(pg_empty_url) == _pg_schema.HEAD_REVISION
    open_store(pg_empty_url, ROOT).close()


def test_migrate_cli(pg_empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    _pg_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["migrate", "--store", pg_empty_url])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert _pg_schema.HEAD_REVISION in out
    assert "kms_test:" not in out  # the password (and user) never echoed
    open_store(pg_empty_url, ROOT).close()


def test_unreachable_database_errors_do_not_leak_the_password(pg_cluster: PgCluster) -> None:
    url = f"postgresql://kms_test:hunter2secret@127.0.0.1:{pg_cluster.port}/no_such_db"
    with pytest.raises(StoreError) as caught:
        open_store(url, ROOT, connect_timeout=2)
    assert "hunter2secret" not in str(caught.value)
    with pytest.raises(StoreError) as caught:
        _pg_migrate.migrate(url)
    assert "hunter2secret" not in str(caught.value)
    with pytest.raises(StoreError, match="postgresql://"):
        open_store("sqlite:///tmp/x", ROOT)


def test_repr_hides_credentials(pg_store: PostgresStore, pg_cluster: PgCluster) -> None:
    assert pg_cluster.password not in repr(pg_store)
    assert str(pg_cluster.port) in repr(pg_store)


# --- change counter, epochs, notifications ------------------------------------------------


def test_change_counter_and_epoch_move_with_every_change(pg_url: str) -> None:
    a, b = open_store(pg_url, ROOT), open_store(pg_url, ROOT)
    try:
        seen = [a.change_counter()]

        def changed() -> bool:
            value = b.change_counter()  # another replica sees it at once
            moved = value > seen[-1]
            seen.append(value)
            return moved

        _create(a, 1)
        assert changed()
        epoch = b.key_epoch(key_id(1))
        assert epoch is not None
        a.update_key(key_id(1), {"description": "new"})
        assert changed()
        assert b.key_epoch(key_id(1)) == epoch + 1
        a.put_tags(key_id(1), [("k", "v")])
        assert changed()
        a.create_alias(make_alias("alias/x", 1))
        assert changed()
        a.rotate_key(key_id(1), material_id="ab" * 32, secret=b"\x03" * 32, created=T0,
                     rotation_type="ON_DEMAND", changes={})  # fmt: skip
        assert changed()
        assert b.key_epoch(key_id(1)) == epoch + 3
        a.get_key(key_id(1))
        a.get_material(key_id(1), 2)
        a.list_aliases(target_key_id=None, after=None, limit=10)
        assert not changed()  # reads change nothing
        a.remove_tags(key_id(1), ["not-there"])
        assert not changed()  # nothing removed, nothing to invalidate
        a.delete_key(key_id(1))
        assert changed()
        assert b.key_epoch(key_id(1)) is None
    finally:
        a.close()
        b.close()


def test_key_changes_are_notified_on_commit(pg_store: PostgresStore, pg_url: str) -> None:
    _create(pg_store, 1)
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANGE_CHANNEL}")
        pg_store.update_key(key_id(1), {"key_state": "Disabled"})
        notes = list(listener.notifies(timeout=10, stop_after=1))
    assert [(n.channel, n.payload) for n in notes] == [(CHANGE_CHANNEL, key_id(1))]


# --- constraints, locks and consistent reads ----------------------------------------------


def test_aliases_and_tags_need_an_existing_key(pg_store: PostgresStore) -> None:
    with pytest.raises(RecordNotFoundError):
        pg_store.create_alias(make_alias("alias/orphan", 5))
    with pytest.raises(RecordNotFoundError):
        pg_store.put_tags(key_id(5), [("k", "v")])
    _create(pg_store, 1)
    pg_store.create_alias(make_alias("alias/a", 1))
    with pytest.raises(RecordNotFoundError):
        pg_store.update_alias("alias/a", key_id(5), T0)


def test_lock_wait_past_lock_timeout_is_busy(pg_url: str) -> None:
    store = open_store(pg_url, ROOT, lock_timeout=0.2)
    try:
        _create(store, 1)
        with psycopg.connect(pg_url) as holder:
            holder.execute("SELECT 1 FROM keys WHERE key_id = %s FOR UPDATE", (key_id(1),))
            with pytest.raises(StoreBusyError):
                store.update_key(key_id(1), {"description": "blocked"})
            with pytest.raises(StoreBusyError):
                store.rotate_key(key_id(1), material_id="01" * 32, secret=b"\x01" * 32,
                                 created=T0, rotation_type="ON_DEMAND", changes={})  # fmt: skip
            holder.rollback()
        assert [m.version for m in store.list_materials(key_id(1))] == [1]
    finally:
        store.close()


def test_delete_keys_due_keeps_a_key_whose_deletion_is_cancelled_meanwhile(
    pg_store: PostgresStore, pg_url: str
) -> None:
    _create(pg_store, 1, key_state="PendingDeletion", deletion_date=T0)
    result: list[object] = []
    with psycopg.connect(pg_url) as canceller:
        # Another replica's CancelKeyDeletion, as its store writes it: re-sealed under the
        # shared root key (a change without a valid MAC would be refused as tampering).
        row = canceller.execute(
            f"SELECT {KEY_RECORD_COLUMNS} FROM keys WHERE key_id = %s",  # noqa: S608
            (key_id(1),),
        ).fetchone()
        assert row is not None
        cancelled = (*row[:2], "Enabled", *row[3:8], None, *row[9:])
        canceller.execute(
            "UPDATE keys SET key_state = 'Enabled', deletion_date = NULL, mac = %s "
            "WHERE key_id = %s",
            (seal_record(ROOT, KEY_RECORD, cancelled), key_id(1)),
        )
        worker = threading.Thread(target=lambda: result.append(pg_store.delete_keys_due(T0)))
        worker.start()
        _wait_until_blocked(pg_url)
        canceller.commit()
    worker.join(timeout=30)
    assert result == [[]]
    key = pg_store.get_key(key_id(1))
    assert key is not None
    assert key.key_state == "Enabled"


def test_get_key_with_material_reads_one_snapshot(pg_store: PostgresStore) -> None:
    _create(pg_store, 1)
    pg_store.rotate_key(key_id(1), material_id="02" * 32, secret=secret_for(1, 2), created=T0,
                        rotation_type="ON_DEMAND", changes={})  # fmt: skip
    found = pg_store.get_key_with_material(key_id(1))
    assert found is not None
    assert (found[0].current_version, found[1]) == (2, secret_for(1, 2))
    older = pg_store.get_key_with_material(key_id(1), 1)
    assert older is not None
    assert older[1] == secret_for(1, 1)
    assert pg_store.get_key_with_material(key_id(9)) is None
    with pytest.raises(RecordNotFoundError):
        pg_store.get_key_with_material(key_id(1), 3)


def test_lost_races_are_retried_then_reported_busy(pg_url: str) -> None:
    sleeps: list[float] = []
    store = open_store(pg_url, ROOT, max_attempts=3, sleep=sleeps.append)
    calls = []

    def flaky(conn: psycopg.Connection[tuple[object, ...]]) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise psycopg.errors.SerializationFailure("could not serialize access")
        return "done"

    def always(conn: psycopg.Connection[tuple[object, ...]]) -> str:
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    try:
        assert store._run(flaky) == "done"
        assert len(calls) == 3
        assert sleeps == [0.01, 0.02]
        with pytest.raises(StoreBusyError):
            store._run(always)
    finally:
        store.close()


def test_changes_commit_synchronously_and_audit_rows_do_not(pg_store: PostgresStore) -> None:
    settings = "SELECT current_setting('synchronous_commit'), current_setting('TimeZone')"
    # Every change runs in a transaction, flushed to the server's disk before it returns.
    in_transaction = pg_store._run(lambda c: c.execute(settings).fetchone())
    assert in_transaction == ("on", "UTC")
    # The audit insert is the only autocommit write: committed, not waited on to be flushed.
    alone = pg_store._read(lambda c: c.execute(settings).fetchone())
    assert alone == ("off", "UTC")


# --- the throwaway cluster ------------------------------------------------------------------


def test_cluster_runs_unprivileged_with_files_in_its_temp_dir(pg_cluster: PgCluster) -> None:
    data = pg_cluster.base / "data"
    assert data.is_dir()
    assert (pg_cluster.base / f".s.PGSQL.{pg_cluster.port}").exists()  # socket in the temp dir
    if os.geteuid() == 0:
        assert pg_cluster.run_as is not None
        assert Path(data).stat().st_uid == pg_cluster.run_as.pw_uid != 0


def test_only_the_postgres_store_imports_the_driver() -> None:
    code = (
        "import sys, enclave_kms.store, enclave_kms.store.sqlite, enclave_kms.store._pg_cli, "
        "enclave_kms.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('psycopg', 'psycopg_pool', 'sqlalchemy', 'alembic')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_records_from_before_the_mac_open_only_after_an_operator_seals_them(pg_url: str) -> None:
    store = open_store(pg_url, ROOT)
    store.create_key(make_key(1), make_material(1), secret_for(1), [])
    store.create_alias(make_alias("alias/app", 1))
    store.close()
    _pg_migrate.downgrade(pg_url, "0001_initial")  # records as an older build left them
    _pg_migrate.migrate(pg_url)  # adds the column; seals nothing
    with pytest.raises(UnsealedRecordsError, match="2 key and alias records carry no MAC and 0 do"):
        open_store(pg_url, ROOT)
    sealer = open_store(pg_url, ROOT, allow_unsealed=True)
    listed = sealer.seal_existing_records(confirm=None)
    assert [k["key_id"] for k in listed.keys] == [key_id(1)] and not listed.sealed
    assert [(a["alias_name"], a["target_key_id"]) for a in listed.aliases] == [
        ("alias/app", key_id(1))
    ]
    assert sealer.seal_existing_records(confirm=listed.digest).sealed
    sealer.close()
    upgraded = open_store(pg_url, ROOT)
    assert upgraded.get_key(key_id(1)) is not None
    assert upgraded.get_alias("alias/app") is not None
    upgraded.close()


def test_a_downgrade_and_migrate_does_not_launder_a_tampered_row(pg_url: str) -> None:
    store = open_store(pg_url, ROOT)  # empty: sealed from birth
    store.create_key(make_key(1), make_material(1), secret_for(1), [])
    store.close()
    # Someone with write access: open the policy, then make the row look pre-integrity.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE keys SET policy = 'OPEN' WHERE key_id = %s", (key_id(1),))
    _pg_migrate.downgrade(pg_url, "0001_initial")
    _pg_migrate.migrate(pg_url)  # what the operator is told to run
    # Nothing was sealed behind the operator's back: the store does not open, and the
    # sealing command shows exactly what it would vouch for.
    with pytest.raises(UnsealedRecordsError):
        open_store(pg_url, ROOT)
    sealer = open_store(pg_url, ROOT, allow_unsealed=True)
    assert [k["policy"] for k in sealer.seal_existing_records(confirm=None).keys] == ["OPEN"]
    sealer.close()


def test_an_unsealed_row_in_a_sealed_store_is_tampering_not_age(pg_url: str) -> None:
    store = open_store(pg_url, ROOT)
    store.create_key(make_key(1), make_material(1), secret_for(1), [])
    store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE keys SET mac = NULL, policy = 'OPEN' WHERE key_id = %s", (key_id(1),))
    reopened = open_store(pg_url, ROOT)  # the marker says sealed: opens, refuses the row
    with pytest.raises(RecordIntegrityError):
        reopened.get_key(key_id(1))
    reopened.close()
    sealer = open_store(pg_url, ROOT, allow_unsealed=True)
    with pytest.raises(RecordIntegrityError, match="was sealed, yet 1 records"):
        sealer.seal_existing_records(confirm=None)
    sealer.close()
