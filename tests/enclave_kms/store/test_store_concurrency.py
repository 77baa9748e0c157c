"""Races between store instances (as between replicas or processes), on every backend.

Each thread uses its own store instance, so the database, not an in-process lock, has to
settle the race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from store_backends import Backend
from store_records import T0, key_id, make_alias, make_key, make_material, secret_for

from enclave_kms.store import DuplicateError, MaterialRecord, RecordNotFoundError, Store

_T = TypeVar("_T")
THREADS = 4


def _race(stores: list[Store], fn: Callable[[Store], _T]) -> list[_T | Exception]:
    """Run ``fn`` once per store, all released together; return results or exceptions."""
    barrier = threading.Barrier(len(stores))
    results: list[_T | Exception] = [RuntimeError("did not run")] * len(stores)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(stores[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _create(store: Store, n: int, **kw: object) -> None:
    store.create_key(make_key(n, **kw), make_material(n), secret_for(n), [])


def test_alias_create_race_has_exactly_one_winner(backend: Backend) -> None:
    stores = [backend.open() for _ in range(THREADS)]
    _create(stores[0], 1)
    results = _race(stores, lambda s: s.create_alias(make_alias("alias/contended", 1)))
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, DuplicateError) for r in results) == THREADS - 1


def test_due_rotation_race_rotates_exactly_once(backend: Backend) -> None:
    stores = [backend.open() for _ in range(THREADS)]
    _create(stores[0], 1, rotation_enabled=True, rotation_period_days=365, next_rotation_date=T0)
    now = T0 + timedelta(seconds=1)

    def rotate(s: Store) -> MaterialRecord | None:
        return s.rotate_key(
            key_id(1), material_id=stores.index(s).to_bytes(32).hex(), secret=b"\x07" * 32,
            created=now, rotation_type="AUTOMATIC",
            changes={"next_rotation_date": now + timedelta(days=365)}, only_if_due_at=now,
        )  # fmt: skip

    results = _race(stores, rotate)
    rotated = [r for r in results if isinstance(r, MaterialRecord)]
    assert len(rotated) == 1, results
    assert results.count(None) == THREADS - 1
    assert [m.version for m in stores[0].list_materials(key_id(1))] == [1, 2]
    key = stores[0].get_key(key_id(1))
    assert key is not None
    assert key.current_version == 2


def test_delete_keys_due_race_deletes_each_key_once(backend: Backend) -> None:
    stores = [backend.open() for _ in range(THREADS)]
    due = [n for n in range(1, 9)]
    for n in due:
        _create(stores[0], n, key_state="PendingDeletion", deletion_date=T0)
    _create(stores[0], 99)
    results = _race(stores, lambda s: list(s.delete_keys_due(T0)))
    deleted = [kid for r in results if isinstance(r, list) for kid in r]
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(deleted) == [key_id(n) for n in due]
    assert [k.key_id for k in stores[0].list_keys(after=None, limit=100)] == [key_id(99)]


def test_alias_update_racing_delete_never_resurrects(backend: Backend) -> None:
    stores = [backend.open() for _ in range(2)]
    _create(stores[0], 1)
    _create(stores[0], 2)
    for round_ in range(5):
        name = f"alias/r{round_}"
        stores[0].create_alias(make_alias(name, 1))

        def act(s: Store, name: str = name) -> None:
            if s is stores[0]:
                s.delete_alias(name)
            else:
                s.update_alias(name, key_id(2), T0 + timedelta(hours=1))

        deleted, updated = _race(stores, act)
        assert deleted is None  # the delete always finds the alias (update never removes it)
        assert updated is None or isinstance(updated, RecordNotFoundError)
        assert stores[1].get_alias(name) is None


def test_readers_never_see_a_current_version_without_material(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    _create(writer, 1)
    stop = threading.Event()
    failures: list[Exception] = []

    def read() -> None:
        while not stop.is_set():
            try:
                key = reader.get_key(key_id(1))
                assert key is not None
                reader.get_material(key_id(1), key.current_version)
            except Exception as exc:
                failures.append(exc)
                return

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for v in range(2, 12):
            writer.rotate_key(key_id(1), material_id=f"{v:064x}", secret=secret_for(1, v),
                              created=T0, rotation_type="ON_DEMAND", changes={})  # fmt: skip
    finally:
        stop.set()
        thread.join(timeout=30)
    assert failures == []
    assert [m.version for m in reader.list_materials(key_id(1))] == list(range(1, 12))
