"""The KMS enums, with values exactly as in the botocore model."""

from __future__ import annotations

import enum

__all__ = [
    "DataKeyPairSpec",
    "DataKeySpec",
    "EncryptionAlgorithmSpec",
    "KeyAgreementAlgorithmSpec",
    "KeyEncryptionMechanism",
    "KeyManagerType",
    "KeySpec",
    "KeyState",
    "KeyUsageType",
    "OriginType",
    "RotationType",
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
