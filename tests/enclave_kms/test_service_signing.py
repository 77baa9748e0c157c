"""Sign and Verify with SIGN_VERIFY keys (RSA, NIST curves, secp256k1), on both stores.

Every signature is also checked outside KMS with ``cryptography`` and GetPublicKey's SPKI
(RSASSA-PSS with a salt exactly as long as the digest, ECDSA as DER).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from signing_support import (
    ECC_ALGORITHMS,
    MESSAGE,
    RSA_ALGORITHMS,
    digest,
    public_key,
    round_trips,
    sign,
    verify,
)
from test_service_support import (
    ROOT_CALLER,
    new_key,
)
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import (
    InvalidKeyUsageException,
    KMSInvalidSignatureException,
    ValidationException,
)
from enclave_kms.model import (
    DeriveSharedSecretRequest,
    EncryptRequest,
    GenerateDataKeyRequest,
    GenerateMacRequest,
    SignRequest,
    VerifyMacRequest,
    VerifyRequest,
)
from enclave_kms.service import KmsService


def test_rsa_2048_signing_round_trips(service: KmsService) -> None:
    kid = new_key(service, key_spec="RSA_2048", key_usage="SIGN_VERIFY")
    round_trips(service, kid, RSA_ALGORITHMS)
    public = public_key(service, kid)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048


# Generating RSA-3072 and RSA-4096 keys is slow: one key of each in this module, on one store
# (the material is a DER PKCS#8 blob like RSA_2048's, whose test runs on both stores).
@pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)
def test_rsa_3072_and_4096_signing_round_trips(service: KmsService) -> None:
    for spec, algorithms in (
        ("RSA_3072", RSA_ALGORITHMS),
        ("RSA_4096", ("RSASSA_PSS_SHA_512", "RSASSA_PKCS1_V1_5_SHA_256")),
    ):
        kid = new_key(service, key_spec=spec, key_usage="SIGN_VERIFY")
        round_trips(service, kid, algorithms)
        public = public_key(service, kid)
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == int(spec[-4:])


@pytest.mark.parametrize("spec", sorted(ECC_ALGORITHMS))
def test_ecdsa_round_trips(service: KmsService, spec: str) -> None:
    algorithm, curve = ECC_ALGORITHMS[spec]
    kid = new_key(service, key_spec=spec, key_usage="SIGN_VERIFY")
    public = public_key(service, kid)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, curve)
    round_trips(service, kid, (algorithm,))


def test_tampered_message_or_signature_is_invalid_signature(service: KmsService) -> None:
    ecc = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    rsa_kid = new_key(service, key_spec="RSA_2048", key_usage="SIGN_VERIFY")
    for kid, algorithm in ((ecc, "ECDSA_SHA_256"), (rsa_kid, "RSASSA_PSS_SHA_256")):
        good = sign(service, kid, algorithm, MESSAGE)
        flipped = bytearray(good)
        flipped[len(flipped) // 2] ^= 0x01
        for message, signature, message_type in (
            (MESSAGE + b"!", good, None),  # another message
            (MESSAGE, bytes(flipped), None),  # a flipped bit
            (MESSAGE, b"\x30\x00", None),  # not even a well-formed signature
            (digest(algorithm, b"other"), good, "DIGEST"),  # another digest
        ):
            with pytest.raises(KMSInvalidSignatureException) as err:
                verify(service, kid, algorithm, message, signature, message_type)
            assert err.value.http_status == 400
    # A signature by one key does not verify under another of the same spec.
    other = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    with pytest.raises(KMSInvalidSignatureException):
        verify(
            service, other, "ECDSA_SHA_256", MESSAGE, sign(service, ecc, "ECDSA_SHA_256", MESSAGE)
        )
    # A PKCS#1 v1.5 signature is not a PSS one.
    pkcs1 = sign(service, rsa_kid, "RSASSA_PKCS1_V1_5_SHA_256", MESSAGE)
    with pytest.raises(KMSInvalidSignatureException):
        verify(service, rsa_kid, "RSASSA_PSS_SHA_256", MESSAGE, pkcs1)


def test_algorithms_the_key_does_not_offer_are_invalid_key_usage(service: KmsService) -> None:
    p256 = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    rsa_kid = new_key(service, key_spec="RSA_2048", key_usage="SIGN_VERIFY")
    for kid, spec, algorithm in (
        (p256, "ECC_NIST_P256", "ECDSA_SHA_384"),
        (p256, "ECC_NIST_P256", "RSASSA_PSS_SHA_256"),
        (p256, "ECC_NIST_P256", "ED25519_SHA_512"),  # a model value no key here offers
        (rsa_kid, "RSA_2048", "ECDSA_SHA_256"),
        (rsa_kid, "RSA_2048", "SM2DSA"),
    ):
        with pytest.raises(InvalidKeyUsageException) as err:
            sign(service, kid, algorithm, MESSAGE)
        assert err.value.message == f"Algorithm {algorithm} is incompatible with key spec {spec}."
        with pytest.raises(InvalidKeyUsageException):
            verify(service, kid, algorithm, MESSAGE, b"\x01" * 64)


def test_digest_of_the_wrong_length_and_external_mu_are_validation_errors(
    service: KmsService,
) -> None:
    kid = new_key(service, key_spec="ECC_NIST_P384", key_usage="SIGN_VERIFY")
    for wrong in (b"\x00" * 32, b"\x00" * 64, b"\x00"):
        with pytest.raises(ValidationException) as err:
            sign(service, kid, "ECDSA_SHA_384", wrong, "DIGEST")
        assert err.value.message == "Digest is invalid length for algorithm ECDSA_SHA_384."
        with pytest.raises(ValidationException):
            verify(service, kid, "ECDSA_SHA_384", wrong, b"\x01" * 64, "DIGEST")
    # EXTERNAL_MU is ML-DSA's 64-byte representative; no key here is an ML-DSA key.
    with pytest.raises(ValidationException, match="EXTERNAL_MU is incompatible"):
        sign(service, kid, "ECDSA_SHA_384", b"\x00" * 64, "EXTERNAL_MU")
    with pytest.raises(ValidationException, match="enum value set"):
        sign(service, kid, "ECDSA_SHA_384", MESSAGE, "HASHED")


def test_request_validation_never_echoes_the_message(service: KmsService) -> None:
    kid = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    with pytest.raises(ValidationException) as err:
        service.sign(ROOT_CALLER, SignRequest(key_id=kid, message=b"m" * 4097))
    assert err.value.message.startswith("2 validation errors detected: ")
    assert "'message'" in err.value.message and "'signingAlgorithm'" in err.value.message
    assert "mmmm" not in err.value.message
    with pytest.raises(ValidationException, match="'signature'"):
        service.verify(
            ROOT_CALLER,
            VerifyRequest(key_id=kid, message=b"m", signing_algorithm="ECDSA_SHA_256"),
        )
    with pytest.raises(ValidationException, match="'signature'"):
        verify(service, kid, "ECDSA_SHA_256", b"m", b"\x00" * 6145)
    with pytest.raises(ValidationException, match="'message'"):
        service.sign(
            ROOT_CALLER, SignRequest(key_id=kid, message=b"", signing_algorithm="ECDSA_SHA_256")
        )
    with pytest.raises(ValidationException, match="'macAlgorithm'"):
        service.generate_mac(ROOT_CALLER, GenerateMacRequest(key_id=kid, message=b"m"))
    with pytest.raises(ValidationException, match="'mac'"):
        service.verify_mac(
            ROOT_CALLER,
            VerifyMacRequest(key_id=kid, message=b"m", mac_algorithm="HMAC_SHA_256"),
        )


def test_keys_of_other_usages_cannot_sign_or_mac(service: KmsService) -> None:
    others = {
        "symmetric": new_key(service),
        "rsa-encrypt": new_key(service, key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT"),
        "ecdh": new_key(service, key_spec="ECC_NIST_P256", key_usage="KEY_AGREEMENT"),
        "hmac": new_key(service, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC"),
    }
    for name, kid in others.items():
        with pytest.raises(InvalidKeyUsageException, match="not SIGN_VERIFY"):
            sign(service, kid, "ECDSA_SHA_256", MESSAGE)
        with pytest.raises(InvalidKeyUsageException, match="not SIGN_VERIFY"):
            verify(service, kid, "ECDSA_SHA_256", MESSAGE, b"\x01")
        if name != "hmac":
            with pytest.raises(InvalidKeyUsageException, match="not GENERATE_VERIFY_MAC"):
                service.generate_mac(
                    ROOT_CALLER,
                    GenerateMacRequest(key_id=kid, message=b"m", mac_algorithm="HMAC_SHA_256"),
                )
    # And signing or HMAC keys cannot encrypt, wrap data keys or agree keys.
    signer = new_key(service, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    for kid in (signer, others["hmac"]):
        with pytest.raises(InvalidKeyUsageException):
            service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x"))
        with pytest.raises(InvalidKeyUsageException):
            service.generate_data_key(
                ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256")
            )
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = peer.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidKeyUsageException):
        service.derive_shared_secret(
            ROOT_CALLER,
            DeriveSharedSecretRequest(
                key_id=signer, key_agreement_algorithm="ECDH", public_key=spki
            ),
        )
