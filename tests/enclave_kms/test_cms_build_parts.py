"""CiphertextForRecipient building blocks, each against an independent encoding.

The builder joins templates that asn1crypto encodes once per modulus size with the
per-envelope fields, encrypts the content itself and chunks it itself: each piece is checked
here against asn1crypto, cryptography or a plain reference encoder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest
from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from test_cms import _counter_randbytes

from enclave_kms._cms_ber import CHUNK_SIZE, chunked_octet_string
from enclave_kms.cms import (
    build_ciphertext_for_recipient,
    parse_ciphertext_for_recipient,
    recipient_key_identifier,
)


@pytest.fixture(scope="module")
def key2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _fixed_randbytes(*draws: bytes) -> Callable[[int], bytes]:
    """A ``randbytes`` that returns the given values in order."""
    pending = list(draws)

    def randbytes(n: int) -> bytes:
        value = pending.pop(0)
        assert len(value) == n
        return value

    return randbytes


def _direct_recipient_infos(public: rsa.RSAPublicKey, encrypted_key: bytes) -> bytes:
    # The RecipientInfos encoded directly by asn1crypto, field by field, independently of the
    # module's templates: KTRI v2, rid = SHA-256 of the SPKI, RSAES-OAEP SHA-256 with NULLs.
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sha256 = {"algorithm": "sha256", "parameters": core.Null()}
    ktri = cms.KeyTransRecipientInfo(
        {
            "version": "v2",
            "rid": cms.RecipientIdentifier(
                name="subject_key_identifier", value=hashlib.sha256(spki).digest()
            ),
            "key_encryption_algorithm": {
                "algorithm": "rsaes_oaep",
                "parameters": algos.RSAESOAEPParams(
                    {
                        "hash_algorithm": sha256,
                        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": sha256},
                    }
                ),
            },
            "encrypted_key": encrypted_key,
        }
    )
    return bytes(cms.RecipientInfos([cms.RecipientInfo(name="ktri", value=ktri)]).dump())


@pytest.mark.parametrize("bits", [2048, 3000, 3072, 4096])
def test_spliced_encoding_equals_the_direct_asn1crypto_encoding(bits: int) -> None:
    # The builder joins the per-envelope rid, encryptedKey and IV with templates asn1crypto
    # encoded once per modulus size; the result must be exactly what asn1crypto encodes
    # directly, for several keys of one size (sharing a template) and for an odd size.
    for _ in range(2):
        public = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
        for _ in range(2):
            cek, iv = os.urandom(32), os.urandom(16)
            envelope = build_ciphertext_for_recipient(
                b"k" * 32, public, randbytes=_fixed_randbytes(cek, iv)
            )
            parsed = parse_ciphertext_for_recipient(envelope)
            direct_infos = _direct_recipient_infos(public, parsed.encrypted_key)
            direct_alg = algos.EncryptionAlgorithm(
                {"algorithm": "aes256_cbc", "parameters": iv}
            ).dump()
            # version 2 is followed directly by the RecipientInfos SET, as in real KMS output.
            assert envelope[17:20] == b"\x02\x01\x02"
            assert envelope[20 : 20 + len(direct_infos)] == direct_infos
            after = envelope[20 + len(direct_infos) :]
            assert (
                after[: 2 + 11 + len(direct_alg)]
                == b"\x30\x80" + bytes.fromhex("06092a864886f70d010701") + direct_alg
            )
            assert parsed.iv == iv
            assert parsed.rid == recipient_key_identifier(public)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 33, 1000])
def test_content_encryption_is_aes_cbc_over_pkcs7(key2048: rsa.RSAPrivateKey, size: int) -> None:
    # Pinned CEK and IV: the encryptedContent must be exactly AES-256-CBC over the content with
    # PKCS #7 padding as cryptography's own padder computes it.
    content = os.urandom(size)
    ours = build_ciphertext_for_recipient(
        content, key2048.public_key(), randbytes=_counter_randbytes()
    )
    cek, iv = bytes(range(32)), bytes(range(32, 48))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    expected = encryptor.update(padded) + encryptor.finalize()
    assert parse_ciphertext_for_recipient(ours).encrypted_content == expected


def _reference_chunks(data: bytes) -> bytes:
    # Independent encoder: each chunk as 04, minimal definite length, bytes.
    out = b""
    for start in range(0, len(data), CHUNK_SIZE):
        chunk = data[start : start + CHUNK_SIZE]
        n = len(chunk)
        length = (
            bytes([n])
            if n < 128
            else bytes([0x81, n])
            if n < 256
            else bytes([0x82]) + n.to_bytes(2, "big")
        )
        out += b"\x04" + length + chunk
    return out


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 999, 1000, 1001, 2000, 2001, 4112])
def test_chunked_octet_string_matches_reference(size: int) -> None:
    data = os.urandom(size)
    assert chunked_octet_string(data) == _reference_chunks(data)
