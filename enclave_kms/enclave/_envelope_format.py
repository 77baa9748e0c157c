"""Byte layout of an envelope message (version 1).

All integers are big-endian::

    offset  size  field
    0       4     magic  b"EKEV"
    4       1     version = 1
    5       1     suite   = 1  (AES-256-GCM, 12-byte nonce, 16-byte tag, data key from KMS)
    6       2     n = length of the KMS CiphertextBlob (1..6144, the KMS CiphertextType limit)
    8       n     CiphertextBlob (the data key encrypted under the KMS key)
    8+n     2     m = number of encryption-context pairs
    ...           m x (u16 key length, UTF-8 key, u16 value length, UTF-8 value),
                  keys strictly ascending by their UTF-8 bytes (one canonical encoding)
    h       12    nonce
    h+12    rest  AES-256-GCM ciphertext followed by its 16-byte tag

The AAD of the AES-GCM encryption is bytes ``[0, h)``: the header including the
CiphertextBlob and the encryption context, so neither can be swapped or edited without the
tag failing. The context is also sent to KMS, which binds it to the CiphertextBlob.

Parsing is strict: every length is checked against the remaining bytes, unknown versions and
suites are refused, and a non-canonical context encoding is refused (so one message has exactly
one valid encoding).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from enclave_kms.enclave.errors import ConfigurationError, EnvelopeFormatError

__all__ = [
    "MAGIC",
    "NONCE_SIZE",
    "SUITE_AES_256_GCM",
    "TAG_SIZE",
    "VERSION",
    "ParsedMessage",
    "encode_header",
    "parse_message",
]

MAGIC = b"EKEV"
VERSION = 1
SUITE_AES_256_GCM = 1
NONCE_SIZE = 12
TAG_SIZE = 16
# kms-recipient.md §3: CiphertextBlob is 1..6144 bytes.
_MAX_BLOB = 6144
_U16_MAX = 0xFFFF


@dataclass(frozen=True)
class ParsedMessage:
    """The parts of an envelope message.

    Attributes:
        version: the format version (1).
        suite: the algorithm suite (1: AES-256-GCM).
        ciphertext_blob: the KMS CiphertextBlob of the data key.
        encryption_context: the encryption context (read-only).
        header: the authenticated header bytes (the AES-GCM AAD).
        nonce: the 12-byte AES-GCM nonce.
        ciphertext: the AES-GCM ciphertext including its 16-byte tag.
    """

    version: int
    suite: int
    ciphertext_blob: bytes
    encryption_context: Mapping[str, str]
    header: bytes
    nonce: bytes
    ciphertext: bytes


def _utf8(value: object) -> bytes:
    if not isinstance(value, str):
        raise ConfigurationError("encryption context keys and values must be strings")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError("encryption context strings must be valid Unicode") from None


def _encode_str(value: str, what: str) -> bytes:
    data = _utf8(value)
    if len(data) > _U16_MAX:
        raise ConfigurationError(f"an encryption context {what} is longer than 65535 bytes")
    return struct.pack(">H", len(data)) + data


def encode_header(ciphertext_blob: bytes, encryption_context: Mapping[str, str]) -> bytes:
    """Return the header (the AAD) for a blob and context.

    Raises:
        ConfigurationError: the blob or context does not fit the format.
    """
    if not 1 <= len(ciphertext_blob) <= _MAX_BLOB:
        raise ConfigurationError(f"CiphertextBlob must be 1..{_MAX_BLOB} bytes")
    if len(encryption_context) > _U16_MAX:
        raise ConfigurationError("too many encryption context pairs")
    # Sort by the raw UTF-8 key bytes (not the length-prefixed form): parse_message checks
    # exactly this order.
    pairs = [
        (_encode_str(k, "key"), _encode_str(v, "value"))
        for k, v in sorted(encryption_context.items(), key=lambda kv: _utf8(kv[0]))
    ]
    parts = [
        MAGIC,
        bytes([VERSION, SUITE_AES_256_GCM]),
        struct.pack(">H", len(ciphertext_blob)),
        ciphertext_blob,
        struct.pack(">H", len(pairs)),
    ]
    for key, value in pairs:
        parts += [key, value]
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise EnvelopeFormatError(f"envelope message is truncated in the {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u16(self, what: str) -> int:
        value: int = struct.unpack(">H", self.take(2, what))[0]
        return value

    def text(self, what: str) -> tuple[bytes, str]:
        raw = self.take(self.u16(what), what)
        try:
            return raw, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeFormatError(f"envelope {what} is not UTF-8") from None


def parse_message(message: bytes) -> ParsedMessage:
    """Parse an envelope message without decrypting it.

    Args:
        message: the bytes produced by :meth:`EnvelopeCipher.encrypt`.

    Returns:
        The parsed parts; the encryption context can be checked before calling KMS.

    Raises:
        EnvelopeFormatError: the message is truncated, of an unknown version or suite, or not
            canonically encoded.
    """
    if not isinstance(message, bytes | bytearray | memoryview):
        raise EnvelopeFormatError("an envelope message must be bytes")
    reader = _Reader(bytes(message))
    if reader.take(len(MAGIC), "magic") != MAGIC:
        raise EnvelopeFormatError("not an envelope message (bad magic)")
    version, suite = reader.take(2, "version")
    if version != VERSION:
        raise EnvelopeFormatError(f"unsupported envelope version {version}")
    if suite != SUITE_AES_256_GCM:
        raise EnvelopeFormatError(f"unsupported envelope algorithm suite {suite}")
    blob_len = reader.u16("CiphertextBlob length")
    if not 1 <= blob_len <= _MAX_BLOB:
        raise EnvelopeFormatError(f"envelope CiphertextBlob length {blob_len} is out of range")
    blob = reader.take(blob_len, "CiphertextBlob")
    context: dict[str, str] = {}
    previous: bytes | None = None
    for _ in range(reader.u16("encryption context count")):
        raw_key, key = reader.text("encryption context key")
        _, value = reader.text("encryption context value")
        if previous is not None and raw_key <= previous:
            raise EnvelopeFormatError("envelope encryption context is not in canonical order")
        previous = raw_key
        context[key] = value
    header = reader.data[: reader.pos]
    nonce = reader.take(NONCE_SIZE, "nonce")
    ciphertext = reader.data[reader.pos :]
    if len(ciphertext) < TAG_SIZE:
        raise EnvelopeFormatError("envelope message is truncated in the ciphertext")
    return ParsedMessage(
        version=version,
        suite=suite,
        ciphertext_blob=blob,
        encryption_context=MappingProxyType(context),
        header=header,
        nonce=nonce,
        ciphertext=ciphertext,
    )
