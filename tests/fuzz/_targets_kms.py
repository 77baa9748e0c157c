"""Fuzz targets for the KMS side: the CMS envelope, the ciphertext blob and the JSON wire layer.

CMS mutants are built fresh (with a known recipient key, so the decrypt path past OAEP and
CBC is reached) or mutated at the BER TLV level (tags, OIDs, length forms, constructed strings),
which is where asn1crypto's lenient paths live. Blob mutants come from ``seal`` with a fixed test
key. Wire mutants are decoded JSON whose members, taken from botocore's KMS model, get values of
the wrong type, size or encoding.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

from _mutators import encode_tlv, mutate_tlv, parse_tlv
from _mutators_json import dump_json, mutate_json_value
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_kms._ciphertext import BLOB_OVERHEAD, BlobHeader, open_blob, read_header, seal
from enclave_kms.cms import (
    CmsDecryptionError,
    CmsFormatError,
    RecipientEnvelope,
    build_ciphertext_for_recipient,
    decrypt_ciphertext_for_recipient,
    parse_ciphertext_for_recipient,
)
from enclave_kms.errors import InvalidCiphertextException, KmsError
from enclave_kms.model import OPERATIONS
from enclave_kms.server._wire import decode_request, kms_service_model

__all__ = [
    "BLOB_CONTEXT",
    "BLOB_KEY",
    "BLOB_KEY_ID",
    "cms_key",
    "mutate_blob",
    "mutate_cms",
    "mutate_wire",
    "run_blob",
    "run_cms",
    "run_wire",
    "split_wire",
]

Raw = Callable[[bytes], bytes]

# --- CMS CiphertextForRecipient --------------------------------------------------------------


@cache
def cms_key() -> rsa.RSAPrivateKey:
    """The recipient key for this process (fresh: the fuzzer rebuilds envelopes for it)."""
    return rsa.generate_private_key(65537, 2048)


def run_cms(data: bytes) -> None:
    """Oracle: only CmsError escapes; parse and decrypt must agree on what is well-formed."""
    env: RecipientEnvelope | None
    try:
        env = parse_ciphertext_for_recipient(data)
    except CmsFormatError:
        env = None
    if env is not None:
        assert len(env.iv) == 16
        assert env.encrypted_content and len(env.encrypted_content) % 16 == 0
        assert env.rid_type in ("subject_key_identifier", "issuer_and_serial_number")
    try:
        plaintext = decrypt_ciphertext_for_recipient(data, cms_key())
    except CmsFormatError:
        assert env is None, "decrypt refused as malformed an envelope that parse accepted"
    except CmsDecryptionError as exc:
        assert env is not None, "decrypt got past parsing an envelope that parse refused"
        assert str(exc) == "CMS decryption failed (wrong key or corrupted envelope)"
    else:
        assert env is not None
        assert len(plaintext) < len(env.encrypted_content)


def mutate_cms(data: bytes, rng: random.Random, raw: Raw) -> bytes:
    """Fresh envelopes for our key, BER/DER TLV surgery, or plain byte mutation."""
    roll = rng.random()
    if roll < 0.1:
        return raw(data)
    if roll < 0.3:
        content = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 16, 32, 1500])))
        data = build_ciphertext_for_recipient(content, cms_key().public_key())
        if rng.random() < 0.3:  # corrupt the last CBC block: bad padding after a good OAEP
            data = data[:-20] + bytes([data[-20] ^ 1]) + data[-19:]
    try:
        nodes = parse_tlv(data)
    except ValueError:
        return raw(data)
    if rng.random() < 0.2:  # re-encode as DER-style definite lengths
        _definite(nodes)
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        try:
            mutate_tlv(nodes, rng)
        except (IndexError, ValueError):
            break
    return encode_tlv(nodes)


def _definite(nodes: list[Any]) -> None:
    for n in nodes:
        n.indefinite = False
        if n.children is not None:
            _definite(n.children)


# --- symmetric CiphertextBlob -----------------------------------------------------------------

BLOB_KEY = bytes(range(32))  # a test backing key, nothing secret
BLOB_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
BLOB_CONTEXT = {"purpose": "fuzz", "\u00e9": ""}


def run_blob(data: bytes) -> None:
    """Oracle: only InvalidCiphertextException escapes; open implies a readable header."""
    header: BlobHeader | None
    try:
        header = read_header(data)
    except InvalidCiphertextException:
        header = None
    if header is not None:
        assert str(uuid.UUID(header.key_id)) == header.key_id
        assert 0 <= header.key_version < 2**32
        assert len(header.nonce) == 32
    try:
        plaintext = open_blob(data, backing_key=BLOB_KEY, encryption_context=BLOB_CONTEXT)
    except InvalidCiphertextException:
        return
    assert header is not None, "open_blob accepted a blob whose header read_header refused"
    assert len(plaintext) == len(data) - BLOB_OVERHEAD


def mutate_blob(data: bytes, rng: random.Random, raw: Raw) -> bytes:
    """Fresh blobs (right or wrong key, version, context), then header-field changes."""
    if rng.random() < 0.3:
        data = seal(
            key_id=rng.choice([BLOB_KEY_ID, str(uuid.UUID(int=rng.getrandbits(128)))]),
            key_version=rng.choice([0, 1, 2**32 - 1]),
            backing_key=BLOB_KEY if rng.random() < 0.8 else bytes(32),
            plaintext=bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 32, 4096]))),
            encryption_context=BLOB_CONTEXT if rng.random() < 0.8 else {},
            randbytes=rng.randbytes,
        )
    buf = bytearray(data)
    op = rng.randrange(6)
    if op == 0 and len(buf) > 2:
        buf[2] = rng.choice([0, 2, 255])  # format version
    elif op == 1:
        buf[:2] = rng.choice([b"EK", b"ek", b"\x00\x00"])
    elif op == 2:
        del buf[rng.choice([0, 54, 55, 70, 71, 72]) :]
    elif op == 3 and len(buf) > 19:
        buf[19:23] = rng.randbytes(4)  # key version
    elif op == 4:
        return raw(bytes(buf))
    return bytes(buf)


# --- JSON request layer -----------------------------------------------------------------------

_OPS = tuple(sorted(OPERATIONS))


def split_wire(data: bytes) -> tuple[str, bytes]:
    """Input format: ``<OperationName>\\n<body>``; an unknown name picks an operation by length."""
    head, sep, body = data.partition(b"\n")
    name = head.decode("ascii", "replace")
    if not sep:
        return _OPS[len(data) % len(_OPS)], data
    return (name if name in OPERATIONS else _OPS[len(head) % len(_OPS)]), body


def run_wire(data: bytes) -> None:
    """Oracle: ``decode_request`` returns the operation's request type or raises a KmsError."""
    operation, body = split_wire(data)
    request_type = OPERATIONS[operation][0]
    try:
        request = decode_request(operation, body, request_type)
    except KmsError:
        return
    assert isinstance(request, request_type)


@cache
def _member_names(operation: str) -> list[str]:
    shape = kms_service_model().operation_model(operation).input_shape
    return sorted(shape.members) if shape is not None else []


def mutate_wire(data: bytes, rng: random.Random, raw: Raw) -> bytes:
    """Mutate the decoded JSON body with model member names; sometimes switch operation."""
    operation, body = split_wire(data)
    if rng.random() < 0.1:
        operation = rng.choice(_OPS)
    if rng.random() < 0.1:
        body = raw(body)
    else:
        try:
            doc = json.loads(body) if body.strip() else {}
        except (ValueError, RecursionError):
            doc = {}
        for _ in range(rng.randint(1, 3)):
            doc = mutate_json_value(doc, rng, lambda: _member_names(operation))
        body = dump_json(doc, rng)
    return operation.encode() + b"\n" + body
