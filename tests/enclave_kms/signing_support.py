"""Shared by the Sign/Verify and GenerateMac/VerifyMac service tests: keys, calls, checks."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from test_service_support import (
    ACCOUNT,
    APP_CALLER,
    ROOT_CALLER,
)

from enclave_kms.model import (
    GenerateMacRequest,
    GetPublicKeyRequest,
    SignRequest,
    VerifyMacRequest,
    VerifyRequest,
)
from enclave_kms.service import KmsService

RSA_ALGORITHMS = (
    "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
)  # fmt: skip
ECC_ALGORITHMS = {
    "ECC_NIST_P256": ("ECDSA_SHA_256", ec.SECP256R1),
    "ECC_NIST_P384": ("ECDSA_SHA_384", ec.SECP384R1),
    "ECC_NIST_P521": ("ECDSA_SHA_512", ec.SECP521R1),
    "ECC_SECG_P256K1": ("ECDSA_SHA_256", ec.SECP256K1),
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
HMAC_SPECS = {
    "HMAC_224": ("HMAC_SHA_224", hashlib.sha224, 28),
    "HMAC_256": ("HMAC_SHA_256", hashlib.sha256, 32),
    "HMAC_384": ("HMAC_SHA_384", hashlib.sha384, 48),
    "HMAC_512": ("HMAC_SHA_512", hashlib.sha512, 64),
}
MESSAGE = b"a message to sign, 1..4096 bytes"


def hash_of(algorithm: str) -> hashes.HashAlgorithm:
    return HASHES[algorithm[-3:]]()


def digest(algorithm: str, message: bytes) -> bytes:
    h = hashes.Hash(hash_of(algorithm))
    h.update(message)
    return h.finalize()


def public_key(service: KmsService, kid: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    pub = service.get_public_key(ROOT_CALLER, GetPublicKeyRequest(key_id=kid))
    loaded = serialization.load_der_public_key(pub.public_key or b"")
    assert isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return loaded


def verify_outside(
    public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    algorithm: str,
    message: bytes,
    signature: bytes,
) -> None:
    """An independent check with cryptography: raises InvalidSignature if it fails."""
    h = hash_of(algorithm)
    if isinstance(public, rsa.RSAPublicKey):
        pad: padding.AsymmetricPadding
        if algorithm.startswith("RSASSA_PSS_"):
            # AWS KMS: the PSS salt is as long as the digest; checked exactly, not AUTO.
            pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        else:
            pad = padding.PKCS1v15()
        public.verify(signature, message, pad, h)
    else:
        utils.decode_dss_signature(signature)  # DER ECDSA-Sig-Value, as KMS returns
        public.verify(signature, message, ec.ECDSA(h))


def sign(
    service: KmsService, kid: str, algorithm: str, message: bytes, message_type: str | None = None
) -> bytes:
    r = service.sign(
        ROOT_CALLER,
        SignRequest(
            key_id=kid, message=message, message_type=message_type, signing_algorithm=algorithm
        ),
    )
    assert r.signing_algorithm == algorithm
    assert r.key_id == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{kid}"
    assert r.signature is not None
    return r.signature


def verify(
    service: KmsService,
    kid: str,
    algorithm: str,
    message: bytes,
    signature: bytes,
    message_type: str | None = None,
) -> None:
    r = service.verify(
        ROOT_CALLER,
        VerifyRequest(
            key_id=kid,
            message=message,
            message_type=message_type,
            signature=signature,
            signing_algorithm=algorithm,
        ),
    )
    assert (r.signature_valid, r.signing_algorithm) == (True, algorithm)
    assert r.key_id == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{kid}"


def round_trips(service: KmsService, kid: str, algorithms: tuple[str, ...]) -> None:
    """Every algorithm, RAW and DIGEST, checked by the service and outside it."""
    public = public_key(service, kid)
    for algorithm in algorithms:
        raw = sign(service, kid, algorithm, MESSAGE)
        verify_outside(public, algorithm, MESSAGE, raw)
        verify(service, kid, algorithm, MESSAGE, raw)
        # A DIGEST is signed without hashing again: the signature is one over the message.
        d = digest(algorithm, MESSAGE)
        pre = sign(service, kid, algorithm, d, "DIGEST")
        verify_outside(public, algorithm, MESSAGE, pre)
        # The message type of Verify need not be the one used to sign (AWS Verify docs).
        verify(service, kid, algorithm, d, raw, "DIGEST")
        verify(service, kid, algorithm, MESSAGE, pre, "RAW")


def recording_randbytes() -> tuple[Callable[[int], bytes], list[bytes]]:
    drawn: list[bytes] = []

    def randbytes(n: int) -> bytes:
        drawn.append(os.urandom(n))
        return drawn[-1]

    return randbytes, drawn


def all_four(
    service: KmsService, signer: str, mac_key: str, dry_run: bool | None = None
) -> list[Callable[[], object]]:
    """Sign, Verify, GenerateMac and VerifyMac calls (the last two with a bad signature/MAC)."""
    return [
        lambda: service.sign(
            ROOT_CALLER,
            SignRequest(
                key_id=signer, message=MESSAGE, signing_algorithm="ECDSA_SHA_256", dry_run=dry_run
            ),
        ),
        lambda: service.verify(
            ROOT_CALLER,
            VerifyRequest(
                key_id=signer,
                message=MESSAGE,
                signature=b"\x01",
                signing_algorithm="ECDSA_SHA_256",
                dry_run=dry_run,
            ),
        ),
        lambda: service.generate_mac(
            ROOT_CALLER,
            GenerateMacRequest(
                key_id=mac_key, message=MESSAGE, mac_algorithm="HMAC_SHA_256", dry_run=dry_run
            ),
        ),
        lambda: service.verify_mac(
            ROOT_CALLER,
            VerifyMacRequest(
                key_id=mac_key,
                message=MESSAGE,
                mac=b"\x01",
                mac_algorithm="HMAC_SHA_256",
                dry_run=dry_run,
            ),
        ),
    ]


def policy(*statements: dict[str, object]) -> str:
    admin = {
        "Sid": "Admin",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [admin, *statements]})


def app(action: str | list[str], condition: dict[str, object] | None = None) -> dict[str, object]:
    statement: dict[str, object] = {
        "Effect": "Allow",
        "Principal": {"AWS": APP_CALLER.principal_arn},
        "Action": action,
        "Resource": "*",
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement
