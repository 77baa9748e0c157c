"""Key and alias records are sealed under the root key: a change made in the database itself,
by someone without the root key, is refused on every path that reads the record."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from store_backends import Backend
from store_records import T0, key_id, make_alias, make_key, make_material, secret_for

from enclave_kms._rootkey import RootKey
from enclave_kms.store import RecordIntegrityError, Store

ADMIN_ONLY = '{"Version": "2012-10-17", "Statement": []}'
ANYONE = '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*"}]}'


def _create(store: Store, n: int, **changes: object) -> None:
    store.create_key(make_key(n, **changes), make_material(n), secret_for(n), [])


# Each tamper is what someone with write access to the database alone could do to gain the
# use of a key, keep a disabled one working, or redirect an application's alias.
TAMPERS: dict[str, tuple[str, Callable[[int], tuple[object, ...]]]] = {
    "permissive policy": ("UPDATE keys SET policy=? WHERE key_id=?", lambda n: (ANYONE, key_id(n))),
    "re-enabled": (
        "UPDATE keys SET key_state='Enabled' WHERE key_id=?",
        lambda n: (key_id(n),),
    ),
    "usage changed": (
        "UPDATE keys SET key_usage='SIGN_VERIFY' WHERE key_id=?",
        lambda n: (key_id(n),),
    ),
    "MAC removed": ("UPDATE keys SET mac=NULL WHERE key_id=?", lambda n: (key_id(n),)),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_a_key_row_changed_in_the_database_is_refused_on_every_read(
    backend: Backend, store: Store, tamper: str
) -> None:
    _create(store, 1, key_state="Disabled", policy=ADMIN_ONLY)
    _create(store, 2)
    statement, params = TAMPERS[tamper]
    backend.sql(statement, params(1))
    fresh = backend.open()  # another replica, nothing cached
    with pytest.raises(RecordIntegrityError, match=f"key record {key_id(1)} fails"):
        fresh.get_key(key_id(1))
    with pytest.raises(RecordIntegrityError):
        fresh.get_key_with_material(key_id(1))
    with pytest.raises(RecordIntegrityError):
        fresh.list_keys(after=None, limit=10)
    # A change through the store must not launder the row by sealing it again.
    with pytest.raises(RecordIntegrityError):
        fresh.update_key(key_id(1), {"description": "innocent"})
    with pytest.raises(RecordIntegrityError):
        fresh.rotate_key(key_id(1), material_id="ab" * 32, secret=secret_for(1, 2), created=T0,
                         rotation_type="ON_DEMAND", changes={})  # fmt: skip
    # The untouched key is unaffected.
    other = fresh.get_key(key_id(2))
    assert other is not None and other.key_state == "Enabled"


def test_the_error_names_the_record_and_none_of_its_contents(
    backend: Backend, store: Store
) -> None:
    _create(store, 1, policy=ADMIN_ONLY)
    backend.sql("UPDATE keys SET policy=? WHERE key_id=?", (ANYONE, key_id(1)))
    with pytest.raises(RecordIntegrityError) as caught:
        backend.open().get_key(key_id(1))
    assert "Principal" not in str(caught.value) and ADMIN_ONLY not in str(caught.value)


def test_changes_through_the_store_stay_valid(backend: Backend, store: Store) -> None:
    _create(store, 1)
    store.update_key(key_id(1), {"key_state": "Disabled", "description": "paused"})
    store.rotate_key(key_id(1), material_id="cd" * 32, secret=secret_for(1, 2), created=T0,
                     rotation_type="ON_DEMAND", changes={"rotation_enabled": True})  # fmt: skip
    store.create_alias(make_alias("alias/app", 1))
    _create(store, 2)
    store.update_alias("alias/app", key_id(2), T0)
    fresh = backend.open()
    key = fresh.get_key(key_id(1))
    assert key is not None
    assert (key.key_state, key.description, key.current_version) == ("Disabled", "paused", 2)
    alias = fresh.get_alias("alias/app")
    assert alias is not None and alias.target_key_id == key_id(2)


def test_an_alias_pointed_elsewhere_in_the_database_is_refused(
    backend: Backend, store: Store
) -> None:
    _create(store, 1)
    _create(store, 2)  # say, a key the attacker can use
    store.create_alias(make_alias("alias/app", 1))
    backend.sql("UPDATE aliases SET target_key_id=? WHERE alias_name=?", (key_id(2), "alias/app"))
    fresh = backend.open()
    with pytest.raises(RecordIntegrityError, match="alias record alias/app"):
        fresh.get_alias("alias/app")
    with pytest.raises(RecordIntegrityError):
        fresh.list_aliases(target_key_id=None, after=None, limit=10)
    with pytest.raises(RecordIntegrityError):
        fresh.update_alias("alias/app", key_id(1), T0)


def test_a_row_copied_from_another_key_does_not_verify(backend: Backend, store: Store) -> None:
    # The MAC covers the key id: a sealed row moved onto another key is still refused.
    _create(store, 1, policy=ANYONE)
    _create(store, 2, policy=ADMIN_ONLY)
    (mac,) = backend.sql("SELECT mac FROM keys WHERE key_id=?", (key_id(1),))[0]
    backend.sql("UPDATE keys SET policy=?, mac=? WHERE key_id=?", (ANYONE, mac, key_id(2)))
    with pytest.raises(RecordIntegrityError):
        backend.open().get_key(key_id(2))


def test_a_tampered_pending_deletion_does_not_destroy_the_key(
    backend: Backend, store: Store
) -> None:
    _create(store, 1)
    _create(store, 2, key_state="PendingDeletion", deletion_date=T0)
    backend.sql(
        "UPDATE keys SET key_state='PendingDeletion', deletion_date=? WHERE key_id=?",
        (T0 if backend.name == "postgresql" else round(T0.timestamp() * 1e6), key_id(1)),
    )
    assert list(backend.open().delete_keys_due(T0)) == [key_id(2)]
    rows = backend.sql("SELECT key_id FROM keys")
    assert [r[0] for r in rows] == [key_id(1)]  # kept for the operator to look at


def test_a_store_with_another_root_key_cannot_seal_records(backend: Backend) -> None:
    # The MAC key derives from the root key; the check value stops the wrong key at open.
    backend.open()
    with pytest.raises(Exception, match="root key does not match"):
        backend.open(RootKey(bytes(32)))


def _plant_trigger(backend: Backend) -> None:
    """A trigger that opens the policy of any key the store itself updates."""
    if backend.name == "sqlite":
        backend.sql(
            "CREATE TRIGGER open_up AFTER UPDATE ON keys BEGIN "
            "UPDATE keys SET policy='OPEN' WHERE key_id=NEW.key_id; END"
        )
        return
    backend.sql(
        "CREATE FUNCTION open_up() RETURNS trigger AS $$ BEGIN NEW.policy := 'OPEN'; "
        "RETURN NEW; END $$ LANGUAGE plpgsql"
    )
    backend.sql(
        "CREATE TRIGGER open_up BEFORE UPDATE ON keys FOR EACH ROW EXECUTE FUNCTION open_up()"
    )


def _drop_trigger(backend: Backend) -> None:
    if backend.name == "sqlite":
        backend.sql("DROP TRIGGER open_up")
    else:
        backend.sql("DROP TRIGGER open_up ON keys")


def test_a_planted_trigger_cannot_get_its_change_sealed_by_the_store(
    backend: Backend, store: Store
) -> None:
    _create(store, 1, policy=ADMIN_ONLY)
    _create(store, 2, policy=ADMIN_ONLY)
    _plant_trigger(backend)  # while the store is open (it refuses to open with one)
    store.update_key(key_id(1), {"key_state": "Disabled"})
    store.rotate_key(key_id(2), material_id="ef" * 32, secret=secret_for(2, 2), created=T0,
                     rotation_type="AUTOMATIC", changes={})  # fmt: skip
    _drop_trigger(backend)
    # The store sealed the values it meant to write, not what the trigger left behind.
    fresh = backend.open()
    for n in (1, 2):
        with pytest.raises(RecordIntegrityError):
            fresh.get_key(key_id(n))


def test_a_store_with_a_planted_trigger_does_not_open(backend: Backend, store: Store) -> None:
    _create(store, 1)
    _plant_trigger(backend)
    with pytest.raises(RecordIntegrityError, match="trigger"):
        backend.open()


def test_stripping_some_macs_and_the_marker_is_tampering_not_age(
    backend: Backend, store: Store
) -> None:
    _create(store, 1, policy=ADMIN_ONLY)
    _create(store, 2)
    backend.sql("UPDATE keys SET policy=?, mac=NULL WHERE key_id=?", (ANYONE, key_id(1)))
    backend.sql("DELETE FROM meta WHERE name='records_sealed'")
    sealer = backend.open_unsealed()
    with pytest.raises(RecordIntegrityError, match="1 records with valid MACs, so it was sealed"):
        sealer.seal_existing_records(confirm=None)
