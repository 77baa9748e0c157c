"""RSA and ECC KMS keys, data key pairs, DeriveSharedSecret."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from test_service_support import ROOT_CALLER, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import (
    InvalidCiphertextException,
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)
from enclave_kms.model import (
    DecryptRequest,
    DeriveSharedSecretRequest,
    EncryptRequest,
    GenerateDataKeyPairRequest,
    GenerateDataKeyPairWithoutPlaintextRequest,
    GenerateDataKeyRequest,
    GetPublicKeyRequest,
    RotateKeyOnDemandRequest,
)
from enclave_kms.service import KmsService


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("alg", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"])
def test_rsa_encrypt_decrypt(service: KmsService, alg: str) -> None:
    kid = new_key(service, key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT")
    pub = service.get_public_key(ROOT_CALLER, GetPublicKeyRequest(key_id=kid))
    assert pub.encryption_algorithms == ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
    public = serialization.load_der_public_key(pub.public_key or b"")
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    # A ciphertext made outside KMS with the public key decrypts inside (the AWS workflow).
    # RSAES_OAEP_SHA_1 is an AWS algorithm; SHA-1 inside OAEP is what it names.
    h = hashes.SHA1() if alg.endswith("1") else hashes.SHA256()  # noqa: S303
    outside = public.encrypt(b"hello", padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
    d = service.decrypt(
        ROOT_CALLER, DecryptRequest(ciphertext_blob=outside, key_id=kid, encryption_algorithm=alg)
    )
    assert (d.plaintext, d.encryption_algorithm) == (b"hello", alg)
    e = service.encrypt(
        ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x" * 100, encryption_algorithm=alg)
    )
    d = service.decrypt(
        ROOT_CALLER,
        DecryptRequest(ciphertext_blob=e.ciphertext_blob, key_id=kid, encryption_algorithm=alg),
    )
    assert d.plaintext == b"x" * 100
    with pytest.raises(InvalidKeyUsageException):  # RSA keys need an RSAES algorithm
        service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x"))
    with pytest.raises(ValidationException, match="too long"):
        service.encrypt(
            ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x" * 300, encryption_algorithm=alg)
        )
    with pytest.raises(InvalidCiphertextException):
        service.decrypt(
            ROOT_CALLER,
            DecryptRequest(ciphertext_blob=b"\x01" * 256, key_id=kid, encryption_algorithm=alg),
        )
    with pytest.raises(InvalidKeyUsageException):  # not a data-key wrapping key
        service.generate_data_key(
            ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256")
        )
    with pytest.raises(UnsupportedOperationException):  # AWS rotates symmetric keys only
        service.rotate_key_on_demand(ROOT_CALLER, RotateKeyOnDemandRequest(key_id=kid))


def test_derive_shared_secret_matches_the_peer(service: KmsService) -> None:
    kid = new_key(service, key_spec="ECC_NIST_P384", key_usage="KEY_AGREEMENT")
    pub = service.get_public_key(ROOT_CALLER, GetPublicKeyRequest(key_id=kid))
    assert pub.key_agreement_algorithms == ("ECDH",)
    kms_public = serialization.load_der_public_key(pub.public_key or b"")
    assert isinstance(kms_public, ec.EllipticCurvePublicKey)
    peer = ec.generate_private_key(ec.SECP384R1())
    r = service.derive_shared_secret(
        ROOT_CALLER,
        DeriveSharedSecretRequest(
            key_id=kid, key_agreement_algorithm="ECDH", public_key=spki(peer)
        ),
    )
    assert r.shared_secret == peer.exchange(ec.ECDH(), kms_public)
    assert (r.key_agreement_algorithm, r.key_origin) == ("ECDH", "AWS_KMS")
    with pytest.raises(ValidationException, match="curve"):
        service.derive_shared_secret(
            ROOT_CALLER,
            DeriveSharedSecretRequest(
                key_id=kid,
                key_agreement_algorithm="ECDH",
                public_key=spki(ec.generate_private_key(ec.SECP256R1())),
            ),
        )
    symmetric = new_key(service)
    with pytest.raises(InvalidKeyUsageException):
        service.derive_shared_secret(
            ROOT_CALLER,
            DeriveSharedSecretRequest(
                key_id=symmetric, key_agreement_algorithm="ECDH", public_key=spki(peer)
            ),
        )


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("RSA_2048", rsa.RSAPrivateKey),
        ("ECC_NIST_P256", ec.EllipticCurvePrivateKey),
        ("ECC_NIST_P521", ec.EllipticCurvePrivateKey),
        ("ECC_SECG_P256K1", ec.EllipticCurvePrivateKey),
    ],
)
def test_data_key_pairs(service: KmsService, spec: str, kind: type) -> None:
    kid = new_key(service)
    r = service.generate_data_key_pair(
        ROOT_CALLER, GenerateDataKeyPairRequest(key_id=kid, key_pair_spec=spec)
    )
    private = serialization.load_der_private_key(r.private_key_plaintext or b"", None)
    assert isinstance(private, kind)
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == r.public_key
    )
    d = service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=r.private_key_ciphertext_blob))
    assert d.plaintext == r.private_key_plaintext
    w = service.generate_data_key_pair_without_plaintext(
        ROOT_CALLER, GenerateDataKeyPairWithoutPlaintextRequest(key_id=kid, key_pair_spec=spec)
    )
    assert w.private_key_ciphertext_blob is not None and w.key_pair_spec == spec


@pytest.mark.parametrize("spec", ["SM2", "ECC_NIST_EDWARDS25519", "ML_KEM_768"])
def test_unsupported_pair_specs(service: KmsService, spec: str) -> None:
    kid = new_key(service)
    with pytest.raises(UnsupportedOperationException, match=spec):
        service.generate_data_key_pair(
            ROOT_CALLER, GenerateDataKeyPairRequest(key_id=kid, key_pair_spec=spec)
        )
    with pytest.raises(ValidationException, match="enum"):
        service.generate_data_key_pair(
            ROOT_CALLER, GenerateDataKeyPairRequest(key_id=kid, key_pair_spec="RSA_1024")
        )


def test_symmetric_key_has_no_public_key(service: KmsService) -> None:
    kid = new_key(service)
    with pytest.raises(UnsupportedOperationException):
        service.get_public_key(ROOT_CALLER, GetPublicKeyRequest(key_id=kid))
