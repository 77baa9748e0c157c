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
from collections.abc import Mapping

from ._crypto import (
    DecryptRequest,
    DecryptResponse,
    DeriveSharedSecretRequest,
    DeriveSharedSecretResponse,
    EncryptRequest,
    EncryptResponse,
    GenerateDataKeyPairRequest,
    GenerateDataKeyPairResponse,
    GenerateDataKeyPairWithoutPlaintextRequest,
    GenerateDataKeyPairWithoutPlaintextResponse,
    GenerateDataKeyRequest,
    GenerateDataKeyResponse,
    GenerateDataKeyWithoutPlaintextRequest,
    GenerateDataKeyWithoutPlaintextResponse,
    GenerateRandomRequest,
    GenerateRandomResponse,
    GetPublicKeyRequest,
    GetPublicKeyResponse,
    ReEncryptRequest,
    ReEncryptResponse,
)
from ._enums import (
    DataKeyPairSpec,
    DataKeySpec,
    EncryptionAlgorithmSpec,
    KeyAgreementAlgorithmSpec,
    KeyEncryptionMechanism,
    KeyManagerType,
    KeySpec,
    KeyState,
    KeyUsageType,
    MacAlgorithmSpec,
    MessageType,
    OriginType,
    RotationType,
    SigningAlgorithmSpec,
)
from ._keys import (
    CancelKeyDeletionRequest,
    CancelKeyDeletionResponse,
    CreateAliasRequest,
    CreateAliasResponse,
    CreateKeyRequest,
    CreateKeyResponse,
    DeleteAliasRequest,
    DeleteAliasResponse,
    DescribeKeyRequest,
    DescribeKeyResponse,
    DisableKeyRequest,
    DisableKeyResponse,
    DisableKeyRotationRequest,
    DisableKeyRotationResponse,
    EnableKeyRequest,
    EnableKeyResponse,
    EnableKeyRotationRequest,
    EnableKeyRotationResponse,
    GetKeyPolicyRequest,
    GetKeyPolicyResponse,
    GetKeyRotationStatusRequest,
    GetKeyRotationStatusResponse,
    ListAliasesRequest,
    ListAliasesResponse,
    ListKeyPoliciesRequest,
    ListKeyPoliciesResponse,
    ListKeyRotationsRequest,
    ListKeyRotationsResponse,
    ListKeysRequest,
    ListKeysResponse,
    ListResourceTagsRequest,
    ListResourceTagsResponse,
    PutKeyPolicyRequest,
    PutKeyPolicyResponse,
    RotateKeyOnDemandRequest,
    RotateKeyOnDemandResponse,
    ScheduleKeyDeletionRequest,
    ScheduleKeyDeletionResponse,
    TagResourceRequest,
    TagResourceResponse,
    UntagResourceRequest,
    UntagResourceResponse,
    UpdateAliasRequest,
    UpdateAliasResponse,
    UpdateKeyDescriptionRequest,
    UpdateKeyDescriptionResponse,
)
from ._shared import (
    AliasListEntry,
    Caller,
    KeyListEntry,
    KeyMetadata,
    RecipientInfo,
    RotationsListEntry,
    Tag,
)
from ._signing import (
    GenerateMacRequest,
    GenerateMacResponse,
    SignRequest,
    SignResponse,
    VerifyMacRequest,
    VerifyMacResponse,
    VerifyRequest,
    VerifyResponse,
)

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
    "GenerateMacRequest",
    "GenerateMacResponse",
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
    "MacAlgorithmSpec",
    "MessageType",
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
    "SignRequest",
    "SignResponse",
    "SigningAlgorithmSpec",
    "Tag",
    "TagResourceRequest",
    "TagResourceResponse",
    "UntagResourceRequest",
    "UntagResourceResponse",
    "UpdateAliasRequest",
    "UpdateAliasResponse",
    "UpdateKeyDescriptionRequest",
    "UpdateKeyDescriptionResponse",
    "VerifyMacRequest",
    "VerifyMacResponse",
    "VerifyRequest",
    "VerifyResponse",
    "aws_name",
]


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
    "GenerateMac",
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
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateKeyDescription",
    "Verify",
    "VerifyMac",
)
"""Operation name → (request type, response type, ``KmsService`` method name)."""
