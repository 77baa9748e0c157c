"""The storage interface: frozen records and the ``Store`` protocol every backend implements.

Nothing here names a database: backends (SQLite now, PostgreSQL later) take and return these
records, convert their driver's exceptions to :class:`StoreError` subclasses, and do every
multi-step change (create a key with its first version and tags, rotate, delete a key with
its versions, aliases and tags) in one transaction. Backing key material is passed in and out
in plaintext and encrypted at rest by the backend under the root key
(:class:`enclave_kms._rootkey.RootKey`), bound to key id and version.

Every backend behaves the same where databases would differ: an alias or tag written for a
key that does not exist raises :class:`RecordNotFoundError` (never an orphan row); only a
duplicate name or id is a :class:`DuplicateError`, any other constraint failure a plain
:class:`StoreError`; and every committed change to a key, its material, aliases, tags or
policy moves :meth:`Store.change_counter` in the same transaction, so several processes (or
replicas) caching records can tell when to drop them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from enclave_kms.audit import AuditRecord

__all__ = [
    "KEY_COLUMNS",
    "AliasRecord",
    "DuplicateError",
    "KeyRecord",
    "MaterialRecord",
    "RecordIntegrityError",
    "RecordNotFoundError",
    "SchemaVersionError",
    "Store",
    "StoreBusyError",
    "StoreError",
    "UnsealedRecordsError",
]


class StoreError(Exception):
    """A storage failure (the service answers ``KMSInternalException``)."""


class StoreBusyError(StoreError):
    """The store stayed locked past its timeout (the service answers ``DependencyTimeout``)."""


class DuplicateError(StoreError):
    """A record with that name already exists (for example an alias)."""


class RecordNotFoundError(StoreError):
    """The record to change no longer exists (for example deleted by another process)."""


class RecordIntegrityError(StoreError):
    """A key or alias record does not carry a valid MAC under the root key (see
    :mod:`enclave_kms.store._integrity`): it was changed outside the store."""


class UnsealedRecordsError(StoreError):
    """The store holds key or alias records that were never sealed (written before record
    integrity existed, or made to look so): an operator must check and seal them once with
    ``enclave-kms seal-records`` before the store is used."""


class SchemaVersionError(StoreError):
    """The store was written by an unknown (newer) schema version."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A KMS key (everything except its backing material, tags and aliases)."""

    key_id: str
    creation_date: datetime
    key_state: str
    description: str
    key_usage: str
    key_spec: str
    policy: str
    current_version: int
    deletion_date: datetime | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    rotation_period_days: int | None = None
    next_rotation_date: datetime | None = None
    on_demand_rotation_date: datetime | None = None


# Fields of KeyRecord that update_key may change (key_id and creation_date never change).
KEY_COLUMNS = frozenset(
    {
        "key_state",
        "description",
        "policy",
        "deletion_date",
        "pending_window_days",
        "rotation_enabled",
        "rotation_period_days",
        "next_rotation_date",
        "on_demand_rotation_date",
    }
)


@dataclass(frozen=True, slots=True)
class MaterialRecord:
    """One version of a key's backing material (metadata only; the secret travels apart).

    Attributes:
        key_id: the key's UUID.
        version: 1 for the original material, +1 per rotation.
        material_id: the 64-hex ``KeyMaterialId`` shown by the API.
        created: when this version was created.
        rotation_type: ``None`` for the original, else ``AUTOMATIC`` or ``ON_DEMAND``.
    """

    key_id: str
    version: int
    material_id: str
    created: datetime
    rotation_type: str | None = None


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """An alias and the key it points to."""

    alias_name: str
    target_key_id: str
    creation_date: datetime
    last_updated_date: datetime


class Store(Protocol):
    """Keys, key material versions, aliases, tags, policies (in the key record), audit, meta."""

    # --- keys and material ----------------------------------------------------------------
    def create_key(
        self,
        key: KeyRecord,
        material: MaterialRecord,
        secret: bytes | bytearray,
        tags: Sequence[tuple[str, str]],
    ) -> None:
        """Insert a key, its first material version and its tags in one transaction."""

    def get_key(self, key_id: str) -> KeyRecord | None:
        """Return the key, or ``None``."""

    def list_keys(self, *, after: str | None, limit: int) -> Sequence[KeyRecord]:
        """Return up to ``limit`` keys ordered by key id, starting after ``after``."""

    def update_key(self, key_id: str, changes: Mapping[str, object]) -> KeyRecord:
        """Change fields in :data:`KEY_COLUMNS`; raises :class:`RecordNotFoundError`."""

    def rotate_key(
        self,
        key_id: str,
        *,
        material_id: str,
        secret: bytes | bytearray,
        created: datetime,
        rotation_type: str,
        changes: Mapping[str, object],
        only_if_due_at: datetime | None = None,
    ) -> MaterialRecord | None:
        """Add the next material version, make it current and apply ``changes`` atomically.

        With ``only_if_due_at``, rotate only if the key's ``next_rotation_date`` is at or
        before it (re-checked inside the transaction, so concurrent processes rotate once);
        returns ``None`` when nothing was due.
        """

    def get_material(self, key_id: str, version: int) -> bytearray:
        """Return the plaintext backing material; raises :class:`RecordNotFoundError`."""

    def get_key_with_material(
        self, key_id: str, version: int | None = None
    ) -> tuple[KeyRecord, bytearray] | None:
        """Return the key and one material version (default: current) read in one snapshot.

        ``None`` if the key does not exist; :class:`RecordNotFoundError` if the version does
        not. A state change committed elsewhere is entirely before or after this read.
        """

    def list_materials(self, key_id: str) -> Sequence[MaterialRecord]:
        """Return every material version of the key, oldest first."""

    def delete_key(self, key_id: str) -> None:
        """Delete the key with its material, aliases and tags in one transaction."""

    def delete_keys_due(self, now: datetime) -> Sequence[str]:
        """Delete every PendingDeletion key whose deletion date has passed; return their ids."""

    # --- aliases ----------------------------------------------------------------------------
    def create_alias(self, alias: AliasRecord) -> None:
        """Insert an alias.

        Raises :class:`DuplicateError` if the name exists, :class:`RecordNotFoundError` if
        the target key does not.
        """

    def get_alias(self, alias_name: str) -> AliasRecord | None:
        """Return the alias, or ``None``."""

    def update_alias(self, alias_name: str, target_key_id: str, now: datetime) -> None:
        """Point an alias at another key; :class:`RecordNotFoundError` if either is missing."""

    def delete_alias(self, alias_name: str) -> None:
        """Delete an alias; raises :class:`RecordNotFoundError`."""

    def list_aliases(
        self, *, target_key_id: str | None, after: str | None, limit: int
    ) -> Sequence[AliasRecord]:
        """Return up to ``limit`` aliases ordered by name, optionally only one key's."""

    # --- tags -------------------------------------------------------------------------------
    def put_tags(self, key_id: str, tags: Sequence[tuple[str, str]]) -> None:
        """Add or overwrite tags in one transaction; :class:`RecordNotFoundError` if no key."""

    def remove_tags(self, key_id: str, tag_keys: Sequence[str]) -> None:
        """Remove tags (missing keys are ignored, as AWS does)."""

    def list_tags(self, key_id: str) -> Sequence[tuple[str, str]]:
        """Return the key's tags ordered by tag key."""

    # --- audit ------------------------------------------------------------------------------
    def append_audit(self, record: AuditRecord) -> None:
        """Append an audit record."""

    def query_audit(
        self, *, since: datetime | None, key_arn: str | None, limit: int
    ) -> Sequence[AuditRecord]:
        """Return up to ``limit`` audit records filtered by time and key.

        Oldest first: by time, then in the order they were written.
        """

    # --- cache invalidation -------------------------------------------------------------------
    def change_counter(self) -> int:
        """Return a counter that moves with every committed change to keys, aliases or tags."""

    def close(self) -> None:
        """Release connections."""
