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

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from enclave_kms._rootkey import RootKey
from enclave_kms.store._interface import RecordIntegrityError

__all__ = [
    "ALIAS_RECORD",
    "KEY_RECORD",
    "SEAL_MARKER",
    "SealReport",
    "already_sealed_message",
    "check_alias_row",
    "check_key_row",
    "check_record",
    "check_seal_marker",
    "seal_marker_value",
    "seal_record",
    "seal_report",
    "unsealed_message",
    "unsealed_rows",
    "verified_key_rows",
]

_Row = TypeVar("_Row", bound=Sequence[object])

SEAL_MARKER = "records_sealed"  # the name of the marker's row in ``meta``
_SEAL_MARKER_LABEL = b"enclave-kms/records-sealed/v1"


@dataclass(frozen=True, slots=True)
class SealReport:
    """What ``seal_existing_records`` sealed (or, without ``confirm``, would seal).

    Attributes:
        keys: ``(key_id, key_state, key_usage, key_spec, policy)`` of each unsealed key
            record: what the operator is about to vouch for.
        aliases: ``(alias_name, target_key_id)`` of each unsealed alias record.
        sealed: whether they were sealed (and the store marked sealed).
    """

    keys: tuple[tuple[str, str, str, str, str], ...]
    aliases: tuple[tuple[str, str], ...]
    sealed: bool


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


def unsealed_message(where: str, keys: int, aliases: int, command: str) -> str:
    """Why a store with unsealed records does not open, and what the operator does about it."""
    return (
        f"{where} holds {keys} key and {aliases} alias records that are not sealed under the "
        "root key: written by a version before record integrity, or made to look so by "
        f"someone with write access to the database. Check them, then seal them once: "
        f"`{command}` lists them, and with --confirm seals them as they are"
    )


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


def already_sealed_message(where: str) -> str:
    """Why ``seal-records`` refuses a store that was sealed before."""
    return (
        f"{where} is already sealed: a record without a valid MAC in it was changed outside "
        "enclave-kms; restore it from a backup instead of sealing it"
    )


def unsealed_rows(
    root: RootKey, keys: Sequence[_Row], aliases: Sequence[_Row]
) -> tuple[list[_Row], list[_Row]]:
    """The key and alias rows (``KEY_SELECT`` / ``ALIAS_SELECT`` shape) that have no MAC.

    Raises:
        RecordIntegrityError: a row has a MAC that does not verify (tampering, not age).
    """
    for row in keys:
        if row[14] is not None:
            check_key_row(root, row)
    for row in aliases:
        if row[4] is not None:
            check_alias_row(root, row)
    return [r for r in keys if r[14] is None], [r for r in aliases if r[4] is None]


def seal_report(keys: Sequence[_Row], aliases: Sequence[_Row], *, sealed: bool) -> SealReport:
    """A :class:`SealReport` of unsealed ``KEY_SELECT`` / ``ALIAS_SELECT`` rows."""
    return SealReport(
        keys=tuple((str(r[0]), str(r[2]), str(r[4]), str(r[5]), str(r[6])) for r in keys),
        aliases=tuple((str(r[0]), str(r[1])) for r in aliases),
        sealed=sealed,
    )
