"""Encode and sign attestation documents byte for byte as the NSM does (nitro-attestation.md §1-2).

The payload is written field by field (not through a ``dict``) so that the minting API can also
produce the malformed shapes real verifiers must reject (duplicate or missing keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = [
    "PROTECTED_ES384",
    "PayloadField",
    "encode_cose_sign1",
    "encode_map",
    "payload_fields",
    "sig_structure",
    "sign_es384",
]

# bstr(4) a1 01 38 22 = {1: -35}: alg ES384, exactly as hardware emits it.
PROTECTED_ES384 = b"\xa1\x01\x38\x22"

PayloadField = tuple[str, Any]


def _head(major: int, length: int) -> bytes:
    # Minimal-length CBOR head, as serde_cbor and cbor2 both write it.
    if length < 24:
        return bytes([major << 5 | length])
    for ai, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * width):
            return bytes([major << 5 | ai]) + length.to_bytes(width, "big")
    raise ValueError("length too large for CBOR")


def encode_map(fields: Sequence[tuple[Any, Any]]) -> bytes:
    """Encode a CBOR map with the entries in the given order, duplicates included."""
    return _head(5, len(fields)) + b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in fields)


def payload_fields(
    *,
    module_id: str,
    timestamp_ms: int,
    pcrs: Mapping[int, bytes],
    certificate: bytes,
    cabundle: Sequence[bytes],
    public_key: bytes | None,
    user_data: bytes | None,
    nonce: bytes | None,
    digest: str = "SHA384",
) -> list[PayloadField]:
    """The nine payload entries in serde struct order of nsm-api's ``AttestationDoc``.

    ``pcrs`` are written with ascending keys; unset optionals are CBOR null (``f6``), as every
    genuine document does.
    """
    return [
        ("module_id", module_id),
        ("digest", digest),
        ("timestamp", timestamp_ms),
        ("pcrs", {i: bytes(pcrs[i]) for i in sorted(pcrs)}),
        ("certificate", certificate),
        ("cabundle", list(cabundle)),
        ("public_key", public_key),
        ("user_data", user_data),
        ("nonce", nonce),
    ]


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 §4.4 Sig_structure for COSE_Sign1 with empty external AAD."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def sign_es384(key: ec.EllipticCurvePrivateKey, protected: bytes, payload: bytes) -> bytes:
    """Sign with deterministic ECDSA P-384/SHA-384 and return the 96-byte raw ``r || s``."""
    der = key.sign(
        sig_structure(protected, payload),
        ec.ECDSA(hashes.SHA384(), deterministic_signing=True),
    )
    r, s = decode_dss_signature(der)
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


def encode_cose_sign1(
    protected: bytes, unprotected: Mapping[int, Any], payload: bytes, signature: bytes
) -> bytes:
    """The untagged COSE_Sign1 array ``[protected, unprotected, payload, signature]``."""
    return cbor2.dumps([protected, dict(unprotected), payload, signature])
