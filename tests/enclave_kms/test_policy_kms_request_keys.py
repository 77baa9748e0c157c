"""Condition keys taken from the key and the request, as AWS KMS supplies them: kms:KeySpec,
kms:KeyUsage, kms:KeyOrigin, kms:RequestAlias, kms:EncryptionAlgorithm, kms:DataKeyPairSpec
and kms:KeyAgreementAlgorithm. Runs on both stores."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from signing_support import app, policy
from test_service_support import APP_CALLER, ROOT_CALLER, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import AccessDeniedException
from enclave_kms.model import (
    CreateAliasRequest,
    DecryptRequest,
    DeriveSharedSecretRequest,
    EncryptRequest,
    GenerateDataKeyPairRequest,
    GenerateDataKeyRequest,
)
from enclave_kms.service import KmsService


def _gdk(service: KmsService, key_id: str) -> None:
    service.generate_data_key(APP_CALLER, GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256"))


def test_key_spec_usage_and_origin_come_from_the_key(service: KmsService) -> None:
    allowed = new_key(
        service,
        policy=policy(
            app(
                "kms:GenerateDataKey",
                {
                    "StringEquals": {
                        "kms:KeySpec": "SYMMETRIC_DEFAULT",
                        "kms:KeyUsage": "ENCRYPT_DECRYPT",
                        "kms:KeyOrigin": "AWS_KMS",
                    }
                },
            )
        ),
    )
    _gdk(service, allowed)
    refused = new_key(
        service,
        policy=policy(app("kms:GenerateDataKey", {"StringEquals": {"kms:KeyOrigin": "EXTERNAL"}})),
    )
    with pytest.raises(AccessDeniedException):
        _gdk(service, refused)


def test_request_alias_is_the_alias_the_request_used(service: KmsService) -> None:
    only_via_alias = policy(
        app("kms:GenerateDataKey", {"StringEquals": {"kms:RequestAlias": "alias/app"}})
    )
    kid = new_key(service, policy=only_via_alias)
    service.create_alias(ROOT_CALLER, CreateAliasRequest(alias_name="alias/app", target_key_id=kid))
    _gdk(service, "alias/app")
    with pytest.raises(AccessDeniedException):
        _gdk(service, kid)  # by key id: no alias in the request, so the condition is false
    service.create_alias(
        ROOT_CALLER, CreateAliasRequest(alias_name="alias/other", target_key_id=kid)
    )
    with pytest.raises(AccessDeniedException):
        _gdk(service, "alias/other")


def test_encryption_algorithm_of_encrypt_decrypt_and_data_keys(service: KmsService) -> None:
    rsa_key = new_key(
        service,
        key_spec="RSA_2048",
        key_usage="ENCRYPT_DECRYPT",
        policy=policy(
            app(
                ["kms:Encrypt", "kms:Decrypt"],
                {"StringEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}},
            )
        ),
    )
    blob = service.encrypt(
        APP_CALLER,
        EncryptRequest(
            key_id=rsa_key, plaintext=b"secret", encryption_algorithm="RSAES_OAEP_SHA_256"
        ),
    ).ciphertext_blob
    assert blob is not None
    decrypted = service.decrypt(
        APP_CALLER,
        DecryptRequest(
            key_id=rsa_key, ciphertext_blob=blob, encryption_algorithm="RSAES_OAEP_SHA_256"
        ),
    )
    assert decrypted.plaintext == b"secret"
    with pytest.raises(AccessDeniedException):
        service.encrypt(
            APP_CALLER,
            EncryptRequest(
                key_id=rsa_key, plaintext=b"secret", encryption_algorithm="RSAES_OAEP_SHA_1"
            ),
        )
    # A data key is encrypted with the symmetric algorithm.
    symmetric = new_key(
        service,
        policy=policy(
            app(
                "kms:GenerateDataKey",
                {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}},
            )
        ),
    )
    _gdk(service, symmetric)


def test_data_key_pair_spec_and_key_agreement_algorithm(service: KmsService) -> None:
    kid = new_key(
        service,
        policy=policy(
            app(
                "kms:GenerateDataKeyPair",
                {"StringEquals": {"kms:DataKeyPairSpec": "ECC_NIST_P256"}},
            )
        ),
    )
    service.generate_data_key_pair(
        APP_CALLER, GenerateDataKeyPairRequest(key_id=kid, key_pair_spec="ECC_NIST_P256")
    )
    with pytest.raises(AccessDeniedException):
        service.generate_data_key_pair(
            APP_CALLER, GenerateDataKeyPairRequest(key_id=kid, key_pair_spec="ECC_NIST_P384")
        )
    agreement = new_key(
        service,
        key_spec="ECC_NIST_P256",
        key_usage="KEY_AGREEMENT",
        policy=policy(
            app("kms:DeriveSharedSecret", {"StringEquals": {"kms:KeyAgreementAlgorithm": "ECDH"}})
        ),
    )
    peer = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    secret = service.derive_shared_secret(
        APP_CALLER,
        DeriveSharedSecretRequest(
            key_id=agreement, key_agreement_algorithm="ECDH", public_key=peer
        ),
    ).shared_secret
    assert secret is not None and len(secret) == 32
