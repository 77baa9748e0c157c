"""Requests and responses of key management: keys, aliases, policies, rotation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ._shared import AliasListEntry, KeyListEntry, KeyMetadata, RotationsListEntry, Tag

__all__ = [
    "CancelKeyDeletionRequest",
    "CancelKeyDeletionResponse",
    "CreateAliasRequest",
    "CreateAliasResponse",
    "CreateKeyRequest",
    "CreateKeyResponse",
    "DeleteAliasRequest",
    "DeleteAliasResponse",
    "DescribeKeyRequest",
    "DescribeKeyResponse",
    "DisableKeyRequest",
    "DisableKeyResponse",
    "DisableKeyRotationRequest",
    "DisableKeyRotationResponse",
    "EnableKeyRequest",
    "EnableKeyResponse",
    "EnableKeyRotationRequest",
    "EnableKeyRotationResponse",
    "GetKeyPolicyRequest",
    "GetKeyPolicyResponse",
    "GetKeyRotationStatusRequest",
    "GetKeyRotationStatusResponse",
    "ListAliasesRequest",
    "ListAliasesResponse",
    "ListKeyPoliciesRequest",
    "ListKeyPoliciesResponse",
    "ListKeyRotationsRequest",
    "ListKeyRotationsResponse",
    "ListKeysRequest",
    "ListKeysResponse",
    "ListResourceTagsRequest",
    "ListResourceTagsResponse",
    "PutKeyPolicyRequest",
    "PutKeyPolicyResponse",
    "RotateKeyOnDemandRequest",
    "RotateKeyOnDemandResponse",
    "ScheduleKeyDeletionRequest",
    "ScheduleKeyDeletionResponse",
    "TagResourceRequest",
    "TagResourceResponse",
    "UntagResourceRequest",
    "UntagResourceResponse",
    "UpdateAliasRequest",
    "UpdateAliasResponse",
    "UpdateKeyDescriptionRequest",
    "UpdateKeyDescriptionResponse",
]


# --- key management -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateKeyRequest:
    """CreateKey."""

    policy: str | None = None
    description: str | None = None
    key_usage: str | None = None
    customer_master_key_spec: str | None = None
    key_spec: str | None = None
    origin: str | None = None
    custom_key_store_id: str | None = None
    bypass_policy_lockout_safety_check: bool | None = None
    tags: tuple[Tag, ...] | None = None
    multi_region: bool | None = None
    xks_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class CreateKeyResponse:
    """CreateKey."""

    key_metadata: KeyMetadata | None = None


@dataclass(frozen=True, slots=True)
class DescribeKeyRequest:
    """DescribeKey (``KeyId`` may be an alias name or alias ARN)."""

    key_id: str | None = None
    grant_tokens: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DescribeKeyResponse:
    """DescribeKey."""

    key_metadata: KeyMetadata | None = None


@dataclass(frozen=True, slots=True)
class ListKeysRequest:
    """ListKeys."""

    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class ListKeysResponse:
    """ListKeys."""

    keys: tuple[KeyListEntry, ...] | None = None
    next_marker: str | None = None
    truncated: bool | None = None


@dataclass(frozen=True, slots=True)
class EnableKeyRequest:
    """EnableKey (key id or key ARN only)."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class EnableKeyResponse:
    """EnableKey (no output members)."""


@dataclass(frozen=True, slots=True)
class DisableKeyRequest:
    """DisableKey (key id or key ARN only)."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class DisableKeyResponse:
    """DisableKey (no output members)."""


@dataclass(frozen=True, slots=True)
class UpdateKeyDescriptionRequest:
    """UpdateKeyDescription."""

    key_id: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateKeyDescriptionResponse:
    """UpdateKeyDescription (no output members)."""


@dataclass(frozen=True, slots=True)
class ScheduleKeyDeletionRequest:
    """ScheduleKeyDeletion (``PendingWindowInDays`` 7..30, default 30)."""

    key_id: str | None = None
    pending_window_in_days: int | None = None


@dataclass(frozen=True, slots=True)
class ScheduleKeyDeletionResponse:
    """ScheduleKeyDeletion."""

    key_id: str | None = None
    deletion_date: datetime | None = None
    key_state: str | None = None
    pending_window_in_days: int | None = None


@dataclass(frozen=True, slots=True)
class CancelKeyDeletionRequest:
    """CancelKeyDeletion."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class CancelKeyDeletionResponse:
    """CancelKeyDeletion (``KeyId`` is the key ARN, as AWS returns it)."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class TagResourceRequest:
    """TagResource."""

    key_id: str | None = None
    tags: tuple[Tag, ...] | None = None


@dataclass(frozen=True, slots=True)
class TagResourceResponse:
    """TagResource (no output members)."""


@dataclass(frozen=True, slots=True)
class UntagResourceRequest:
    """UntagResource."""

    key_id: str | None = None
    tag_keys: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class UntagResourceResponse:
    """UntagResource (no output members)."""


@dataclass(frozen=True, slots=True)
class ListResourceTagsRequest:
    """ListResourceTags."""

    key_id: str | None = None
    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class ListResourceTagsResponse:
    """ListResourceTags."""

    tags: tuple[Tag, ...] | None = None
    next_marker: str | None = None
    truncated: bool | None = None


# --- aliases --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateAliasRequest:
    """CreateAlias."""

    alias_name: str | None = None
    target_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class CreateAliasResponse:
    """CreateAlias (no output members)."""


@dataclass(frozen=True, slots=True)
class UpdateAliasRequest:
    """UpdateAlias."""

    alias_name: str | None = None
    target_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateAliasResponse:
    """UpdateAlias (no output members)."""


@dataclass(frozen=True, slots=True)
class DeleteAliasRequest:
    """DeleteAlias."""

    alias_name: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteAliasResponse:
    """DeleteAlias (no output members)."""


@dataclass(frozen=True, slots=True)
class ListAliasesRequest:
    """ListAliases (optionally only the aliases of ``KeyId``)."""

    key_id: str | None = None
    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class ListAliasesResponse:
    """ListAliases."""

    aliases: tuple[AliasListEntry, ...] | None = None
    next_marker: str | None = None
    truncated: bool | None = None


# --- key policies ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PutKeyPolicyRequest:
    """PutKeyPolicy (``PolicyName`` must be ``default``)."""

    key_id: str | None = None
    policy_name: str | None = None
    policy: str | None = None
    bypass_policy_lockout_safety_check: bool | None = None


@dataclass(frozen=True, slots=True)
class PutKeyPolicyResponse:
    """PutKeyPolicy (no output members)."""


@dataclass(frozen=True, slots=True)
class GetKeyPolicyRequest:
    """GetKeyPolicy."""

    key_id: str | None = None
    policy_name: str | None = None


@dataclass(frozen=True, slots=True)
class GetKeyPolicyResponse:
    """GetKeyPolicy."""

    policy: str | None = None
    policy_name: str | None = None


@dataclass(frozen=True, slots=True)
class ListKeyPoliciesRequest:
    """ListKeyPolicies."""

    key_id: str | None = None
    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class ListKeyPoliciesResponse:
    """ListKeyPolicies."""

    policy_names: tuple[str, ...] | None = None
    next_marker: str | None = None
    truncated: bool | None = None


# --- rotation -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnableKeyRotationRequest:
    """EnableKeyRotation (``RotationPeriodInDays`` 90..2560, default 365)."""

    key_id: str | None = None
    rotation_period_in_days: int | None = None


@dataclass(frozen=True, slots=True)
class EnableKeyRotationResponse:
    """EnableKeyRotation (no output members)."""


@dataclass(frozen=True, slots=True)
class DisableKeyRotationRequest:
    """DisableKeyRotation."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class DisableKeyRotationResponse:
    """DisableKeyRotation (no output members)."""


@dataclass(frozen=True, slots=True)
class GetKeyRotationStatusRequest:
    """GetKeyRotationStatus."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetKeyRotationStatusResponse:
    """GetKeyRotationStatus."""

    key_rotation_enabled: bool | None = None
    key_id: str | None = None
    rotation_period_in_days: int | None = None
    next_rotation_date: datetime | None = None
    on_demand_rotation_start_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class RotateKeyOnDemandRequest:
    """RotateKeyOnDemand."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class RotateKeyOnDemandResponse:
    """RotateKeyOnDemand."""

    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListKeyRotationsRequest:
    """ListKeyRotations."""

    key_id: str | None = None
    include_key_material: str | None = None
    limit: int | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class ListKeyRotationsResponse:
    """ListKeyRotations."""

    rotations: tuple[RotationsListEntry, ...] | None = None
    next_marker: str | None = None
    truncated: bool | None = None
