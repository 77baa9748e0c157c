"""The attestation document: a frozen, typed view of the payload, with its strict schema.

This module decodes and checks structure only; it verifies nothing. Use
:class:`attestation.Verifier` to establish that a document is authentic.

The schema follows what real hardware emits (nitro-attestation.md §2), not the stricter text of
the AWS doc that genuine documents violate: the three optional fields may be CBOR ``null`` and
hold 0..1024 bytes; the six mandatory ones may not be null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final, NoReturn

from ._cbor import loads_strict
from ._cose import decode_sign1
from .errors import MalformedDocumentError

__all__ = ["MAX_DOCUMENT_SIZE", "AttestationDocument", "parse_document"]

#: Largest input accepted, checked before any decoding. The NSM's response buffer is 0x3000 =
#: 12288 bytes (nsm-api ``src/driver/mod.rs``) and the largest real document is 7539 bytes;
#: 16 KiB leaves headroom for tag 18 and for test PKIs with larger certificates.
MAX_DOCUMENT_SIZE: Final = 16 * 1024

#: PCR length per ``digest`` (nsm-api ``Digest`` enum); hardware only emits SHA384.
PCR_LENGTHS: Final[Mapping[str, int]] = MappingProxyType({"SHA256": 32, "SHA384": 48, "SHA512": 64})

_MANDATORY: Final = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
_OPTIONAL: Final = ("public_key", "user_data", "nonce")
_KNOWN: Final = frozenset(_MANDATORY + _OPTIONAL)
_OPTIONAL_MAX: Final = 1024  # CDDL 0..1024, and real documents reach 1024 (§2)
_CERT_MAX: Final = 1024
_PCR_COUNT: Final = 32  # the NSM has 32 PCRs: indexes 0..31
_PCR_INDEXES: Final = frozenset(range(_PCR_COUNT))
_ONLY_BYTES: Final = frozenset({bytes})
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIMESTAMP_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z, datetime's limit


@dataclass(frozen=True, slots=True)
class AttestationDocument:
    """The decoded payload of a Nitro attestation document (not by itself verified).

    Attributes:
        module_id: the enclave's id, ``i-<instance>-enc<16 hex>`` on hardware.
        digest: the PCR hash, ``"SHA384"`` on hardware.
        timestamp: creation time, an aware UTC datetime (millisecond resolution).
        timestamp_ms: the raw timestamp, milliseconds since the Unix epoch.
        pcrs: PCR index → value (read-only mapping).
        certificate: DER of the signing (leaf) certificate.
        cabundle: DER certificates as sent, root first on hardware. Never trusted by itself.
        public_key: the enclave-supplied public key bytes, or ``None`` (content unchecked).
        user_data: enclave-supplied data, or ``None``.
        nonce: enclave-supplied nonce, or ``None``.
    """

    module_id: str
    digest: str
    timestamp_ms: int
    pcrs: Mapping[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None
    timestamp: datetime = field(init=False)

    def __post_init__(self) -> None:
        # Stored, not recomputed on each access; object.__setattr__ because the class is frozen.
        object.__setattr__(self, "timestamp", _EPOCH + timedelta(milliseconds=self.timestamp_ms))
        if not isinstance(self.pcrs, MappingProxyType):
            object.__setattr__(self, "pcrs", MappingProxyType(dict(self.pcrs)))

    @property
    def is_debug_mode(self) -> bool:
        """Whether PCR0, PCR1 and PCR2 are all zero, the mark of ``--debug-mode`` (§3).

        A descriptive fact for display; enforce it with :class:`attestation.policy.RejectDebugMode`.
        """
        return all(i in self.pcrs and not any(self.pcrs[i]) for i in (0, 1, 2))

    @classmethod
    def from_cbor(cls, payload: bytes) -> AttestationDocument:
        """Decode a payload (the COSE_Sign1 payload bstr) and check its schema (§5 step 2).

        Args:
            payload: the CBOR-encoded attestation document map.

        Returns:
            The decoded document. Nothing about it is verified.

        Raises:
            MalformedDocumentError: the payload is not strict CBOR or breaks the schema;
                the message names the field.
        """
        item = loads_strict(payload, field="payload")
        if not isinstance(item, dict):
            raise MalformedDocumentError("must be a CBOR map", field="payload")
        # Set and tuple operations run in C; the first offender is looked up only on failure.
        # Decoded keys are int, str or bytes, for which set membership and == agree.
        if not item.keys() <= _KNOWN:
            unknown = next(k for k in item if k not in _KNOWN)
            raise MalformedDocumentError(f"unknown key {unknown!r}", field="payload")
        mandatory = tuple(map(item.get, _MANDATORY))
        if None in mandatory:
            key = _MANDATORY[mandatory.index(None)]
            raise MalformedDocumentError("is missing or null", field=f"payload.{key}")

        module_id, digest, timestamp, pcrs, certificate, cabundle = mandatory
        if not isinstance(module_id, str) or not module_id:
            raise MalformedDocumentError(
                "must be a non-empty text string", field="payload.module_id"
            )
        if not isinstance(digest, str) or digest not in PCR_LENGTHS:
            raise MalformedDocumentError("must be SHA256, SHA384 or SHA512", field="payload.digest")
        if type(timestamp) is not int or not 0 < timestamp <= _MAX_TIMESTAMP_MS:
            raise MalformedDocumentError(
                "must be a positive integer of milliseconds", field="payload.timestamp"
            )
        return cls(
            module_id=module_id,
            digest=digest,
            timestamp_ms=timestamp,
            pcrs=_pcrs(pcrs, PCR_LENGTHS[digest]),
            certificate=_bstr(certificate, "certificate", 1, _CERT_MAX),
            cabundle=_cabundle(cabundle),
            public_key=_optional(item, "public_key"),
            user_data=_optional(item, "user_data"),
            nonce=_optional(item, "nonce"),
        )


def parse_document(data: bytes) -> AttestationDocument:
    """Decode a whole COSE_Sign1 attestation document without verifying anything.

    For display (``nitro-attest inspect``) and diagnostics. Never act on the result: use
    :meth:`attestation.Verifier.verify`.

    Args:
        data: the COSE_Sign1 bytes, tagged (tag 18) or untagged.

    Returns:
        The decoded, schema-checked document.

    Raises:
        MalformedDocumentError: the bytes are not a well-formed document.
        UnsupportedAlgorithmError: the COSE algorithm is not ES384.
    """
    return AttestationDocument.from_cbor(decode_sign1(check_size(data)).payload)


def check_size(data: bytes) -> bytes:
    """Bound the input before any decoding (see :data:`MAX_DOCUMENT_SIZE`).

    Returns:
        The input as ``bytes`` (a ``bytearray`` or ``memoryview`` is copied).

    Raises:
        MalformedDocumentError: not bytes, or larger than the bound.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedDocumentError("input must be bytes", field="cose")
    if len(data) > MAX_DOCUMENT_SIZE:
        raise MalformedDocumentError(
            f"{len(data)} bytes exceeds the {MAX_DOCUMENT_SIZE}-byte limit", field="cose"
        )
    return bytes(data)


def _bstr(value: object, name: str, low: int, high: int) -> bytes:
    if not isinstance(value, bytes):
        raise MalformedDocumentError("must be a byte string", field=f"payload.{name}")
    if not low <= len(value) <= high:
        raise MalformedDocumentError(
            f"length {len(value)} is outside {low}..{high}", field=f"payload.{name}"
        )
    return value


def _optional(item: dict[object, object], name: str) -> bytes | None:
    # Absent and null both mean "not set": hardware encodes unset optionals as null (§2).
    value = item.get(name)
    return None if value is None else _bstr(value, name, 0, _OPTIONAL_MAX)


def _pcrs(value: object, length: int) -> Mapping[int, bytes]:
    if not isinstance(value, dict):
        raise MalformedDocumentError("must be a map", field="payload.pcrs")
    if not 1 <= len(value) <= _PCR_COUNT:
        raise MalformedDocumentError(
            f"must hold 1..{_PCR_COUNT} entries, not {len(value)}", field="payload.pcrs"
        )
    # The common case checked in C: the strict decoder's keys are exactly int, str or bytes
    # (never bool), so a subset of {0..31} means integers in range; bytes values of one length.
    values = value.values()
    if not (
        value.keys() <= _PCR_INDEXES
        and set(map(type, values)) == _ONLY_BYTES
        and set(map(len, values)) == {length}
    ):
        _pcr_error(value, length)
    # The decoder's dict is fresh and referenced nowhere else, so wrapping it needs no copy.
    return MappingProxyType(value)


def _pcr_error(value: dict[object, object], length: int) -> NoReturn:
    """Raise for the first entry, in document order, that is not a valid PCR."""
    for index, pcr in value.items():
        if type(index) is not int or not 0 <= index < _PCR_COUNT:
            raise MalformedDocumentError(
                f"index {index!r} is not an integer in 0..{_PCR_COUNT - 1}", field="payload.pcrs"
            )
        if not isinstance(pcr, bytes) or len(pcr) != length:
            raise MalformedDocumentError(
                f"PCR{index} must be {length} bytes to match digest", field="payload.pcrs"
            )
    raise MalformedDocumentError("is not a valid PCR map", field="payload.pcrs")  # fail closed


def _cabundle(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, tuple) or not value:
        raise MalformedDocumentError("must be a non-empty array", field="payload.cabundle")
    for cert in value:
        if type(cert) is not bytes or not 1 <= len(cert) <= _CERT_MAX:
            # Slow path only: name the first bad entry (the field name is built here, not per
            # entry, because the loop above runs on every verification).
            for i, entry in enumerate(value):
                _bstr(entry, f"cabundle[{i}]", 1, _CERT_MAX)
    return value  # every element checked to be bytes above
