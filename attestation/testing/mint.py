"""Mint genuine-format attestation documents from a :class:`TestPki`, and broken ones on purpose.

:func:`mint_document` returns the exact bytes a Nitro NSM returns (untagged COSE_Sign1, ES384,
nine payload keys in hardware order, nulls for unset optionals, a millisecond timestamp), signed
by a leaf issued for the document. ``variant=`` names one deliberate defect from :class:`Variant`;
:data:`VARIANTS` says which :mod:`attestation.errors` class a correct verifier must raise for it.
Every defect other than the targeted one is absent: a malformed payload is still validly signed,
so only the check under test can catch it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cbor2
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from attestation import errors
from attestation.testing import _document as doc
from attestation.testing.measurements import BootMeasurements
from attestation.testing.pki import TestPki, derive_p384_key

__all__ = [
    "LEAF_LIFETIME",
    "VARIANTS",
    "Variant",
    "VariantSpec",
    "mint_document",
    "resolve_pcrs",
    "timestamp_ms",
]

LEAF_LIFETIME = timedelta(hours=3)
# Genuine leaves are issued 3 s to 2.3 h before the document, usually 3-15 s (§4).
_LEAF_LEAD = timedelta(seconds=10)


class Variant(enum.StrEnum):
    """Named defects; each is a document a verifier must reject, except ``TAG18_WRAPPED``."""

    BAD_SIGNATURE = "bad-signature"
    TAMPERED_PAYLOAD = "tampered-payload"
    FOREIGN_KEY = "foreign-key"
    SIGNATURE_DER = "signature-der"
    EXPIRED_LEAF = "expired-leaf"
    NOT_YET_VALID_LEAF = "not-yet-valid-leaf"
    WRONG_ROOT = "wrong-root"
    MISSING_INTERMEDIATE = "missing-intermediate"
    EMPTY_CABUNDLE = "empty-cabundle"
    ALG_ES256 = "alg-es256"
    ALG_IN_UNPROTECTED = "alg-in-unprotected"
    TAG18_WRAPPED = "tag18-wrapped"
    TRAILING_BYTES = "trailing-bytes"
    DUPLICATE_PAYLOAD_KEY = "duplicate-payload-key"
    OVERSIZED_USER_DATA = "oversized-user-data"
    PCR_WRONG_LENGTH = "pcr-wrong-length"
    PCR_INDEX_32 = "pcr-index-32"
    DIGEST_MISMATCH = "digest-mismatch"
    TIMESTAMP_SECONDS = "timestamp-seconds"
    NULL_MANDATORY_FIELD = "null-mandatory-field"
    MISSING_PAYLOAD_KEY = "missing-payload-key"


@dataclass(frozen=True)
class VariantSpec:
    """What a variant breaks and how a verifier must answer.

    Attributes:
        description: the defect, in one sentence.
        expected_error: the :mod:`attestation.errors` class to raise, or None if it must verify.
        verify_at: ``"timestamp"`` to verify at the intended document time (the minting
            ``timestamp``), or ``"document"`` to verify at the time the payload claims.
    """

    description: str
    expected_error: type[errors.AttestationError] | None
    verify_at: str = "timestamp"


_M = errors.MalformedDocumentError
VARIANTS: Mapping[Variant, VariantSpec] = {
    Variant.BAD_SIGNATURE: VariantSpec("one bit of the signature flipped", errors.SignatureError),
    Variant.TAMPERED_PAYLOAD: VariantSpec("PCR0 changed after signing", errors.SignatureError),
    Variant.FOREIGN_KEY: VariantSpec(
        "valid chain, but signed by an unrelated P-384 key", errors.SignatureError
    ),
    Variant.SIGNATURE_DER: VariantSpec("signature DER-encoded instead of 96-byte raw r||s", _M),
    Variant.EXPIRED_LEAF: VariantSpec(
        "leaf expired an hour before the document time", errors.CertificateExpiredError
    ),
    Variant.NOT_YET_VALID_LEAF: VariantSpec(
        "leaf valid only from an hour after the document time", errors.CertificateExpiredError
    ),
    Variant.WRONG_ROOT: VariantSpec(
        "well-formed chain from a different (untrusted) test PKI", errors.CertificateChainError
    ),
    Variant.MISSING_INTERMEDIATE: VariantSpec(
        "zonal CA left out of the cabundle", errors.CertificateChainError
    ),
    Variant.EMPTY_CABUNDLE: VariantSpec("cabundle is an empty array", _M),
    Variant.ALG_ES256: VariantSpec(
        "protected header says ES256 ({1: -7})", errors.UnsupportedAlgorithmError
    ),
    Variant.ALG_IN_UNPROTECTED: VariantSpec("alg (label 1) repeated in the unprotected header", _M),
    Variant.TAG18_WRAPPED: VariantSpec(
        "valid document wrapped in COSE_Sign1 tag 18 (d2): must verify", None
    ),
    Variant.TRAILING_BYTES: VariantSpec("one CBOR null (f6) after the document", _M),
    Variant.DUPLICATE_PAYLOAD_KEY: VariantSpec(
        "payload map has 10 entries: public_key twice, last one differs", _M
    ),
    Variant.OVERSIZED_USER_DATA: VariantSpec("user_data of 1025 bytes (limit 1024)", _M),
    Variant.PCR_WRONG_LENGTH: VariantSpec("PCR5 is 32 bytes with digest SHA384", _M),
    Variant.PCR_INDEX_32: VariantSpec("PCR index 32 present (indexes are 0..31)", _M),
    Variant.DIGEST_MISMATCH: VariantSpec("digest says SHA256 but the PCRs are 48 bytes", _M),
    Variant.TIMESTAMP_SECONDS: VariantSpec(
        "timestamp in seconds (reads as January 1970): no certificate is valid then",
        errors.CertificateExpiredError,
        verify_at="document",
    ),
    Variant.NULL_MANDATORY_FIELD: VariantSpec("module_id is CBOR null", _M),
    Variant.MISSING_PAYLOAD_KEY: VariantSpec("the digest key is absent (8 entries)", _M),
}


def timestamp_ms(value: datetime | int) -> int:
    """Milliseconds since the Unix epoch from an aware datetime or an int (already ms).

    Raises:
        ValueError: a naive datetime or a negative value.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        ms = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    else:
        ms = int(value)
    if ms < 0:
        raise ValueError("timestamp must not be before 1970")
    return ms


def resolve_pcrs(
    pki: TestPki, pcrs: Mapping[int, bytes] | BootMeasurements | None, *, debug: bool
) -> dict[int, bytes]:
    """The locked PCRs a document carries: 0..15 always, plus any extra index given.

    ``None`` means :meth:`BootMeasurements.example` for the PKI's instance. A mapping sets the
    given PCRs directly (others of 0..15 are zero; indexes 16..31 count as locked by the app).
    ``debug`` zeroes PCR0..2, as ``--debug-mode`` does.
    """
    if pcrs is None:
        pcrs = BootMeasurements.example(instance_id=pki.instance_id)
    if isinstance(pcrs, BootMeasurements):
        values = pcrs.pcrs()
    else:
        values = {i: bytes(48) for i in range(16)}
        values.update({int(i): bytes(v) for i, v in pcrs.items()})
    if debug:
        values.update({0: bytes(48), 1: bytes(48), 2: bytes(48)})
    return dict(sorted(values.items()))


def mint_document(
    pki: TestPki,
    *,
    pcrs: Mapping[int, bytes] | BootMeasurements | None = None,
    public_key: bytes | None = None,
    user_data: bytes | None = None,
    nonce: bytes | None = None,
    timestamp: datetime | int | None = None,
    module_id: str | None = None,
    debug: bool = False,
    variant: Variant | str | None = None,
    leaf_lifetime: timedelta = LEAF_LIFETIME,
) -> bytes:
    """Mint an attestation document signed by a fresh leaf of ``pki``.

    Args:
        pki: the issuing test PKI; verifiers must be configured to trust ``pki.root``.
        pcrs: PCR values (see :func:`resolve_pcrs`).
        public_key: bytes for ``public_key`` (usually a DER SPKI), or None (CBOR null).
        user_data: bytes for ``user_data``, or None.
        nonce: bytes for ``nonce``, or None.
        timestamp: document time, an aware datetime or integer ms; None means now.
        module_id: ``i-<17 hex>-enc<16 hex>``; defaults to ``pki.default_module_id``.
        debug: debug-mode document (PCR0..2 zero).
        variant: a :class:`Variant` (or its string value) to break the document on purpose.
        leaf_lifetime: validity of the leaf, which starts 10 s before ``timestamp``.

    Returns:
        The COSE_Sign1 bytes.

    Raises:
        ValueError: an unknown variant name or an invalid timestamp.
    """
    v = Variant(variant) if variant is not None else None
    ts = timestamp_ms(datetime.now(UTC) if timestamp is None else timestamp)
    mid = module_id or pki.default_module_id
    at = datetime.fromtimestamp(ts / 1000, UTC)

    # Leaf validity, and which PKI issues it.
    not_before = at.replace(microsecond=0) - _LEAF_LEAD
    if v is Variant.EXPIRED_LEAF:
        not_before = at.replace(microsecond=0) - timedelta(hours=1) - leaf_lifetime
    elif v is Variant.NOT_YET_VALID_LEAF:
        not_before = at.replace(microsecond=0) + timedelta(hours=1)
    issuer = pki
    if v is Variant.WRONG_ROOT:
        issuer = TestPki.create(
            pki.seed + b"/wrong-root",
            valid_from=pki.valid_from,
            region=pki.region,
            lifetimes=pki.lifetimes,
        )
    cert, key = issuer.issue_leaf(mid, not_before=not_before, not_after=not_before + leaf_lifetime)
    cabundle = issuer.cabundle
    if v is Variant.MISSING_INTERMEDIATE:
        del cabundle[2]
    elif v is Variant.EMPTY_CABUNDLE:
        cabundle = []
    if v is Variant.OVERSIZED_USER_DATA:
        user_data = bytes(range(256)) * 4 + b"\x00"

    fields = doc.payload_fields(
        module_id=mid,
        timestamp_ms=ts // 1000 if v is Variant.TIMESTAMP_SECONDS else ts,
        pcrs=resolve_pcrs(pki, pcrs, debug=debug),
        certificate=cert.public_bytes(Encoding.DER),
        cabundle=cabundle,
        public_key=public_key,
        user_data=user_data,
        nonce=nonce,
        digest="SHA256" if v is Variant.DIGEST_MISMATCH else "SHA384",
    )
    fields = _break_payload(fields, v)
    payload = doc.encode_map(fields)

    protected = b"\xa1\x01\x26" if v is Variant.ALG_ES256 else doc.PROTECTED_ES384
    unprotected = {1: -35} if v is Variant.ALG_IN_UNPROTECTED else {}
    signer = derive_p384_key(pki.seed, "foreign") if v is Variant.FOREIGN_KEY else key
    signature = doc.sign_es384(signer, protected, payload)

    if v is Variant.BAD_SIGNATURE:
        signature = signature[:50] + bytes([signature[50] ^ 0x01]) + signature[51:]
    elif v is Variant.SIGNATURE_DER:
        r, s = int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
        signature = encode_dss_signature(r, s)
    elif v is Variant.TAMPERED_PAYLOAD:
        pcrs_now = dict(fields)["pcrs"]
        tampered = {**pcrs_now, 0: bytes(b ^ 0xFF for b in pcrs_now[0])}
        payload = doc.encode_map([(k, tampered if k == "pcrs" else x) for k, x in fields])

    out = doc.encode_cose_sign1(protected, unprotected, payload, signature)
    if v is Variant.TAG18_WRAPPED:
        out = cbor2.dumps(cbor2.CBORTag(18, cbor2.loads(out)))
    elif v is Variant.TRAILING_BYTES:
        out += b"\xf6"
    return out


def _break_payload(fields: list[doc.PayloadField], v: Variant | None) -> list[doc.PayloadField]:
    if v is Variant.PCR_WRONG_LENGTH:
        return [(k, {**x, 5: bytes(32)} if k == "pcrs" else x) for k, x in fields]
    if v is Variant.PCR_INDEX_32:
        return [(k, {**x, 32: bytes(48)} if k == "pcrs" else x) for k, x in fields]
    if v is Variant.NULL_MANDATORY_FIELD:
        return [(k, None if k == "module_id" else x) for k, x in fields]
    if v is Variant.MISSING_PAYLOAD_KEY:
        return [(k, x) for k, x in fields if k != "digest"]
    if v is Variant.DUPLICATE_PAYLOAD_KEY:
        # A lenient decoder keeps the last value: an attacker's key would win.
        return [*fields, ("public_key", b"\x30" + bytes(90))]
    return fields
