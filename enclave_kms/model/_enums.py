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
    "MacAlgorithmSpec",
    "MessageType",
    "OriginType",
    "RotationType",
    "SigningAlgorithmSpec",
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
    HMAC_224 = "HMAC_224"
    HMAC_256 = "HMAC_256"
    HMAC_384 = "HMAC_384"
    HMAC_512 = "HMAC_512"


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


class SigningAlgorithmSpec(enum.StrEnum):
    """``SigningAlgorithmSpec`` values this service signs with (SM2DSA, ML-DSA and Ed25519 are
    in the model but no key here offers them)."""

    RSASSA_PSS_SHA_256 = "RSASSA_PSS_SHA_256"
    RSASSA_PSS_SHA_384 = "RSASSA_PSS_SHA_384"
    RSASSA_PSS_SHA_512 = "RSASSA_PSS_SHA_512"
    RSASSA_PKCS1_V1_5_SHA_256 = "RSASSA_PKCS1_V1_5_SHA_256"
    RSASSA_PKCS1_V1_5_SHA_384 = "RSASSA_PKCS1_V1_5_SHA_384"
    RSASSA_PKCS1_V1_5_SHA_512 = "RSASSA_PKCS1_V1_5_SHA_512"
    ECDSA_SHA_256 = "ECDSA_SHA_256"
    ECDSA_SHA_384 = "ECDSA_SHA_384"
    ECDSA_SHA_512 = "ECDSA_SHA_512"


class MessageType(enum.StrEnum):
    """``MessageType`` values this service accepts (EXTERNAL_MU is for ML-DSA keys only)."""

    RAW = "RAW"
    DIGEST = "DIGEST"


class MacAlgorithmSpec(enum.StrEnum):
    """``MacAlgorithmSpec``."""

    HMAC_SHA_224 = "HMAC_SHA_224"
    HMAC_SHA_256 = "HMAC_SHA_256"
    HMAC_SHA_384 = "HMAC_SHA_384"
    HMAC_SHA_512 = "HMAC_SHA_512"


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
