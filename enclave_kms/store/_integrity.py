"""Record integrity: key and alias records sealed with a MAC under the root key.

Backing material has always been authenticated (AES-GCM under the root key, bound to key id
and version). The records that decide how it may be used were not: with write access to the
database alone, one could swap in a permissive key policy, re-enable a disabled key, cancel a
scheduled deletion or point an alias at a key one controls. Each key row and alias row now
carries ``mac`` = HMAC-SHA-256 (under a key derived from the root key) of its columns in a
canonical encoding; the store checks it on every read and refuses the record
(:class:`RecordIntegrityError`) when it does not match, and re-seals a row only after checking
the row it changes.

What this cannot detect: a whole row (with its MAC) put back from an older copy of the same
database (a rollback to an earlier policy or state). That needs a counter outside the
database; the audit trail shows when it happened.

Values are encoded as the store holds them: text, integers (timestamps as exact microseconds
since the epoch, booleans as 0 or 1) and NULL, each typed and length-prefixed, so no two
different rows share an encoding.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from enclave_kms._rootkey import RootKey
from enclave_kms.store._interface import RecordIntegrityError

__all__ = [
    "ALIAS_RECORD",
    "KEY_RECORD",
    "check_alias_row",
    "check_key_row",
    "check_record",
    "seal_record",
    "verified_key_rows",
]

_Row = TypeVar("_Row", bound=Sequence[object])

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
    if not isinstance(mac, bytes) or not hmac.compare_digest(mac, seal_record(root, kind, values)):
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
