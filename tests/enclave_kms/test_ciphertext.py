"""The symmetric CiphertextBlob: layout, round trip, tamper and context binding."""

from __future__ import annotations

import struct
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_kms._ciphertext import (
    BLOB_OVERHEAD,
    HEADER_SIZE,
    BlobHeader,
    canonical_encryption_context,
    open_blob,
    read_header,
    seal,
)
from enclave_kms.errors import InvalidCiphertextException, ValidationException

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
BACKING = bytes(range(32))
CTX = {"purpose": "test", "tenant": "a"}
PLAINTEXT = b"\x01" * 32


def _nonce(n: int) -> bytes:
    return bytes([0xA5]) * n


def _blob(**kw: object) -> bytes:
    args: dict[str, object] = {
        "key_id": KEY_ID,
        "key_version": 7,
        "backing_key": BACKING,
        "plaintext": PLAINTEXT,
        "encryption_context": CTX,
    }
    args.update(kw)
    return seal(**args)  # type: ignore[arg-type]


BLOB = _blob()


def test_round_trip_and_size() -> None:
    assert open_blob(BLOB, backing_key=BACKING, encryption_context=CTX) == PLAINTEXT
    assert len(BLOB) == 32 + BLOB_OVERHEAD == 103  # AWS: 184 bytes for a 32-byte data key


@pytest.mark.parametrize("size", [0, 1, 16, 1024, 4096])
def test_round_trip_sizes(size: int) -> None:
    plaintext = bytes(i & 0xFF for i in range(size))
    blob = _blob(plaintext=plaintext, encryption_context={})
    assert len(blob) == size + BLOB_OVERHEAD
    assert open_blob(blob, backing_key=BACKING, encryption_context={}) == plaintext


def test_layout_and_independent_decryption() -> None:
    blob = _blob(randbytes=_nonce)
    assert blob[:3] == b"EK\x01"
    assert blob[3:19] == uuid.UUID(KEY_ID).bytes
    assert struct.unpack(">I", blob[19:23]) == (7,)
    assert blob[23:55] == _nonce(32)
    # Re-derive with the spec'd KDF and open with a plain AES-GCM: the spec is the format.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=blob[23:55], info=b"enclave-kms blob" + blob[:23]
    ).derive(BACKING)
    aad = blob[:HEADER_SIZE] + canonical_encryption_context(CTX)
    assert AESGCM(derived).decrypt(bytes(12), blob[HEADER_SIZE:], aad) == PLAINTEXT


def test_read_header_finds_the_key_without_a_key_id() -> None:
    header = read_header(_blob(randbytes=_nonce))
    assert header == BlobHeader(key_id=KEY_ID, key_version=7, nonce=_nonce(32))


def test_uppercase_key_id_is_normalised() -> None:
    assert read_header(_blob(key_id=KEY_ID.upper())).key_id == KEY_ID


def test_fresh_nonce_per_blob() -> None:
    assert _blob() != _blob()
    assert read_header(_blob()).nonce != read_header(_blob()).nonce


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_single_bit_flip_is_rejected(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(BLOB) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(BLOB)
    flipped[position] ^= 1 << bit
    with pytest.raises(InvalidCiphertextException):
        open_blob(bytes(flipped), backing_key=BACKING, encryption_context=CTX)


def test_every_truncation_is_rejected() -> None:
    for end in range(len(BLOB)):
        with pytest.raises(InvalidCiphertextException):
            open_blob(BLOB[:end], backing_key=BACKING, encryption_context=CTX)
    with pytest.raises(InvalidCiphertextException):
        open_blob(BLOB + b"\x00", backing_key=BACKING, encryption_context=CTX)


@pytest.mark.parametrize(
    "ctx",
    [
        {},
        {"purpose": "test"},
        {"purpose": "test", "tenant": "b"},
        {"purpose": "test", "tenant": "a", "extra": ""},
        {"Purpose": "test", "tenant": "a"},
    ],
)
def test_changed_context_is_rejected_like_tampering(ctx: dict[str, str]) -> None:
    with pytest.raises(InvalidCiphertextException) as changed:
        open_blob(BLOB, backing_key=BACKING, encryption_context=ctx)
    flipped = bytearray(BLOB)
    flipped[-1] ^= 1
    with pytest.raises(InvalidCiphertextException) as tampered:
        open_blob(bytes(flipped), backing_key=BACKING, encryption_context=CTX)
    assert str(changed.value) == str(tampered.value)


def test_context_order_does_not_matter() -> None:
    reordered = {"tenant": "a", "purpose": "test"}
    assert open_blob(BLOB, backing_key=BACKING, encryption_context=reordered) == PLAINTEXT


def test_other_backing_key_or_version_fails() -> None:
    with pytest.raises(InvalidCiphertextException):
        open_blob(BLOB, backing_key=bytes(32), encryption_context=CTX)
    # Same backing key, but the header says another version or key: the KDF info and the AAD
    # both bind them, so rewriting the header is detected.
    for start, replacement in ((19, struct.pack(">I", 8)), (3, uuid.uuid4().bytes)):
        forged = BLOB[:start] + replacement + BLOB[start + len(replacement) :]
        with pytest.raises(InvalidCiphertextException):
            open_blob(forged, backing_key=BACKING, encryption_context=CTX)


def test_blob_of_another_key_fails() -> None:
    other = _blob(key_id=str(uuid.uuid4()), backing_key=b"\x42" * 32)
    assert read_header(other).key_id != KEY_ID
    with pytest.raises(InvalidCiphertextException):
        open_blob(other, backing_key=BACKING, encryption_context=CTX)


@pytest.mark.parametrize(
    "blob",
    [b"", b"EK", b"\x01\x02\x03\x00" + bytes(180), b"EK\x02" + bytes(100), b"XX\x01" + bytes(100)],
)
def test_read_header_rejects_foreign_blobs(blob: bytes) -> None:
    with pytest.raises(InvalidCiphertextException):
        read_header(blob)


def test_canonical_context_is_unambiguous_and_order_independent() -> None:
    assert canonical_encryption_context({"a": "bc"}) != canonical_encryption_context({"ab": "c"})
    assert canonical_encryption_context({"a": "b", "c": "d"}) == canonical_encryption_context(
        {"c": "d", "a": "b"}
    )
    assert canonical_encryption_context({}) == b"\x00\x00\x00\x00"
    assert canonical_encryption_context({"k": "é"}) == (
        b"\x00\x00\x00\x01" + b"\x00\x00\x00\x01k" + b"\x00\x00\x00\x02" + "é".encode()
    )


# UTF-8-encodable text (no lone surrogates; those are rejected, see the next test).
_TEXT = st.text(st.characters(codec="utf-8"), max_size=8)
_CONTEXTS = st.dictionaries(_TEXT, _TEXT, max_size=4)


@settings(max_examples=200, deadline=None)
@given(_CONTEXTS, _CONTEXTS)
def test_canonical_context_is_injective(a: dict[str, str], b: dict[str, str]) -> None:
    assert (canonical_encryption_context(a) == canonical_encryption_context(b)) == (a == b)


def test_invalid_context_and_arguments() -> None:
    with pytest.raises(ValidationException):
        canonical_encryption_context({"k": "\ud800"})
    with pytest.raises(ValidationException):
        canonical_encryption_context({"k": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        _blob(key_id="not-a-uuid")
    with pytest.raises(ValueError):
        _blob(key_version=2**32)
    with pytest.raises(ValueError):
        _blob(backing_key=bytes(16))
    with pytest.raises(ValueError):
        _blob(randbytes=lambda n: bytes(n - 1))


@pytest.mark.parametrize(
    "spelling",
    [KEY_ID, KEY_ID.upper(), "{" + KEY_ID + "}", "urn:uuid:" + KEY_ID, KEY_ID.replace("-", "")],
)
def test_every_uuid_spelling_gives_the_same_header(spelling: str) -> None:
    # The parsed key id is cached per spelling; each spelling must still map to the UUID bytes.
    blob = _blob(key_id=spelling, randbytes=_nonce)
    assert blob[3:19] == uuid.UUID(KEY_ID).bytes
    assert read_header(blob).key_id == KEY_ID


def test_malformed_key_id_fails_every_time() -> None:
    # A failed parse is not cached as a result: the second attempt raises too.
    for _ in range(2):
        with pytest.raises(ValueError):
            _blob(key_id="1234abcd-12ab-34cd-56ef-1234567890a")


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.integers(0, 2**32 - 1))
def test_header_round_trips_any_key_id_and_version(key_bytes: bytes, version: int) -> None:
    key_id = str(uuid.UUID(bytes=key_bytes))
    blob = _blob(key_id=key_id, key_version=version, encryption_context={})
    assert read_header(blob) == BlobHeader(key_id, version, blob[23:55])
    assert open_blob(blob, backing_key=BACKING, encryption_context={}) == PLAINTEXT


def test_empty_context_blob_matches_independent_construction() -> None:
    # Pinned nonce, empty context (its encoding is a shared constant): rebuild the whole blob
    # from the spec with plain HKDF and AES-GCM and compare byte for byte.
    blob = _blob(encryption_context={}, randbytes=_nonce)
    header = b"EK\x01" + uuid.UUID(KEY_ID).bytes + struct.pack(">I", 7) + _nonce(32)
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_nonce(32),
        info=b"enclave-kms blob" + header[:23],
    ).derive(BACKING)
    expected = header + AESGCM(derived).encrypt(bytes(12), PLAINTEXT, header + bytes(4))
    assert blob == expected
    assert _blob(encryption_context=CTX, randbytes=_nonce) != expected  # the context is bound
