"""The caller and the structures several operations share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "AliasListEntry",
    "Caller",
    "KeyListEntry",
    "KeyMetadata",
    "RecipientInfo",
    "RotationsListEntry",
    "Tag",
]


# --- caller and shared structures ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: built by the HTTP adapter from SigV4, or passed by in-process users.

    Attributes:
        principal_arn: the caller's principal (``aws:PrincipalArn``).
        account_id: the caller's account (``kms:CallerAccount``).
        access_key_id: the SigV4 access key id, when there is one (audit only).
        source_ip: the address the request came from (``aws:SourceIp``), when it came over
            the network.
        secure_transport: whether the request came over TLS (``aws:SecureTransport``), when it
            came over the network; ``None`` for in-process callers.
    """

    principal_arn: str
    account_id: str
    access_key_id: str | None = None
    source_ip: str | None = None
    secure_transport: bool | None = None

    def network_condition_keys(self) -> dict[str, str | bool]:
        """``aws:SourceIp`` and ``aws:SecureTransport``, for whichever of them is known."""
        keys: dict[str, str | bool] = {}
        if self.source_ip is not None:
            keys["aws:SourceIp"] = self.source_ip
        if self.secure_transport is not None:
            keys["aws:SecureTransport"] = self.secure_transport
        return keys


@dataclass(frozen=True, slots=True)
class Tag:
    """A ``Tag`` (``TagKey`` 1..128 chars, ``TagValue`` 0..256 chars)."""

    tag_key: str | None = None
    tag_value: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientInfo:
    """``RecipientInfo``: a Nitro attestation document and the key-encryption algorithm."""

    key_encryption_algorithm: str | None = None
    attestation_document: bytes | None = None


@dataclass(frozen=True, slots=True)
class KeyMetadata:
    """``KeyMetadata`` as DescribeKey/CreateKey return it."""

    key_id: str
    aws_account_id: str | None = field(default=None, metadata={"aws": "AWSAccountId"})
    arn: str | None = None
    creation_date: datetime | None = None
    enabled: bool | None = None
    description: str | None = None
    key_usage: str | None = None
    key_state: str | None = None
    deletion_date: datetime | None = None
    origin: str | None = None
    key_manager: str | None = None
    customer_master_key_spec: str | None = None
    key_spec: str | None = None
    encryption_algorithms: tuple[str, ...] | None = None
    signing_algorithms: tuple[str, ...] | None = None
    key_agreement_algorithms: tuple[str, ...] | None = None
    multi_region: bool | None = None
    pending_deletion_window_in_days: int | None = None
    mac_algorithms: tuple[str, ...] | None = None
    current_key_material_id: str | None = None


@dataclass(frozen=True, slots=True)
class KeyListEntry:
    """``KeyListEntry``."""

    key_id: str | None = None
    key_arn: str | None = None


@dataclass(frozen=True, slots=True)
class AliasListEntry:
    """``AliasListEntry``."""

    alias_name: str | None = None
    alias_arn: str | None = None
    target_key_id: str | None = None
    creation_date: datetime | None = None
    last_updated_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class RotationsListEntry:
    """``RotationsListEntry``."""

    key_id: str | None = None
    key_material_id: str | None = None
    key_material_state: str | None = None
    rotation_date: datetime | None = None
    rotation_type: str | None = None
