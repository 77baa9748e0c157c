"""Requests and responses of the cryptographic operations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ._shared import RecipientInfo

__all__ = [
    "DecryptRequest",
    "DecryptResponse",
    "DeriveSharedSecretRequest",
    "DeriveSharedSecretResponse",
    "EncryptRequest",
    "EncryptResponse",
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
    "GetPublicKeyRequest",
    "GetPublicKeyResponse",
    "ReEncryptRequest",
    "ReEncryptResponse",
]


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
    signing_algorithms: tuple[str, ...] | None = None
    key_agreement_algorithms: tuple[str, ...] | None = None
