"""Condition keys taken from the key and the request, as AWS KMS supplies them: kms:KeySpec,
kms:KeyUsage, kms:KeyOrigin, kms:RequestAlias, kms:EncryptionAlgorithm, kms:DataKeyPairSpec
kms:KeyAgreementAlgorithm and kms:ReEncryptOnSameKey. Runs on both stores."""

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
    ReEncryptRequest,
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


def test_re_encrypt_on_same_key_is_offered_to_both_permissions(service: KmsService) -> None:
    # Re-encryption only in place (a rotation-style re-wrap), never onto another key.
    in_place = policy(
        app("kms:Encrypt"),
        app("kms:ReEncrypt*", {"Bool": {"kms:ReEncryptOnSameKey": "true"}}),
    )
    kid, other = new_key(service, policy=in_place), new_key(service, policy=in_place)
    blob = service.encrypt(APP_CALLER, EncryptRequest(key_id=kid, plaintext=b"x")).ciphertext_blob
    again = service.re_encrypt(
        APP_CALLER, ReEncryptRequest(ciphertext_blob=blob, destination_key_id=kid)
    )
    assert again.key_id == again.source_key_id
    with pytest.raises(AccessDeniedException):
        service.re_encrypt(
            APP_CALLER, ReEncryptRequest(ciphertext_blob=blob, destination_key_id=other)
        )
    # The denial is recorded against the key whose policy refused: the source.
    [denied] = [r for r in service.query_audit(limit=100) if r.outcome == "AccessDeniedException"]
    assert denied.key_arn == again.source_key_id
    # The destination's policy sees the same value: a key that only receives from others.
    receiver = new_key(
        service,
        policy=policy(app("kms:ReEncryptTo", {"Bool": {"kms:ReEncryptOnSameKey": "false"}})),
    )
    anywhere = new_key(service, policy=policy(app(["kms:Encrypt", "kms:ReEncryptFrom"])))
    source = service.encrypt(APP_CALLER, EncryptRequest(key_id=anywhere, plaintext=b"y"))
    moved = service.re_encrypt(
        APP_CALLER,
        ReEncryptRequest(ciphertext_blob=source.ciphertext_blob, destination_key_id=receiver),
    )
    assert moved.key_id is not None and moved.key_id.endswith(receiver)
