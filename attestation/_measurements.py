"""PCR values: normalising pins given as bytes or hex, and deriving PCR3/4/8 as Nitro does."""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["pcr3_iam_role", "pcr4_instance_id", "pcr8_signing_certificate", "pcr_value"]

_PCR_LENGTHS: Final = (32, 48, 64)  # SHA256 / SHA384 / SHA512 banks (nsm-api Digest)
_ZERO48: Final = bytes(48)


def pcr_value(value: bytes | str, what: str = "PCR value") -> bytes:
    """Normalise a PCR value given as bytes or hex (any case) to bytes.

    Raises:
        ValueError: not hex, or not 32, 48 or 64 bytes long.
    """
    if isinstance(value, str):
        # bytes.fromhex would skip whitespace; a PCR pin is exactly hex digits.
        if not value or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise ValueError(f"{what} is not a hex string")
        if len(value) % 2:
            raise ValueError(f"{what} has an odd number of hex digits")
        raw = bytes.fromhex(value)
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        raise ValueError(f"{what} must be bytes or a hex string")
    if len(raw) not in _PCR_LENGTHS:
        raise ValueError(f"{what} must be 32, 48 or 64 bytes, not {len(raw)}")
    return raw


def _extend(data: bytes) -> bytes:
    # A PCR starts at 48 zero bytes and is extended as SHA-384(old || data) (§3).
    return hashlib.sha384(_ZERO48 + data).digest()


def pcr3_iam_role(role_arn: str) -> bytes:
    """PCR3 for a parent instance with IAM role ``role_arn``: SHA-384(0^48 ‖ ARN) (§3)."""
    return _extend(role_arn.encode("utf-8"))


def pcr4_instance_id(instance_id: str) -> bytes:
    """PCR4 for a parent instance id such as ``i-0592d6788f2a6df5f`` (checked on hardware)."""
    return _extend(instance_id.encode("ascii"))


def pcr8_signing_certificate(certificate: bytes | x509.Certificate) -> bytes:
    """PCR8 for an EIF signed with ``certificate`` (DER or parsed): SHA-384(0^48 ‖ SHA-384(DER)).

    This is how ``nitro-cli pcr --signing-certificate`` computes it (EifHasher, §3).
    """
    der = (
        certificate.public_bytes(Encoding.DER)
        if isinstance(certificate, x509.Certificate)
        else certificate
    )
    return _extend(hashlib.sha384(der).digest())
