"""The ``CiphertextForRecipient`` byte layout: hand-written BER framing around DER templates.

``asn1crypto`` emits DER only, but real KMS output (and the sdk-c parser in kmstool) needs the
outer layers in *indefinite-length* BER and the encrypted content as a constructed OCTET STRING
of definite chunks of at most 1000 bytes (kms-recipient.md §4-5). This module writes exactly
those few headers. Everything definite (the recipientInfos SET and the content-encryption
AlgorithmIdentifier) is encoded by ``asn1crypto``, once per shape, as templates that each
envelope fills in (:func:`recipient_infos_der`, :func:`content_algorithm_der`).

Layout written by :func:`frame_enveloped_data` (offsets for an RSA-2048 recipient)::

    0    30 80                 ContentInfo SEQUENCE, indefinite
    2    06 09 <id-envelopedData>
    13   a0 80                 [0] EXPLICIT, indefinite
    15   30 80                 EnvelopedData SEQUENCE, indefinite
    17   02 01 02              version 2
    20   <recipientInfos DER>  31 82 01 6b ... (368 bytes for RSA-2048)
    387  30 80                 EncryptedContentInfo SEQUENCE, indefinite
    389  06 09 <id-data>
    400  <AlgorithmIdentifier DER>  aes-256-cbc + 16-byte IV (31 bytes)
    431  a0 80                 encryptedContent [0] IMPLICIT, constructed, indefinite
    433  04 .. <chunk> ...     definite OCTET STRING chunks, at most 1000 bytes each
    ...  00 00 x 5             end-of-contents for the five indefinite layers
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Final

from asn1crypto import algos, cms, core

__all__ = [
    "CHUNK_SIZE",
    "EOC",
    "OID_DATA",
    "OID_ENVELOPED_DATA",
    "chunked_octet_string",
    "content_algorithm_der",
    "der_header",
    "frame_enveloped_data",
    "iter_chunks",
    "recipient_infos_der",
]

#: BouncyCastle's ``BEROctetString`` default chunk size, as seen in every real KMS sample.
CHUNK_SIZE = 1000

#: End-of-contents octets closing one indefinite-length element (X.690 §8.1.5).
EOC = b"\x00\x00"

#: DER of OBJECT IDENTIFIER 1.2.840.113549.1.7.3 (id-envelopedData, RFC 5652 §6.1).
OID_ENVELOPED_DATA = bytes.fromhex("06092a864886f70d010703")
#: DER of OBJECT IDENTIFIER 1.2.840.113549.1.7.1 (id-data, RFC 5652 §4).
OID_DATA = bytes.fromhex("06092a864886f70d010701")

_SEQUENCE_INDEFINITE = b"\x30\x80"
_CONTEXT0_CONSTRUCTED_INDEFINITE = b"\xa0\x80"
_VERSION_2 = b"\x02\x01\x02"
_TAG_OCTET_STRING = 0x04


def _sha256_with_null() -> dict[str, Any]:
    # Explicit NULL parameters, as in real KMS output (`30 0d ... 05 00`), not the absent form.
    return {"algorithm": "sha256", "parameters": core.Null()}


# The keyEncryptionAlgorithm is the same in every envelope: encode it once. (Building it anew
# each time made asn1crypto's dump() the slowest step of the whole build, ~2.5 ms.)
_KEY_ENCRYPTION_ALGORITHM_DER: Final = bytes(
    cms.KeyEncryptionAlgorithm(
        {
            "algorithm": "rsaes_oaep",
            "parameters": algos.RSAESOAEPParams(
                {
                    "hash_algorithm": _sha256_with_null(),
                    "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": _sha256_with_null()},
                    # p_source_algorithm left at its DEFAULT (empty label): DER omits [2].
                }
            ),
        }
    ).dump()
)


def _encode_recipient_infos(rid: bytes, encrypted_key: bytes) -> bytes:
    """The RecipientInfos SET (one KTRI v2 with this rid), encoded by asn1crypto."""
    ktri = cms.KeyTransRecipientInfo(
        {
            "version": "v2",  # RFC 5652 §6.2.1: v2 when rid is a subjectKeyIdentifier
            "rid": cms.RecipientIdentifier(name="subject_key_identifier", value=rid),
            "key_encryption_algorithm": cms.KeyEncryptionAlgorithm.load(
                _KEY_ENCRYPTION_ALGORITHM_DER
            ),
            "encrypted_key": encrypted_key,
        }
    )
    return bytes(cms.RecipientInfos([cms.RecipientInfo(name="ktri", value=ktri)]).dump())


def _encode_content_algorithm(iv: bytes) -> bytes:
    """The aes-256-cbc AlgorithmIdentifier with ``iv``, encoded by asn1crypto."""
    return bytes(algos.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": iv}).dump())


# A placeholder rid for the template below: asn1crypto encodes it once and each envelope puts
# its own 32-byte rid in its place (the length, and so every header, is the same).
_RID_PLACEHOLDER: Final = b"\xa5" * 32


@lru_cache(maxsize=64)
def _recipient_infos_template(encrypted_key_size: int) -> tuple[bytes, bytes]:
    """The RecipientInfos DER for one encryptedKey length, split around the rid.

    The rid is always 32 bytes and the encryptedKey (the last field) always as long as the
    modulus, so every length in the encoding depends on the modulus size alone: asn1crypto
    encodes the structure once per size, with placeholders, and each envelope joins
    ``head + rid + tail + encryptedKey``. Keying on the size rather than on the recipient key
    matters: enclave clients often make a fresh RSA key per request, and a per-key template
    would then be re-encoded (~50 us, more than the RSA encryption) on every call. A test
    checks the result byte for byte against the direct asn1crypto encoding.
    """
    der = _encode_recipient_infos(_RID_PLACEHOLDER, bytes(encrypted_key_size))
    head, placeholder, tail = der[: len(der) - encrypted_key_size].partition(_RID_PLACEHOLDER)
    if not placeholder or _RID_PLACEHOLDER in tail:  # the placeholder must occur exactly once
        raise RuntimeError("RecipientInfos template: rid placeholder not unique")
    return head, tail


def recipient_infos_der(rid: bytes, encrypted_key: bytes) -> bytes:
    """DER of the RecipientInfos SET: one KTRI v2, rid as subjectKeyIdentifier, RSAES-OAEP.

    Args:
        rid: the 32-byte subjectKeyIdentifier.
        encrypted_key: the RSA-OAEP-wrapped CEK.

    Raises:
        ValueError: ``rid`` is not 32 bytes.
    """
    if len(rid) != len(_RID_PLACEHOLDER):
        raise ValueError("rid must be 32 bytes")
    head, tail = _recipient_infos_template(len(encrypted_key))
    return b"".join((head, rid, tail, encrypted_key))


# The IV is the last field and always 16 bytes: the same reasoning as above.
_IV_SIZE: Final = 16
_CONTENT_ALGORITHM_PREFIX: Final = _encode_content_algorithm(bytes(_IV_SIZE))[:-_IV_SIZE]


def content_algorithm_der(iv: bytes) -> bytes:
    """DER of the aes-256-cbc AlgorithmIdentifier carrying ``iv``.

    Raises:
        ValueError: ``iv`` is not 16 bytes.
    """
    if len(iv) != _IV_SIZE:
        raise ValueError("iv must be 16 bytes")
    return _CONTENT_ALGORITHM_PREFIX + iv


def der_header(tag: int, length: int) -> bytes:
    """Return a definite-length header with the minimal length encoding (X.690 §10.1).

    The sdk-c parser reads chunks with DER-strict ``CBS_get_asn1``, which rejects non-minimal
    lengths, so ``04 81 10`` for 16 bytes would break kmstool where ``04 10`` works.

    Raises:
        ValueError: if ``tag`` is not a single-octet tag or ``length`` is negative.
    """
    if not 0 <= tag <= 0xFF or (tag & 0x1F) == 0x1F:
        raise ValueError("only single-octet tags are supported")
    if length < 0:
        raise ValueError("length must be non-negative")
    if length < 0x80:
        return bytes((tag, length))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(body))) + body


def iter_chunks(data: bytes, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield ``data`` in consecutive slices of at most ``size`` bytes (none if it is empty)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def chunked_octet_string(data: bytes, size: int = CHUNK_SIZE) -> bytes:
    """Encode ``data`` as the *contents* of a constructed OCTET STRING: definite chunks.

    Each chunk is a primitive ``04 <len> <bytes>`` with a minimal length, so a 1000-byte
    chunk gets the ``04 82 03 e8`` header real KMS output carries.
    """
    if len(data) <= size:
        # One chunk (every wrapped data key): skip the generator, same bytes.
        return der_header(_TAG_OCTET_STRING, len(data)) + data if data else b""
    return b"".join(der_header(_TAG_OCTET_STRING, len(c)) + c for c in iter_chunks(data, size))


def frame_enveloped_data(
    *, recipient_infos_der: bytes, content_algorithm_der: bytes, encrypted_content: bytes
) -> bytes:
    """Assemble the complete BER ``ContentInfo`` around pre-encoded definite parts.

    Args:
        recipient_infos_der: DER of the ``RecipientInfos`` SET (one KTRI v2).
        content_algorithm_der: DER of the content-encryption ``AlgorithmIdentifier``.
        encrypted_content: the AES-256-CBC ciphertext, chunked here.

    Returns:
        The BER encoding laid out as in the module docstring.
    """
    return b"".join(
        (
            _HEAD,
            recipient_infos_der,
            _ENCRYPTED_CONTENT_INFO_HEAD,
            content_algorithm_der,
            _CONTEXT0_CONSTRUCTED_INDEFINITE,  # encryptedContent [0] IMPLICIT, constructed
            chunked_octet_string(encrypted_content),
            _TAIL,
        )
    )


# The constant runs of the layout, joined once at import.
_HEAD = b"".join(
    (
        _SEQUENCE_INDEFINITE,  # ContentInfo
        OID_ENVELOPED_DATA,
        _CONTEXT0_CONSTRUCTED_INDEFINITE,  # [0] EXPLICIT content
        _SEQUENCE_INDEFINITE,  # EnvelopedData
        # Version 2 because the only recipient is a KTRI v2 (RFC 5652 §6.1); sdk-c reads this
        # byte with CBS_get_u8 and requires exactly 2.
        _VERSION_2,
    )
)
_ENCRYPTED_CONTENT_INFO_HEAD = _SEQUENCE_INDEFINITE + OID_DATA  # EncryptedContentInfo
# Close [0] encryptedContent, EncryptedContentInfo, EnvelopedData, [0], ContentInfo.
_TAIL = EOC * 5
