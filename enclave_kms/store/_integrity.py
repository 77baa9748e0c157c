"""Record integrity: key and alias records sealed with a MAC under the root key.

Backing material has always been authenticated (AES-GCM under the root key, bound to key id
and version). The records that decide how it may be used were not: with write access to the
database alone, one could swap in a permissive key policy, re-enable a disabled key, cancel a
scheduled deletion or point an alias at a key one controls. Each key row and alias row now
carries ``mac`` = HMAC-SHA-256 (under a key derived from the root key) of its columns in a
canonical encoding; the store checks it on every read and refuses the record
(:class:`RecordIntegrityError`) when it does not match, and re-seals a row only after checking
the row it changes.

**Sealing is never automatic.** Records written before this existed have no MAC, and a store
that sealed whatever it found unsealed would seal an attacker's rows too (drop the MAC column,
mark the schema old, wait for the upgrade). So a store is *sealed* once, by an operator
(``enclave-kms seal-records``, which lists what it is about to trust), or from birth when it
starts empty; ``meta`` then holds a marker (a MAC of a fixed label), and from then on a row
without a valid MAC is tampering. A store with records but no marker refuses to open
(:class:`UnsealedRecordsError`). Deleting the marker only brings the operator back to that
command and its list.

What this cannot detect: a whole row (with its MAC) put back from an older copy of the same
database (a rollback to an earlier policy or state), or copied from another store that shares
the root key. That needs state outside the database; the audit table lives in the same
database, so it is no witness against someone who can write there.

Values are encoded as the store holds them: text, integers (timestamps as exact microseconds
since the epoch, booleans as 0 or 1) and NULL, each typed and length-prefixed, so no two
different rows share an encoding.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from enclave_kms._rootkey import RootKey
from enclave_kms.store._interface import RecordIntegrityError

__all__ = [
    "ALIAS_RECORD",
    "KEY_RECORD",
    "KEY_RECORD_COLUMNS",
    "SEAL_MARKER",
    "SealReport",
    "changed_row",
    "check_alias_row",
    "check_key_row",
    "check_record",
    "check_seal_marker",
    "plan_seal",
    "seal_marker_value",
    "seal_record",
    "seals_for",
    "unsealed_message",
    "verified_key_rows",
]

_Row = TypeVar("_Row", bound=Sequence[object])

SEAL_MARKER = "records_sealed"  # the name of the marker's row in ``meta``
_SEAL_MARKER_LABEL = b"enclave-kms/records-sealed/v1"


@dataclass(frozen=True, slots=True)
class SealReport:
    """What ``seal_existing_records`` sealed or, without a confirming digest, would seal.

    Attributes:
        keys: every column of each unsealed key record, as text (what the seal vouches for).
        aliases: every column of each unsealed alias record, as text.
        already_sealed: records that already carry a valid MAC.
        digest: SHA-256 over exactly the unsealed records; sealing must be confirmed with it,
            so what is sealed is what was listed.
        sealed: whether they were sealed (and the store marked sealed) by this call.
        was_sealed: whether the store was marked sealed already (nothing to do).
    """

    keys: tuple[Mapping[str, str | None], ...]
    aliases: tuple[Mapping[str, str | None], ...]
    already_sealed: int
    digest: str
    sealed: bool
    was_sealed: bool


def seal_marker_value(root: RootKey) -> str:
    """The ``meta`` value that says this store's records are all sealed under ``root``."""
    return root.record_mac(_SEAL_MARKER_LABEL).hex()


def check_seal_marker(root: RootKey, value: object, where: str) -> None:
    """Raise unless ``value`` is this root key's seal marker.

    Raises:
        RecordIntegrityError: it is not (written by someone without the root key).
    """
    if not isinstance(value, str) or not hmac.compare_digest(value, seal_marker_value(root)):
        raise RecordIntegrityError(
            f"{where} has a record-seal marker that does not verify under the root key: it "
            "was written outside enclave-kms"
        )


def unsealed_message(where: str, unsealed: int, sealed: int, command: str) -> str:
    """Why a store without a seal marker does not open, and what the operator does about it."""
    return (
        f"{where} has no record-seal marker: {unsealed} key and alias records carry no MAC "
        f"and {sealed} do. Records without one were written by a version before record "
        "integrity, or changed by someone with write access to the database. "
        f"`{command}` lists them with everything sealing would vouch for"
    )


# The columns a key record's MAC covers, in table order.
KEY_RECORD_COLUMNS: tuple[str, ...] = (
    "key_id", "creation_date", "key_state", "description", "key_usage", "key_spec", "policy",
    "current_version", "deletion_date", "pending_window_days", "rotation_enabled",
    "rotation_period_days", "next_rotation_date", "on_demand_rotation_date",
)  # fmt: skip

KEY_RECORD = b"key"
ALIAS_RECORD = b"alias"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _encode(kind: bytes, values: Sequence[object]) -> bytes:
    out = [b"enclave-kms/record/v1|", kind, b"|", len(values).to_bytes(2, "big")]
    for value in values:
        if value is None:
            out.append(b"N")
            continue
        if isinstance(value, datetime):
            # Integer arithmetic: exact to the microsecond, as both stores keep timestamps.
            value = (value - _EPOCH) // _MICROSECOND
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            raw, tag = str(value).encode(), b"I"
        elif isinstance(value, str):
            raw, tag = value.encode("utf-8", "surrogatepass"), b"S"
        else:
            raise TypeError(f"cannot seal a {type(value).__name__} column")
        out += [tag, len(raw).to_bytes(4, "big"), raw]
    return b"".join(out)


def changed_row(row: Sequence[object], changes: Mapping[str, object]) -> tuple[object, ...]:
    """A key row's 14 record columns with ``changes`` (column -> stored value) applied.

    A change is sealed from this, computed from the checked row, never from the row read
    back after the UPDATE: a trigger planted in the database could have changed that one.
    """
    values = dict(zip(KEY_RECORD_COLUMNS, row[:14], strict=True))
    for name, value in changes.items():
        if name not in values:
            raise ValueError(f"not a key record column: {name}")
        values[name] = value
    return tuple(values[name] for name in KEY_RECORD_COLUMNS)


def seal_record(root: RootKey, kind: bytes, values: Sequence[object]) -> bytes:
    """The MAC to store with a record whose columns are ``values`` (in table order)."""
    return root.record_mac(_encode(kind, values))


def check_record(
    root: RootKey, kind: bytes, values: Sequence[object], mac: object, what: str
) -> None:
    """Raise unless ``mac`` seals ``values``.

    Raises:
        RecordIntegrityError: the MAC is missing or does not match (``what`` names the record
            in the message, which carries no column values).
    """
    if isinstance(mac, memoryview):
        mac = bytes(mac)
    try:
        expected = seal_record(root, kind, values)
    except TypeError:
        # A column holding a type the store never writes (a REAL or BLOB put there by hand)
        # is tampering like any other, not a crash of whoever reads it.
        expected = b""
    if not isinstance(mac, bytes) or not expected or not hmac.compare_digest(mac, expected):
        raise RecordIntegrityError(
            f"{what} fails its integrity check: it was changed outside enclave-kms, or by a "
            "store holding another root key; it will not be used"
        )


def check_key_row(root: RootKey, row: Sequence[object]) -> None:
    """Check a key row read as its 14 record columns followed by ``mac``.

    Raises:
        RecordIntegrityError: see :func:`check_record`.
    """
    check_record(root, KEY_RECORD, row[:14], row[14], f"key record {row[0]}")


def check_alias_row(root: RootKey, row: Sequence[object]) -> None:
    """Check an alias row read as its 4 record columns followed by ``mac``.

    Raises:
        RecordIntegrityError: see :func:`check_record`.
    """
    check_record(root, ALIAS_RECORD, row[:4], row[4], f"alias record {row[0]}")


def verified_key_rows(root: RootKey, rows: Sequence[_Row]) -> list[_Row]:
    """The key rows whose MAC checks out, in order (the others are left out, not raised)."""
    kept = []
    for row in rows:
        try:
            check_key_row(root, row)
        except RecordIntegrityError:
            continue
        kept.append(row)
    return kept


_ALIAS_RECORD_COLUMNS = ("alias_name", "target_key_id", "creation_date", "last_updated")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def seals_for(
    root: RootKey, keys: Sequence[Sequence[object]], aliases: Sequence[Sequence[object]]
) -> tuple[list[tuple[bytes, object]], list[tuple[bytes, object]]]:
    """The ``(mac, key_id)`` and ``(mac, alias_name)`` pairs that seal rows from :func:`plan_seal`.

    Each store writes them with its own ``UPDATE ... SET mac = ? WHERE <id> = ?``.
    """
    return (
        [(seal_record(root, KEY_RECORD, tuple(row[:14])), row[0]) for row in keys],
        [(seal_record(root, ALIAS_RECORD, tuple(row[:4])), row[0]) for row in aliases],
    )


def plan_seal(
    root: RootKey,
    *,
    marker: object,
    keys: Sequence[_Row],
    aliases: Sequence[_Row],
    confirm: str | None,
    where: str,
) -> tuple[list[_Row], list[_Row], SealReport]:
    """Decide what ``seal_existing_records`` may seal; the store then writes it.

    ``keys`` and ``aliases`` are every row (``KEY_SELECT`` / ``ALIAS_SELECT`` shape), read
    under a lock that keeps them as they are until the caller commits.

    Returns:
        The unsealed key rows, the unsealed alias rows, and the report (``sealed`` true when
        ``confirm`` matched and the caller must seal them and write the marker).

    Raises:
        RecordIntegrityError: a MAC that does not verify; unsealed rows next to sealed ones
            (the store was sealed and its marker removed); a marker that does not verify;
            unsealed rows in a sealed store; or a ``confirm`` digest for other rows.
    """
    unsealed_keys = [r for r in keys if r[14] is None]
    unsealed_aliases = [r for r in aliases if r[4] is None]
    for row in keys:
        if row[14] is not None:
            check_key_row(root, row)
    for row in aliases:
        if row[4] is not None:
            check_alias_row(root, row)
    sealed_count = len(keys) + len(aliases) - len(unsealed_keys) - len(unsealed_aliases)
    unsealed_count = len(unsealed_keys) + len(unsealed_aliases)
    if marker is not None:
        check_seal_marker(root, marker, where)
        if unsealed_count:
            raise RecordIntegrityError(
                f"{where} was sealed, yet {unsealed_count} records in it carry no MAC: they "
                "were changed outside enclave-kms; restore them from a backup, do not seal them"
            )
    elif sealed_count and unsealed_count:
        # Only a store holding the root key writes a valid MAC: a store with some was sealed
        # before, so records without one were stripped, not left over from an old version.
        raise RecordIntegrityError(
            f"{where} has {sealed_count} records with valid MACs, so it was sealed before and "
            f"its seal marker was removed; the {unsealed_count} records without a MAC were "
            "changed outside enclave-kms: restore them from a backup, do not seal them"
        )
    digest = hashlib.sha256(
        b"".join(_encode(KEY_RECORD, r[:14]) for r in unsealed_keys)
        + b"".join(_encode(ALIAS_RECORD, r[:4]) for r in unsealed_aliases)
    ).hexdigest()
    if confirm is not None and not hmac.compare_digest(confirm, digest):
        raise RecordIntegrityError(
            f"the unsealed records of {where} are not the ones listed with that digest (they "
            "changed, or the digest is mistyped): list them again and check them"
        )
    report = SealReport(
        keys=tuple(
            {c: _text(v) for c, v in zip(KEY_RECORD_COLUMNS, r[:14], strict=True)}
            for r in unsealed_keys
        ),
        aliases=tuple(
            {c: _text(v) for c, v in zip(_ALIAS_RECORD_COLUMNS, r[:4], strict=True)}
            for r in unsealed_aliases
        ),
        already_sealed=sealed_count,
        digest=digest,
        sealed=confirm is not None and marker is None,
        was_sealed=marker is not None,
    )
    return unsealed_keys, unsealed_aliases, report
