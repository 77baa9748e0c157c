"""Requests and responses of Sign, Verify, GenerateMac and VerifyMac.

``Message`` is marked sensitive in the botocore model (it may be a secret the caller signs or
MACs), so it is left out of reprs, like plaintexts elsewhere in the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "GenerateMacRequest",
    "GenerateMacResponse",
    "SignRequest",
    "SignResponse",
    "VerifyMacRequest",
    "VerifyMacResponse",
    "VerifyRequest",
    "VerifyResponse",
]


@dataclass(frozen=True, slots=True)
class SignRequest:
    """Sign (``Message`` 1..4096 bytes; ``MessageType`` RAW by default)."""

    key_id: str | None = None
    message: bytes | None = field(default=None, repr=False)
    message_type: str | None = None
    grant_tokens: tuple[str, ...] | None = None
    signing_algorithm: str | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class SignResponse:
    """Sign (``Signature``: DER ECDSA-Sig-Value for ECDSA, the raw block for RSA)."""

    key_id: str | None = None
    signature: bytes | None = None
    signing_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """Verify (``Signature`` 1..6144 bytes)."""

    key_id: str | None = None
    message: bytes | None = field(default=None, repr=False)
    message_type: str | None = None
    signature: bytes | None = None
    signing_algorithm: str | None = None
    grant_tokens: tuple[str, ...] | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class VerifyResponse:
    """Verify: ``signature_valid`` is always ``True`` (a bad signature is an error, as on AWS)."""

    key_id: str | None = None
    signature_valid: bool | None = None
    signing_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class GenerateMacRequest:
    """GenerateMac (``Message`` 1..4096 bytes)."""

    message: bytes | None = field(default=None, repr=False)
    key_id: str | None = None
    mac_algorithm: str | None = None
    grant_tokens: tuple[str, ...] | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class GenerateMacResponse:
    """GenerateMac."""

    mac: bytes | None = None
    mac_algorithm: str | None = None
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyMacRequest:
    """VerifyMac (``Mac`` 1..6144 bytes)."""

    message: bytes | None = field(default=None, repr=False)
    key_id: str | None = None
    mac_algorithm: str | None = None
    mac: bytes | None = None
    grant_tokens: tuple[str, ...] | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class VerifyMacResponse:
    """VerifyMac: ``mac_valid`` is always ``True`` (a mismatch is an error, as on AWS)."""

    key_id: str | None = None
    mac_valid: bool | None = None
    mac_algorithm: str | None = None
