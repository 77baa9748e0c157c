"""Wire-agnostic KMS requests, responses and enums.

Every operation has a frozen ``<Operation>Request`` and ``<Operation>Response`` dataclass whose
fields are the AWS members (botocore ``kms/2014-11-01`` model) in snake_case. Conventions an
adapter relies on:

* the AWS member name is the snake_case name converted to PascalCase, except where a field
  carries ``metadata={"aws": ...}`` (use :func:`aws_name`);
* blobs are ``bytes``, timestamps aware ``datetime`` (epoch seconds on the wire), structures are
  nested dataclasses, lists are tuples, maps are ``Mapping[str, str]``;
* a field whose value is ``None`` is **absent** on the wire; ``b""`` is an empty blob, which is a
  different thing (a response to a request with ``Recipient`` leaves the plaintext ``None``);
* every request field defaults to ``None`` so that a request can be built from any JSON body;
  required members, lengths, ranges and enum values are checked by the service, which raises
  :class:`~enclave_kms.errors.ValidationException` with AWS's message format. Enum-typed members
  are plain ``str`` so an unknown value reaches that validation instead of failing earlier.

:data:`OPERATIONS` maps each operation name to its request type, response type and the
``KmsService`` method name, so an adapter needs no per-operation code.

Example::

    from enclave_kms.model import Caller, GenerateDataKeyRequest
    resp = service.generate_data_key(
        Caller(principal_arn="arn:aws:iam::111122223333:root", account_id="111122223333"),
        GenerateDataKeyRequest(key_id="alias/app", key_spec="AES_256"),
    )
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "OPERATIONS",
    "AliasListEntry",
    "Caller",
    "CancelKeyDeletionRequest",
    "CancelKeyDeletionResponse",
    "CreateAliasRequest",
    "CreateAliasResponse",
    "CreateKeyRequest",
    "CreateKeyResponse",
    "DataKeyPairSpec",
    "DataKeySpec",
    "DecryptRequest",
    "DecryptResponse",
    "DeleteAliasRequest",
    "DeleteAliasResponse",
    "DeriveSharedSecretRequest",
    "DeriveSharedSecretResponse",
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
    "EncryptRequest",
    "EncryptResponse",
    "EncryptionAlgorithmSpec",
    "GenerateDataKeyPairRequest",
    "GenerateDataKeyPairResponse",
    "GenerateDataKeyPairWithoutPlaintextRequest",
    "GenerateDataKeyPairWithoutPlaintextResponse",
    "GenerateDataKeyRequest",
    "GenerateDataKeyResponse",
    "GenerateDataKeyWithoutPlaintextRequest",
    "GenerateDataKeyWithoutPlaintextResponse",
    "GenerateRandomRequest",
    "GenerateRandomResponse",
    "GetKeyPolicyRequest",
    "GetKeyPolicyResponse",
    "GetKeyRotationStatusRequest",
    "GetKeyRotationStatusResponse",
    "GetPublicKeyRequest",
    "GetPublicKeyResponse",
    "KeyAgreementAlgorithmSpec",
    "KeyEncryptionMechanism",
    "KeyListEntry",
    "KeyManagerType",
    "KeyMetadata",
    "KeySpec",
    "KeyState",
    "KeyUsageType",
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
    "OriginType",
    "PutKeyPolicyRequest",
    "PutKeyPolicyResponse",
    "ReEncryptRequest",
    "ReEncryptResponse",
    "RecipientInfo",
    "RotateKeyOnDemandRequest",
    "RotateKeyOnDemandResponse",
    "RotationType",
    "RotationsListEntry",
    "ScheduleKeyDeletionRequest",
    "ScheduleKeyDeletionResponse",
    "Tag",
    "TagResourceRequest",
    "TagResourceResponse",
    "UntagResourceRequest",
    "UntagResourceResponse",
    "UpdateAliasRequest",
    "UpdateAliasResponse",
    "UpdateKeyDescriptionRequest",
    "UpdateKeyDescriptionResponse",
    "aws_name",
]


# --- enums (values exactly as in the botocore model) ---------------------------------------------


class KeySpec(enum.StrEnum):
    """``KeySpec`` values this service can create (the model lists more; those are refused)."""

    SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    ECC_NIST_P256 = "ECC_NIST_P256"
    ECC_NIST_P384 = "ECC_NIST_P384"
    ECC_NIST_P521 = "ECC_NIST_P521"
    ECC_SECG_P256K1 = "ECC_SECG_P256K1"


class KeyUsageType(enum.StrEnum):
    """``KeyUsageType``."""

    SIGN_VERIFY = "SIGN_VERIFY"
    ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
    GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
    KEY_AGREEMENT = "KEY_AGREEMENT"
    ENCAPSULATE_DECAPSULATE = "ENCAPSULATE_DECAPSULATE"


class KeyState(enum.StrEnum):
    """The key states this service uses (a subset of the model's ``KeyState``)."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"


class DataKeySpec(enum.StrEnum):
    """``DataKeySpec`` for GenerateDataKey*."""

    AES_256 = "AES_256"
    AES_128 = "AES_128"


class DataKeyPairSpec(enum.StrEnum):
    """``DataKeyPairSpec`` values this service generates (SM2, Ed25519, ML-KEM are refused)."""

    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"
    ECC_NIST_P256 = "ECC_NIST_P256"
    ECC_NIST_P384 = "ECC_NIST_P384"
    ECC_NIST_P521 = "ECC_NIST_P521"
    ECC_SECG_P256K1 = "ECC_SECG_P256K1"


class EncryptionAlgorithmSpec(enum.StrEnum):
    """``EncryptionAlgorithmSpec`` (SM2PKE is in the model but not supported)."""

    SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"


class KeyEncryptionMechanism(enum.StrEnum):
    """``KeyEncryptionMechanism``: the only algorithm a ``Recipient`` may name."""

    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"


class KeyAgreementAlgorithmSpec(enum.StrEnum):
    """``KeyAgreementAlgorithmSpec``."""

    ECDH = "ECDH"


class OriginType(enum.StrEnum):
    """``OriginType``: only ``AWS_KMS`` is supported."""

    AWS_KMS = "AWS_KMS"


class KeyManagerType(enum.StrEnum):
    """``KeyManagerType``: every key here is customer managed."""

    CUSTOMER = "CUSTOMER"


class RotationType(enum.StrEnum):
    """``RotationType``."""

    AUTOMATIC = "AUTOMATIC"
    ON_DEMAND = "ON_DEMAND"


# --- caller and shared structures ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: built by the HTTP adapter from SigV4, or passed by in-process users.

    Attributes:
        principal_arn: the caller's principal (``aws:PrincipalArn``).
        account_id: the caller's account (``kms:CallerAccount``).
        access_key_id: the SigV4 access key id, when there is one (audit only).
    """

    principal_arn: str
    account_id: str
    access_key_id: str | None = None


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
    key_agreement_algorithms: tuple[str, ...] | None = None
    multi_region: bool | None = None
    pending_deletion_window_in_days: int | None = None
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


# --- cryptographic operations ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenerateDataKeyRequest:
    """GenerateDataKey: exactly one of ``key_spec`` / ``number_of_bytes``."""

    key_id: str | None = None
    encryption_context: Mapping[str, str] | None = None
    number_of_bytes: int | None = None
    key_spec: str | None = None
    grant_tokens: tuple[str, ...] | None = None
    recipient: RecipientInfo | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class GenerateDataKeyResponse:
    """GenerateDataKey; ``plaintext`` is ``None`` (absent) when a Recipient was given."""

    ciphertext_blob: bytes | None = None
    plaintext: bytes | None = field(default=None, repr=False)
    key_id: str | None = None
    ciphertext_for_recipient: bytes | None = None
    key_material_id: str | None = None


@dataclass(frozen=True, slots=True)
class GenerateDataKeyWithoutPlaintextRequest:
    """GenerateDataKeyWithoutPlaintext."""

    key_id: str | None = None
    encryption_context: Mapping[str, str] | None = None
    key_spec: str | None = None
    number_of_bytes: int | None = None
    grant_tokens: tuple[str, ...] | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class GenerateDataKeyWithoutPlaintextResponse:
    """GenerateDataKeyWithoutPlaintext."""

    ciphertext_blob: bytes | None = None
    key_id: str | None = None
    key_material_id: str | None = None


@dataclass(frozen=True, slots=True)
class GenerateDataKeyPairRequest:
    """GenerateDataKeyPair."""

    encryption_context: Mapping[str, str] | None = None
    key_id: str | None = None
    key_pair_spec: str | None = None
    grant_tokens: tuple[str, ...] | None = None
    recipient: RecipientInfo | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class GenerateDataKeyPairResponse:
    """GenerateDataKeyPair; ``private_key_plaintext`` is ``None`` when a Recipient was given."""

    private_key_ciphertext_blob: bytes | None = None
    private_key_plaintext: bytes | None = field(default=None, repr=False)
    public_key: bytes | None = None
    key_id: str | None = None
    key_pair_spec: str | None = None
    ciphertext_for_recipient: bytes | None = None
    key_material_id: str | None = None


@dataclass(frozen=True, slots=True)
class GenerateDataKeyPairWithoutPlaintextRequest:
    """GenerateDataKeyPairWithoutPlaintext."""

    encryption_context: Mapping[str, str] | None = None
    key_id: str | None = None
    key_pair_spec: str | None = None
    grant_tokens: tuple[str, ...] | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class GenerateDataKeyPairWithoutPlaintextResponse:
    """GenerateDataKeyPairWithoutPlaintext."""

    private_key_ciphertext_blob: bytes | None = None
    public_key: bytes | None = None
    key_id: str | None = None
    key_pair_spec: str | None = None
    key_material_id: str | None = None


@dataclass(frozen=True, slots=True)
class EncryptRequest:
    """Encrypt (``Plaintext`` 1..4096 bytes)."""

    key_id: str | None = None
    plaintext: bytes | None = field(default=None, repr=False)
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: tuple[str, ...] | None = None
    encryption_algorithm: str | None = None
    dry_run: bool | None = None


@dataclass(frozen=True, slots=True)
class EncryptResponse:
    """Encrypt."""

    ciphertext_blob: bytes | None = None
    key_id: str | None = None
    encryption_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class DecryptRequest:
    """Decrypt (``KeyId`` optional for symmetric ciphertexts: the blob names its key)."""

    ciphertext_blob: bytes | None = None
    encryption_context: Mapping[str, str] | None = None
    grant_tokens: tuple[str, ...] | None = None
    key_id: str | None = None
    encryption_algorithm: str | None = None
    recipient: RecipientInfo | None = None
    dry_run: bool | None = None
    dry_run_modifiers: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DecryptResponse:
    """Decrypt; ``plaintext`` is ``None`` (absent) when a Recipient was given."""

    key_id: str | None = None
    plaintext: bytes | None = field(default=None, repr=False)
    encryption_algorithm: str | None = None
    ciphertext_for_recipient: bytes | None = None
    key_material_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReEncryptRequest:
    """ReEncrypt."""

    ciphertext_blob: bytes | None = None
    source_encryption_context: Mapping[str, str] | None = None
    source_key_id: str | None = None
    destination_key_id: str | None = None
    destination_encryption_context: Mapping[str, str] | None = None
    source_encryption_algorithm: str | None = None
    destination_encryption_algorithm: str | None = None
    grant_tokens: tuple[str, ...] | None = None
    dry_run: bool | None = None
    dry_run_modifiers: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ReEncryptResponse:
    """ReEncrypt."""

    ciphertext_blob: bytes | None = None
    source_key_id: str | None = None
    key_id: str | None = None
    source_encryption_algorithm: str | None = None
    destination_encryption_algorithm: str | None = None
    source_key_material_id: str | None = None
    destination_key_material_id: str | None = None


@dataclass(frozen=True, slots=True)
class GenerateRandomRequest:
    """GenerateRandom (``NumberOfBytes`` 1..1024)."""

    number_of_bytes: int | None = None
    custom_key_store_id: str | None = None
    recipient: RecipientInfo | None = None


@dataclass(frozen=True, slots=True)
class GenerateRandomResponse:
    """GenerateRandom; ``plaintext`` is ``None`` (absent) when a Recipient was given."""

    plaintext: bytes | None = field(default=None, repr=False)
    ciphertext_for_recipient: bytes | None = None


@dataclass(frozen=True, slots=True)
class DeriveSharedSecretRequest:
    """DeriveSharedSecret (ECDH with an ECC KEY_AGREEMENT key)."""

    key_id: str | None = None
    key_agreement_algorithm: str | None = None
    public_key: bytes | None = None
    grant_tokens: tuple[str, ...] | None = None
    dry_run: bool | None = None
    recipient: RecipientInfo | None = None


@dataclass(frozen=True, slots=True)
class DeriveSharedSecretResponse:
    """DeriveSharedSecret; ``shared_secret`` is ``None`` (absent) when a Recipient was given."""

    key_id: str | None = None
    shared_secret: bytes | None = field(default=None, repr=False)
    ciphertext_for_recipient: bytes | None = None
    key_agreement_algorithm: str | None = None
    key_origin: str | None = None


@dataclass(frozen=True, slots=True)
class GetPublicKeyRequest:
    """GetPublicKey."""

    key_id: str | None = None
    grant_tokens: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class GetPublicKeyResponse:
    """GetPublicKey (``PublicKey`` is DER SubjectPublicKeyInfo)."""

    key_id: str | None = None
    public_key: bytes | None = None
    customer_master_key_spec: str | None = None
    key_spec: str | None = None
    key_usage: str | None = None
    encryption_algorithms: tuple[str, ...] | None = None
    key_agreement_algorithms: tuple[str, ...] | None = None


# --- registry -------------------------------------------------------------------------------------


def aws_name(f: dataclasses.Field[object]) -> str:
    """Return the AWS member name of a model dataclass field.

    Args:
        f: a field from :func:`dataclasses.fields` of a model type.

    Returns:
        ``metadata["aws"]`` when set, else the snake_case name in PascalCase.
    """
    explicit = f.metadata.get("aws")
    if isinstance(explicit, str):
        return explicit
    return "".join(part[:1].upper() + part[1:] for part in f.name.split("_"))


def _registry(*names: str) -> dict[str, tuple[type, type, str]]:
    out: dict[str, tuple[type, type, str]] = {}
    module = globals()
    for name in names:
        method = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
        out[name] = (module[f"{name}Request"], module[f"{name}Response"], method)
    return out


OPERATIONS: Mapping[str, tuple[type, type, str]] = _registry(
    "CancelKeyDeletion",
    "CreateAlias",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DeriveSharedSecret",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateRandom",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetPublicKey",
    "ListAliases",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "PutKeyPolicy",
    "ReEncrypt",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
)
"""Operation name → (request type, response type, ``KmsService`` method name)."""
