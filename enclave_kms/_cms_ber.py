"""Hand-written BER framing for the ``CiphertextForRecipient`` envelope.

``asn1crypto`` emits DER only, but real KMS output (and the sdk-c parser in kmstool) needs the
outer layers in *indefinite-length* BER and the encrypted content as a constructed OCTET STRING
of definite chunks of at most 1000 bytes (kms-recipient.md §4-5). This module writes exactly
those few headers; everything definite (the recipientInfos SET and the content-encryption
AlgorithmIdentifier) is encoded by ``asn1crypto`` in :mod:`enclave_kms.cms` and passed in here
as DER bytes.

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

__all__ = [
    "CHUNK_SIZE",
    "EOC",
    "OID_DATA",
    "OID_ENVELOPED_DATA",
    "chunked_octet_string",
    "der_header",
    "frame_enveloped_data",
    "iter_chunks",
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
            _SEQUENCE_INDEFINITE,  # ContentInfo
            OID_ENVELOPED_DATA,
            _CONTEXT0_CONSTRUCTED_INDEFINITE,  # [0] EXPLICIT content
            _SEQUENCE_INDEFINITE,  # EnvelopedData
            # Version 2 because the only recipient is a KTRI v2 (RFC 5652 §6.1); sdk-c reads
            # this byte with CBS_get_u8 and requires exactly 2.
            _VERSION_2,
            recipient_infos_der,
            _SEQUENCE_INDEFINITE,  # EncryptedContentInfo
            OID_DATA,
            content_algorithm_der,
            _CONTEXT0_CONSTRUCTED_INDEFINITE,  # encryptedContent [0] IMPLICIT, constructed
            chunked_octet_string(encrypted_content),
            # Close [0] encryptedContent, EncryptedContentInfo, EnvelopedData, [0], ContentInfo.
            EOC * 5,
        )
    )
