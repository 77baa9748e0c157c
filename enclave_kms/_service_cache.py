"""Per-process caches of key records and aliases, kept honest across processes and replicas.

Several service processes (uvicorn workers, or replicas behind a load balancer) share one
store, and any of them may change a key, its policy or an alias. Every backend moves a
store-wide change counter in the same transaction as such a change
(:meth:`enclave_kms.store.Store.change_counter`). :class:`RecordCache` reads that counter at
most once per ``poll_interval`` (one indexed single-row read) and drops everything when it
moved, so an entry is never served more than ``poll_interval`` plus one store round trip after
another process committed a change to it. Changes made through this process are dropped at
once (:meth:`RecordCache.invalidate`), so a process always reads its own writes.

Only records are cached here, never a decision: the service reads key state straight from the
store wherever it must be exact (see :class:`enclave_kms.service.KmsService`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from enclave_kms.store import AliasRecord, KeyRecord, Store

__all__ = ["DEFAULT_CACHE_POLL_INTERVAL", "RecordCache"]

DEFAULT_CACHE_POLL_INTERVAL = 1.0
_V = TypeVar("_V")


class RecordCache:
    """Key records and aliases from ``store``, dropped when the store's change counter moves.

    Args:
        store: the store whose records are cached.
        poll_interval: seconds between change-counter reads (0: read it on every lookup).
        monotonic: the clock that paces the polls (a parameter so tests can drive it).
        size: at most this many keys and this many aliases are kept (least recently used
            go first).

    Raises:
        ValueError: a negative ``poll_interval`` or a ``size`` below 1.
    """

    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float = DEFAULT_CACHE_POLL_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        size: int = 4096,
    ) -> None:
        if poll_interval < 0 or size < 1:
            raise ValueError("poll_interval must be >= 0 and size >= 1")
        self._store = store
        self._interval = poll_interval
        self._monotonic = monotonic
        self._size = size
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, KeyRecord] = OrderedDict()
        self._aliases: OrderedDict[str, AliasRecord] = OrderedDict()
        self._seen: int | None = None
        self._next_poll = float("-inf")
        # Bumped by every invalidation: a record fetched before an invalidation must not be
        # stored after it (it may predate the change that caused it).
        self._generation = 0

    def invalidate(self) -> None:
        """Drop every entry (called after this process changed something)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._keys.clear()
        self._aliases.clear()
        self._generation += 1

    def _poll(self) -> None:
        now = self._monotonic()
        with self._lock:
            if now < self._next_poll:
                return
            # Claim the poll before reading, so concurrent lookups do not all hit the store.
            self._next_poll = now + self._interval
        counter = self._store.change_counter()
        with self._lock:
            if counter != self._seen:
                self._drop()
                self._seen = counter

    def key(self, key_id: str) -> KeyRecord | None:
        """The key record, from the cache if it is fresh enough, else from the store."""
        return self._lookup(self._keys, key_id, self._store.get_key)

    def alias(self, alias_name: str) -> AliasRecord | None:
        """The alias, from the cache if it is fresh enough, else from the store."""
        return self._lookup(self._aliases, alias_name, self._store.get_alias)

    def _lookup(
        self, table: OrderedDict[str, _V], name: str, fetch: Callable[[str], _V | None]
    ) -> _V | None:
        self._poll()
        with self._lock:
            found = table.get(name)
            if found is not None:
                table.move_to_end(name)
                return found
            generation = self._generation
        fetched = fetch(name)
        # Misses are not cached: a key or alias created elsewhere is found at once.
        if fetched is not None:
            with self._lock:
                if generation == self._generation:
                    self._put(table, name, fetched)
        return fetched

    def _put(self, table: OrderedDict[str, _V], name: str, value: _V) -> None:
        table[name] = value
        table.move_to_end(name)
        while len(table) > self._size:
            table.popitem(last=False)
