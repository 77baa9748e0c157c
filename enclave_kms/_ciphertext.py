"""The symmetric ``CiphertextBlob``: our own versioned, self-describing format.

AWS does not publish its blob format, only the ingredients (kms-recipient.md §7): a header with
the backing-key id authenticated as AAD, a nonce, AES-256-GCM under a key derived per request,
and the encryption context as AAD. Clients treat the blob as opaque, so we define our own
(byte layout, KDF and versioning rules in ``CIPHERTEXT.md``)::

    off  len  field
    0    2    magic  b"EK"
    2    1    format version (1)
    3    16   KMS key id (UUID bytes)
    19   4    backing-key version, big-endian u32
    23   32   nonce (fresh per blob)
    55   n    AES-256-GCM ciphertext
    55+n 16   GCM tag

    per-blob key = HKDF-SHA256(ikm=backing key, salt=nonce,
                               info=b"enclave-kms blob" || header[0:23])
    GCM IV       = 12 zero bytes (each derived key encrypts exactly one message)
    AAD          = header[0:55] || canonical_encryption_context(ctx)

Every failure to read or open a blob raises :class:`~enclave_kms.errors.InvalidCiphertextException`
with one message: a changed context is indistinguishable from a changed byte.

The backing key and the per-blob key pass through ``cryptography`` as immutable ``bytes``;
Python cannot guarantee that key material is erased from memory.
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from enclave_kms.errors import InvalidCiphertextException, ValidationException

__all__ = [
    "BLOB_OVERHEAD",
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "INVALID_CIPHERTEXT_MESSAGE",
    "MAGIC",
    "BlobHeader",
    "canonical_encryption_context",
    "open_blob",
    "read_header",
    "seal",
]

MAGIC: Final = b"EK"
FORMAT_VERSION: Final = 1
NONCE_SIZE: Final = 32
TAG_SIZE: Final = 16
BACKING_KEY_SIZE: Final = 32

# magic(2) | version(1) | key uuid(16) | key version(u32) -- the part bound into the KDF info.
_PREFIX = struct.Struct(">2sB16sI")
HEADER_SIZE: Final = _PREFIX.size + NONCE_SIZE  # 55
#: Bytes a blob adds to its plaintext: header + GCM tag (71; AWS adds 152).
BLOB_OVERHEAD: Final = HEADER_SIZE + TAG_SIZE

_KDF_LABEL: Final = b"enclave-kms blob"
# A fixed GCM IV is safe because every derived key encrypts exactly one message: GCM's
# requirement is that a (key, IV) pair never repeats, and the 256-bit random nonce makes a
# repeated derived key as unlikely as guessing the backing key. Same reasoning as AWS KMS's
# HSM design (a fresh derived key per encryption).
_GCM_IV: Final = bytes(12)
_U32 = struct.Struct(">I")
# ``cryptography`` hash objects are stateless descriptions: one instance serves every call.
_SHA256: Final = hashes.SHA256()
# The canonical encoding of the empty context (a u32 count of zero), the most common one.
_EMPTY_CONTEXT: Final = _U32.pack(0)
# One message for every ciphertext failure, whatever the cause (enclave_kms/CIPHERTEXT.md).
INVALID_CIPHERTEXT_MESSAGE: Final = (
    "The ciphertext is invalid or does not match the encryption context."
)


@dataclass(frozen=True)
class BlobHeader:
    """The authenticated, unencrypted header of a blob.

    Attributes:
        key_id: the KMS key's UUID in canonical lowercase form.
        key_version: the backing-key version (for rotation).
        nonce: the per-blob nonce the data key is derived from.
    """

    key_id: str
    key_version: int
    nonce: bytes


def canonical_encryption_context(ctx: Mapping[str, str]) -> bytes:
    """Encode an encryption context deterministically and unambiguously for use as AAD.

    Format: ``u32 count`` then, for each pair sorted by the key's UTF-8 bytes,
    ``u32 len(key) || key || u32 len(value) || value`` (big-endian, UTF-8). Length prefixes make
    ``{"a": "bc"}`` and ``{"ab": "c"}`` encode differently; sorting makes insertion order
    irrelevant. The empty context encodes as four zero bytes.

    Raises:
        ValidationException: a key or value is not a string or is not encodable as UTF-8
            (for example a lone surrogate from a JSON ``"\\ud800"`` escape).
    """
    if not ctx:
        return _EMPTY_CONTEXT
    pairs: list[tuple[bytes, bytes]] = []
    for key, value in ctx.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationException("EncryptionContext keys and values must be strings")
        try:
            pairs.append((key.encode("utf-8"), value.encode("utf-8")))
        except UnicodeEncodeError:
            raise ValidationException(
                "EncryptionContext keys and values must be valid UTF-8 strings"
            ) from None
    pairs.sort()
    out = [_U32.pack(len(pairs))]
    for k, v in pairs:
        out += (_U32.pack(len(k)), k, _U32.pack(len(v)), v)
    return b"".join(out)


def _derive_key(backing_key: bytes, prefix: bytes, nonce: bytes) -> bytes:
    # derive() takes any bytes-like object: no immutable copy of the backing key is made.
    return HKDF(algorithm=_SHA256, length=32, salt=nonce, info=_KDF_LABEL + prefix).derive(
        backing_key
    )


# A service seals under few distinct keys, and parsing a UUID string costs about as much as the
# AES-GCM encryption of a data key: remember the 16 bytes per key id (bounded; a malformed id
# raises ValueError, which is not cached).
@lru_cache(maxsize=1024)
def _key_id_bytes(key_id: str) -> bytes:
    return uuid.UUID(key_id).bytes


@lru_cache(maxsize=1024)
def _key_id_text(key_bytes: bytes) -> str:
    # The inverse of _key_id_bytes, for Decrypt. The bytes come from an unauthenticated blob,
    # so the cache is bounded; any 16 bytes form a UUID, so this never raises.
    return str(uuid.UUID(bytes=key_bytes))


def _check_backing_key(backing_key: bytes) -> None:
    if len(backing_key) != BACKING_KEY_SIZE:
        raise ValueError("backing_key must be 32 bytes")


def seal(
    *,
    key_id: str,
    key_version: int,
    backing_key: bytes,
    plaintext: bytes,
    encryption_context: Mapping[str, str],
    randbytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``plaintext`` under a backing key into a self-describing blob.

    Args:
        key_id: the KMS key's UUID (any form ``uuid.UUID`` accepts).
        key_version: the backing-key version, 0..2**32-1.
        backing_key: the 32-byte backing key of that version.
        plaintext: the data to protect (the service enforces KMS's 4096-byte limit).
        encryption_context: bound as AAD; the same mapping is needed to open the blob.
        randbytes: source of the 32-byte nonce, for tests.

    Returns:
        The blob (``len(plaintext) + 71`` bytes).

    Raises:
        ValueError: a malformed key id, key version, backing key or nonce source (caller bugs).
        ValidationException: the encryption context is not UTF-8 strings.
    """
    key_uuid = _key_id_bytes(key_id)
    if not 0 <= key_version <= 0xFFFFFFFF:
        raise ValueError("key_version must fit in an unsigned 32-bit integer")
    _check_backing_key(backing_key)
    aad_ctx = canonical_encryption_context(encryption_context)
    nonce = bytes(randbytes(NONCE_SIZE))
    if len(nonce) != NONCE_SIZE:
        raise ValueError("randbytes returned the wrong number of bytes")
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, key_uuid, key_version)
    header = prefix + nonce
    sealed = AESGCM(_derive_key(backing_key, prefix, nonce)).encrypt(
        _GCM_IV, bytes(plaintext), header + aad_ctx
    )
    return header + sealed


def _check_structure(blob: bytes) -> tuple[bytes, int]:
    """Check type, minimum length, magic and version; return the key id bytes and version."""
    if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) < BLOB_OVERHEAD:
        raise InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE)
    magic, version, key_bytes, key_version = _PREFIX.unpack_from(blob)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE)
    return key_bytes, key_version


def read_header(blob: bytes) -> BlobHeader:
    """Read the (not yet authenticated) header, so Decrypt can find the key without a KeyId.

    The header is only trustworthy after :func:`open_blob` succeeds; use it to choose the key.

    Raises:
        InvalidCiphertextException: too short, wrong magic or unknown format version.
    """
    key_bytes, key_version = _check_structure(blob)
    nonce = bytes(blob[_PREFIX.size : HEADER_SIZE])
    return BlobHeader(key_id=_key_id_text(key_bytes), key_version=key_version, nonce=nonce)


def open_blob(blob: bytes, *, backing_key: bytes, encryption_context: Mapping[str, str]) -> bytes:
    """Authenticate and decrypt a blob made by :func:`seal`.

    Args:
        blob: the ``CiphertextBlob``.
        backing_key: the backing key for the header's key id and version.
        encryption_context: must equal the context given to :func:`seal`.

    Returns:
        The plaintext.

    Raises:
        InvalidCiphertextException: malformed, tampered, truncated, another key or version,
            or a different encryption context; one message for all.
        ValidationException: the encryption context is not UTF-8 strings.
        ValueError: ``backing_key`` is not 32 bytes (a caller bug).
    """
    _check_backing_key(backing_key)
    _check_structure(blob)  # structure first: magic, version, minimum length
    data = bytes(blob)
    aad_ctx = canonical_encryption_context(encryption_context)
    header = data[:HEADER_SIZE]
    key = _derive_key(backing_key, header[: _PREFIX.size], header[_PREFIX.size :])
    try:
        return AESGCM(key).decrypt(_GCM_IV, data[HEADER_SIZE:], header + aad_ctx)
    except InvalidTag:
        raise InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE) from None
