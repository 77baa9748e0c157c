"""The Store contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from store_backends import Backend
from store_records import (
    T0,
    key_id,
    make_alias,
    make_audit,
    make_key,
    make_material,
    secret_for,
)

from enclave_kms._rootkey import RootKey, RootKeyMismatchError
from enclave_kms.store import (
    DuplicateError,
    RecordNotFoundError,
    SchemaVersionError,
    Store,
    StoreError,
)


def _create(store: Store, n: int, tags: tuple[tuple[str, str], ...] = (), **kw: object) -> None:
    store.create_key(make_key(n, **kw), make_material(n), secret_for(n), list(tags))


# --- keys ---------------------------------------------------------------------------------


def test_create_and_get_key_round_trips_every_field(store: Store) -> None:
    key = make_key(
        1,
        deletion_date=T0 + timedelta(days=7),
        pending_window_days=7,
        rotation_enabled=True,
        rotation_period_days=90,
        next_rotation_date=T0 + timedelta(days=90),
        on_demand_rotation_date=T0 + timedelta(hours=1),
    )
    store.create_key(key, make_material(1), secret_for(1), [("b", "2"), ("a", "1")])
    assert store.get_key(key.key_id) == key
    assert store.get_key(key_id(2)) is None
    assert store.list_tags(key.key_id) == [("a", "1"), ("b", "2")]
    assert store.list_materials(key.key_id) == [make_material(1)]


def test_create_key_twice_is_a_duplicate(store: Store) -> None:
    _create(store, 1)
    with pytest.raises(DuplicateError):
        _create(store, 1)


def test_list_keys_pages_in_key_id_order(store: Store) -> None:
    for n in (3, 1, 2, 5, 4):
        _create(store, n)
    first = store.list_keys(after=None, limit=2)
    assert [k.key_id for k in first] == [key_id(1), key_id(2)]
    rest = store.list_keys(after=first[-1].key_id, limit=10)
    assert [k.key_id for k in rest] == [key_id(3), key_id(4), key_id(5)]


def test_update_key_changes_only_the_named_fields(store: Store) -> None:
    _create(store, 1)
    when = T0 + timedelta(days=30)
    updated = store.update_key(
        key_id(1), {"key_state": "PendingDeletion", "deletion_date": when, "rotation_enabled": True}
    )
    expected = replace(
        make_key(1), key_state="PendingDeletion", deletion_date=when, rotation_enabled=True
    )
    assert updated == expected
    assert store.get_key(key_id(1)) == expected


def test_update_key_rejects_unknown_fields_and_missing_keys(store: Store) -> None:
    _create(store, 1)
    with pytest.raises(ValueError, match="key_spec"):
        store.update_key(key_id(1), {"key_spec": "RSA_2048"})
    with pytest.raises(RecordNotFoundError):
        store.update_key(key_id(9), {"description": "x"})


def test_rotate_key_adds_a_version_and_applies_changes(store: Store) -> None:
    _create(store, 1, rotation_enabled=True, next_rotation_date=T0)
    later = T0 + timedelta(days=365)
    material = store.rotate_key(
        key_id(1),
        material_id="ff" * 32,
        secret=secret_for(1, 2),
        created=T0 + timedelta(days=1),
        rotation_type="AUTOMATIC",
        changes={"next_rotation_date": later},
    )
    assert material is not None
    assert (material.version, material.rotation_type) == (2, "AUTOMATIC")
    key = store.get_key(key_id(1))
    assert key is not None
    assert (key.current_version, key.next_rotation_date) == (2, later)
    assert [m.version for m in store.list_materials(key_id(1))] == [1, 2]
    assert store.get_material(key_id(1), 1) == secret_for(1, 1)
    assert store.get_material(key_id(1), 2) == secret_for(1, 2)


def test_rotate_key_only_if_due(store: Store) -> None:
    _create(store, 1, rotation_enabled=True, next_rotation_date=T0 + timedelta(days=1))
    args = {"material_id": "ee" * 32, "secret": b"\x01" * 32, "created": T0,
            "rotation_type": "AUTOMATIC", "changes": {}}  # fmt: skip
    assert store.rotate_key(key_id(1), only_if_due_at=T0, **args) is None  # type: ignore[arg-type]
    assert [m.version for m in store.list_materials(key_id(1))] == [1]
    due = T0 + timedelta(days=1)
    assert store.rotate_key(key_id(1), only_if_due_at=due, **args) is not None  # type: ignore[arg-type]
    with pytest.raises(RecordNotFoundError):
        store.rotate_key(key_id(9), **args)  # type: ignore[arg-type]


def test_material_round_trip_and_missing_version(store: Store) -> None:
    _create(store, 1)
    material = store.get_material(key_id(1), 1)
    assert isinstance(material, bytearray)
    assert material == secret_for(1)
    with pytest.raises(RecordNotFoundError):
        store.get_material(key_id(1), 2)
    with pytest.raises(RecordNotFoundError):
        store.get_material(key_id(9), 1)


def test_delete_key_takes_material_aliases_and_tags(store: Store) -> None:
    _create(store, 1, tags=(("t", "v"),))
    _create(store, 2)
    store.create_alias(make_alias("alias/one", 1))
    store.create_alias(make_alias("alias/two", 2))
    store.delete_key(key_id(1))
    assert store.get_key(key_id(1)) is None
    assert store.list_materials(key_id(1)) == []
    assert store.list_tags(key_id(1)) == []
    assert store.get_alias("alias/one") is None
    assert store.get_alias("alias/two") is not None
    with pytest.raises(RecordNotFoundError):
        store.get_material(key_id(1), 1)


def test_delete_keys_due_deletes_only_due_pending_keys_once(store: Store) -> None:
    _create(store, 1, key_state="PendingDeletion", deletion_date=T0)
    _create(store, 2, key_state="PendingDeletion", deletion_date=T0 + timedelta(days=1))
    _create(store, 3, key_state="Enabled", deletion_date=T0 - timedelta(days=1))
    assert list(store.delete_keys_due(T0)) == [key_id(1)]
    assert store.get_key(key_id(1)) is None
    assert store.get_key(key_id(2)) is not None
    assert store.get_key(key_id(3)) is not None
    assert list(store.delete_keys_due(T0)) == []


# --- aliases ------------------------------------------------------------------------------


def test_alias_lifecycle(store: Store) -> None:
    _create(store, 1)
    _create(store, 2)
    store.create_alias(make_alias("alias/app", 1))
    with pytest.raises(DuplicateError):
        store.create_alias(make_alias("alias/app", 2))
    later = T0 + timedelta(minutes=5)
    store.update_alias("alias/app", key_id(2), later)
    alias = store.get_alias("alias/app")
    assert alias is not None
    assert (alias.target_key_id, alias.creation_date, alias.last_updated_date) == (
        key_id(2), T0, later,
    )  # fmt: skip
    store.delete_alias("alias/app")
    assert store.get_alias("alias/app") is None
    with pytest.raises(RecordNotFoundError):
        store.update_alias("alias/app", key_id(1), later)
    with pytest.raises(RecordNotFoundError):
        store.delete_alias("alias/app")


def test_list_aliases_byte_order_paging_and_filter(store: Store) -> None:
    _create(store, 1)
    _create(store, 2)
    # Byte order puts '-' < '/' < 'B' < '_' < 'b'; a locale collation would not.
    names = ["alias/a_b", "alias/a-b", "alias/aB", "alias/ab", "alias/a/b"]
    for i, name in enumerate(names):
        store.create_alias(make_alias(name, 1 + i % 2))
    listed = [a.alias_name for a in store.list_aliases(target_key_id=None, after=None, limit=50)]
    assert listed == sorted(names, key=str.encode)
    page = store.list_aliases(target_key_id=None, after=listed[1], limit=2)
    assert [a.alias_name for a in page] == listed[2:4]
    mine = store.list_aliases(target_key_id=key_id(2), after=None, limit=50)
    assert [a.alias_name for a in mine] == sorted(names[1::2], key=str.encode)


# --- tags ---------------------------------------------------------------------------------


def test_tags_put_overwrite_remove(store: Store) -> None:
    _create(store, 1, tags=(("env", "dev"),))
    store.put_tags(key_id(1), [("owner", "team"), ("env", "prod")])
    assert store.list_tags(key_id(1)) == [("env", "prod"), ("owner", "team")]
    store.remove_tags(key_id(1), ["env", "never-set"])
    assert store.list_tags(key_id(1)) == [("owner", "team")]


# --- writes for a missing key, constraint errors -----------------------------------------


def test_alias_and_tag_writes_for_a_missing_key_are_refused(backend: Backend) -> None:
    store = backend.open()
    _create(store, 1)
    store.create_alias(make_alias("alias/app", 1))
    with pytest.raises(RecordNotFoundError):
        store.create_alias(make_alias("alias/orphan", 9))
    with pytest.raises(RecordNotFoundError):
        store.update_alias("alias/app", key_id(9), T0)
    with pytest.raises(RecordNotFoundError):
        store.put_tags(key_id(9), [("env", "prod")])
    # Nothing was written: no orphan alias or tag row, and the alias still names key 1.
    assert store.get_alias("alias/orphan") is None
    alias = store.get_alias("alias/app")
    assert alias is not None and alias.target_key_id == key_id(1)
    assert backend.sql("SELECT count(*) FROM tags") == [(0,)]
    assert backend.sql("SELECT count(*) FROM aliases") == [(1,)]


def test_a_not_null_violation_is_a_store_error_not_a_duplicate(store: Store) -> None:
    _create(store, 1)
    with pytest.raises(StoreError) as err:
        store.update_key(key_id(1), {"description": None})
    assert not isinstance(err.value, DuplicateError)
    key = store.get_key(key_id(1))
    assert key is not None and key.description == "key 1"


# --- change counter, snapshot reads -------------------------------------------------------


def test_every_kind_of_change_moves_the_counter_and_reads_do_not(backend: Backend) -> None:
    store, other = backend.open(), backend.open()  # `other` plays another process / replica
    seen = [other.change_counter()]

    def moved() -> bool:
        now = other.change_counter()
        changed = now != seen[-1]
        seen.append(now)
        return changed

    _create(store, 1)
    assert moved()
    store.update_key(key_id(1), {"policy": '{"Version": "2012-10-17", "Statement": []}'})
    assert moved()
    store.rotate_key(key_id(1), material_id="ee" * 32, secret=b"\x03" * 32, created=T0,
                     rotation_type="ON_DEMAND", changes={})  # fmt: skip
    assert moved()
    store.create_alias(make_alias("alias/app", 1))
    assert moved()
    _create(store, 2)
    moved()
    store.update_alias("alias/app", key_id(2), T0)
    assert moved()
    store.delete_alias("alias/app")
    assert moved()
    store.put_tags(key_id(1), [("env", "prod")])
    assert moved()
    store.remove_tags(key_id(1), ["env"])
    assert moved()
    store.delete_key(key_id(2))
    assert moved()
    store.update_key(key_id(1), {"key_state": "PendingDeletion", "deletion_date": T0})
    moved()
    assert list(store.delete_keys_due(T0)) == [key_id(1)]
    assert moved()
    # Reads, audit records and no-op writes leave it alone.
    store.get_key(key_id(1))
    store.list_keys(after=None, limit=10)
    store.append_audit(make_audit(0))
    store.remove_tags(key_id(1), ["never-set"])
    assert list(store.delete_keys_due(T0)) == []
    assert not moved()


def test_get_key_with_material_reads_state_and_material_together(store: Store) -> None:
    _create(store, 1)
    store.rotate_key(key_id(1), material_id="ee" * 32, secret=b"\x03" * 32, created=T0,
                     rotation_type="ON_DEMAND", changes={})  # fmt: skip
    store.update_key(key_id(1), {"key_state": "Disabled"})
    found = store.get_key_with_material(key_id(1))
    assert found is not None
    key, material = found
    assert (key.key_state, key.current_version, bytes(material)) == ("Disabled", 2, b"\x03" * 32)
    old = store.get_key_with_material(key_id(1), 1)
    assert old is not None and bytes(old[1]) == secret_for(1)
    with pytest.raises(RecordNotFoundError):
        store.get_key_with_material(key_id(1), 3)
    assert store.get_key_with_material(key_id(9)) is None


# --- audit --------------------------------------------------------------------------------


def test_audit_append_and_query(store: Store) -> None:
    arn = "arn:aws:kms:eu-west-1:111122223333:key/" + key_id(1)
    records = [make_audit(0, arn), make_audit(1, None, outcome="AccessDeniedException",
               deny_reason="policy: naïve ✓", dry_run=True, source_ip="2001:db8::7"),
               make_audit(2, arn, source_ip=None)]  # fmt: skip
    for record in records:
        store.append_audit(record)
    assert list(store.query_audit(since=None, key_arn=None, limit=10)) == records
    assert list(store.query_audit(since=records[1].time, key_arn=None, limit=10)) == records[1:]
    assert list(store.query_audit(since=None, key_arn=arn, limit=10)) == [records[0], records[2]]
    assert list(store.query_audit(since=None, key_arn=None, limit=1)) == records[:1]


def test_audit_queries_are_oldest_first_by_time_then_as_written(store: Store) -> None:
    # Written out of time order (clocks of several processes, lock waits): both stores
    # answer by time, equal times in the order written, with and without filters.
    arn = "arn:aws:kms:eu-west-1:111122223333:key/" + key_id(1)
    written = [make_audit(5, arn, operation="a"), make_audit(1, arn, operation="b"),
               make_audit(5, arn, operation="c"), make_audit(3, None, operation="d"),
               make_audit(0, arn, operation="e")]  # fmt: skip
    for record in written:
        store.append_audit(record)
    ops = [r.operation for r in store.query_audit(since=None, key_arn=None, limit=10)]
    assert ops == ["e", "b", "d", "a", "c"]
    since = written[3].time  # second 3
    ops = [r.operation for r in store.query_audit(since=since, key_arn=arn, limit=10)]
    assert ops == ["a", "c"]
    ops = [r.operation for r in store.query_audit(since=since, key_arn=None, limit=2)]
    assert ops == ["d", "a"]


# --- transactions -------------------------------------------------------------------------


def test_failed_create_key_leaves_nothing(store: Store) -> None:
    _create(store, 1)
    # The key row goes in, then its material collides with key 1's version 1: all or nothing.
    with pytest.raises(DuplicateError):
        store.create_key(make_key(2), make_material(1), secret_for(2), [("t", "v")])
    assert store.get_key(key_id(2)) is None
    assert store.list_tags(key_id(2)) == []
    assert store.get_material(key_id(1), 1) == secret_for(1)


def test_failed_rotation_leaves_nothing(store: Store) -> None:
    _create(store, 1)
    with pytest.raises(StoreError):
        # key_state is NOT NULL: the version insert succeeds, the key update fails.
        store.rotate_key(key_id(1), material_id="dd" * 32, secret=b"\x02" * 32, created=T0,
                         rotation_type="ON_DEMAND", changes={"key_state": None})  # fmt: skip
    assert [m.version for m in store.list_materials(key_id(1))] == [1]
    key = store.get_key(key_id(1))
    assert key is not None
    assert key.current_version == 1


# --- root key, schema, at rest ------------------------------------------------------------


def test_reopen_with_the_same_root_key_sees_the_data(backend: Backend) -> None:
    _create(backend.open(), 1)
    assert backend.open().get_material(key_id(1), 1) == secret_for(1)


def test_a_different_root_key_is_refused_at_open(backend: Backend) -> None:
    _create(backend.open(), 1)
    with pytest.raises(RootKeyMismatchError, match="root key does not match"):
        backend.open(RootKey(b"\x42" * 32))


def test_a_newer_schema_is_refused_at_open(backend: Backend) -> None:
    backend.open()
    backend.make_schema_newer()
    with pytest.raises(SchemaVersionError):
        backend.open()


def test_material_is_encrypted_at_rest(backend: Backend) -> None:
    store = backend.open()
    _create(store, 7)
    store.rotate_key(key_id(7), material_id="cc" * 32, secret=secret_for(7, 2), created=T0,
                     rotation_type="ON_DEMAND", changes={})  # fmt: skip
    raw = backend.raw_bytes()
    assert key_id(7).encode() in raw  # the dump/file really holds the key's rows
    for version in (1, 2):
        secret = secret_for(7, version)
        assert secret not in raw
        assert secret.hex().encode() not in raw
    stored = backend.sql("SELECT wrapped FROM key_versions WHERE key_id = ?", (key_id(7),))
    assert len(stored) == 2
    assert all(secret_for(7, 1) not in bytes(row[0]) for row in stored)  # type: ignore[arg-type]


def test_wrapped_material_is_bound_to_key_and_version(backend: Backend) -> None:
    store = backend.open()
    _create(store, 1)
    _create(store, 2)
    # Move key 1's wrapped blob onto key 2: the AAD (key id + version) no longer matches.
    backend.sql(
        "UPDATE key_versions SET wrapped = (SELECT wrapped FROM key_versions WHERE key_id = ?) "
        "WHERE key_id = ?",
        (key_id(1), key_id(2)),
    )
    with pytest.raises(StoreError, match="does not authenticate"):
        store.get_material(key_id(2), 1)
