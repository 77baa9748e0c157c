"""Key material: KMS key backing material and data key pairs.

Symmetric KMS keys have 32 random bytes per version (used by ``_ciphertext``); HMAC keys have
28, 32, 48 or 64 random bytes (HMAC_224/256/384/512, AWS "HMAC keys in AWS KMS"). Asymmetric
KMS keys keep their private key as DER PKCS#8; data key pairs are returned as DER PKCS#8 private
keys and DER SubjectPublicKeyInfo public keys, as KMS does. Private material is handed out in
``bytearray``s the caller overwrites when done (best effort: the cryptography library keeps
its own copies, and Python cannot guarantee erasure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from enclave_kms.errors import UnsupportedOperationException

__all__ = [
    "KEY_SPECS",
    "SYMMETRIC_KEY_BYTES",
    "KeySpecInfo",
    "generate_data_key_pair",
    "generate_kms_key_material",
    "load_private_key",
    "public_key_der",
    "zero",
]

SYMMETRIC_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class KeySpecInfo:
    """What a KMS key spec supports here (AWS's CreateKey matrix for the specs we implement).

    Attributes:
        usages: the KeyUsage values allowed for the spec.
        encryption_algorithms: for ENCRYPT_DECRYPT keys.
        signing_algorithms: for SIGN_VERIFY keys (AWS "Asymmetric key specs": every RSA size
            offers PSS and PKCS#1 v1.5 with SHA-256/384/512; an ECC key offers ECDSA with the
            one hash that matches its curve).
        mac_algorithms: for GENERATE_VERIFY_MAC keys (one per HMAC spec).
        curve: the EC curve for ECC specs.
        rsa_bits: the modulus size for RSA specs.
        secret_bytes: the length of random material for symmetric and HMAC specs.
    """

    usages: tuple[str, ...]
    encryption_algorithms: tuple[str, ...] = ()
    signing_algorithms: tuple[str, ...] = ()
    mac_algorithms: tuple[str, ...] = ()
    curve: type[ec.EllipticCurve] | None = None
    rsa_bits: int | None = None
    secret_bytes: int | None = None


_RSA_ALGS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
_RSA_SIGNING = (
    "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
)  # fmt: skip
_RSA_USAGES = ("ENCRYPT_DECRYPT", "SIGN_VERIFY")
# AWS: NIST curves are SIGN_VERIFY or KEY_AGREEMENT; secp256k1 is SIGN_VERIFY only.
_NIST_USAGES = ("SIGN_VERIFY", "KEY_AGREEMENT")
KEY_SPECS: dict[str, KeySpecInfo] = {
    "SYMMETRIC_DEFAULT": KeySpecInfo(
        ("ENCRYPT_DECRYPT",), ("SYMMETRIC_DEFAULT",), secret_bytes=SYMMETRIC_KEY_BYTES
    ),
    "RSA_2048": KeySpecInfo(_RSA_USAGES, _RSA_ALGS, _RSA_SIGNING, rsa_bits=2048),
    "RSA_3072": KeySpecInfo(_RSA_USAGES, _RSA_ALGS, _RSA_SIGNING, rsa_bits=3072),
    "RSA_4096": KeySpecInfo(_RSA_USAGES, _RSA_ALGS, _RSA_SIGNING, rsa_bits=4096),
    "ECC_NIST_P256": KeySpecInfo(_NIST_USAGES, (), ("ECDSA_SHA_256",), curve=ec.SECP256R1),
    "ECC_NIST_P384": KeySpecInfo(_NIST_USAGES, (), ("ECDSA_SHA_384",), curve=ec.SECP384R1),
    "ECC_NIST_P521": KeySpecInfo(_NIST_USAGES, (), ("ECDSA_SHA_512",), curve=ec.SECP521R1),
    "ECC_SECG_P256K1": KeySpecInfo(("SIGN_VERIFY",), (), ("ECDSA_SHA_256",), curve=ec.SECP256K1),
    "HMAC_224": KeySpecInfo(("GENERATE_VERIFY_MAC",), mac_algorithms=("HMAC_SHA_224",),
                            secret_bytes=28),
    "HMAC_256": KeySpecInfo(("GENERATE_VERIFY_MAC",), mac_algorithms=("HMAC_SHA_256",),
                            secret_bytes=32),
    "HMAC_384": KeySpecInfo(("GENERATE_VERIFY_MAC",), mac_algorithms=("HMAC_SHA_384",),
                            secret_bytes=48),
    "HMAC_512": KeySpecInfo(("GENERATE_VERIFY_MAC",), mac_algorithms=("HMAC_SHA_512",),
                            secret_bytes=64),
}  # fmt: skip

_PAIR_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
_PAIR_RSA = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}


def zero(buf: bytearray) -> None:
    """Overwrite ``buf`` in place (best effort)."""
    buf[:] = bytes(len(buf))


def _pkcs8(key: PrivateKeyTypes) -> bytearray:
    return bytearray(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def public_key_der(private: PrivateKeyTypes) -> bytes:
    """Return the DER SubjectPublicKeyInfo of a private key's public half."""
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(der: bytes | bytearray) -> PrivateKeyTypes:
    """Load a DER PKCS#8 private key stored by :func:`generate_kms_key_material`."""
    return serialization.load_der_private_key(bytes(der), password=None)


def generate_kms_key_material(spec: str, randbytes: Callable[[int], bytes]) -> bytearray:
    """Generate one version of backing material for a KMS key of ``spec``.

    Args:
        spec: a key of :data:`KEY_SPECS`.
        randbytes: the randomness source for symmetric and HMAC material (asymmetric keys
            come from OpenSSL's generator).

    Returns:
        Random bytes (32 for SYMMETRIC_DEFAULT, the HMAC size for HMAC specs), or a DER
        PKCS#8 private key.
    """
    info = KEY_SPECS[spec]
    if info.rsa_bits is not None:
        return _pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=info.rsa_bits))
    if info.curve is not None:
        return _pkcs8(ec.generate_private_key(info.curve()))
    size = info.secret_bytes or SYMMETRIC_KEY_BYTES
    material = bytearray(randbytes(size))
    if len(material) != size:
        raise ValueError("randbytes returned the wrong number of bytes")
    return material


def generate_data_key_pair(spec: str) -> tuple[bytearray, bytes]:
    """Generate a data key pair.

    Args:
        spec: a ``DataKeyPairSpec`` value (already enum-validated).

    Returns:
        (DER PKCS#8 private key, DER SubjectPublicKeyInfo public key).

    Raises:
        UnsupportedOperationException: SM2, ECC_NIST_EDWARDS25519 and the ML_KEM specs, which
            are valid model values this service does not generate.
    """
    key: PrivateKeyTypes
    if spec in _PAIR_RSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=_PAIR_RSA[spec])
    elif spec in _PAIR_CURVES:
        key = ec.generate_private_key(_PAIR_CURVES[spec]())
    else:
        raise UnsupportedOperationException(
            f"KeyPairSpec {spec} is not supported by this service; use one of "
            f"{', '.join([*_PAIR_RSA, *_PAIR_CURVES])}"
        )
    return _pkcs8(key), public_key_der(key)
