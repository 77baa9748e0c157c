"""Recipient: attested requests get CiphertextForRecipient and never a plaintext field."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from test_service_support import ACCOUNT, ROOT_CALLER, PinnedClock, make_service, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path

from attestation import Verifier
from attestation.testing.pki import TestPki
from enclave_kms.cms import decrypt_ciphertext_for_recipient
from enclave_kms.errors import AccessDeniedException, ValidationException
from enclave_kms.model import (
    DecryptRequest,
    DeriveSharedSecretRequest,
    EncryptRequest,
    GenerateDataKeyPairRequest,
    GenerateDataKeyRequest,
    GenerateRandomRequest,
    PutKeyPolicyRequest,
    RecipientInfo,
)
from enclave_kms.service import KmsService

PCR0 = bytes.fromhex("ab" * 48)
OTHER_PCR0 = bytes.fromhex("cd" * 48)


@pytest.fixture(scope="module")
def enclave_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def spki(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def service(db_path: Path, clock: PinnedClock, nitro_pki: TestPki) -> Iterator[KmsService]:
    svc = make_service(db_path, clock, verifier=Verifier(trusted_roots=[nitro_pki.root]))
    yield svc
    svc.close()


@pytest.fixture
def recipient(
    attestation_document: Callable[..., bytes], enclave_key: rsa.RSAPrivateKey
) -> RecipientInfo:
    doc = attestation_document(public_key=spki(enclave_key), pcrs={0: PCR0, 1: PCR0})
    return RecipientInfo("RSAES_OAEP_SHA_256", doc)


def test_generate_data_key_for_recipient(
    service: KmsService, recipient: RecipientInfo, enclave_key: rsa.RSAPrivateKey
) -> None:
    kid = new_key(service)
    r = service.generate_data_key(
        ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", recipient=recipient)
    )
    assert r.plaintext is None  # absent, not empty
    assert r.ciphertext_blob is not None and r.ciphertext_for_recipient is not None
    data_key = decrypt_ciphertext_for_recipient(r.ciphertext_for_recipient, enclave_key)
    plain = service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=r.ciphertext_blob))
    assert plain.plaintext == data_key and len(data_key) == 32
    audit = service.query_audit(limit=10)[-2]
    assert audit.operation == "GenerateDataKey" and audit.outcome == "success"
    assert audit.attestation_image_digest == PCR0.hex()
    assert audit.attestation_module_id
    assert 0 in audit.attestation_pcrs and 1 in audit.attestation_pcrs


def test_decrypt_random_pair_and_shared_secret_for_recipient(
    service: KmsService, recipient: RecipientInfo, enclave_key: rsa.RSAPrivateKey
) -> None:
    kid = new_key(service)
    blob = service.encrypt(
        ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"the secret")
    ).ciphertext_blob
    d = service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob, recipient=recipient))
    assert d.plaintext is None and d.ciphertext_for_recipient is not None
    assert (
        decrypt_ciphertext_for_recipient(d.ciphertext_for_recipient, enclave_key) == b"the secret"
    )

    g = service.generate_random(
        ROOT_CALLER, GenerateRandomRequest(number_of_bytes=48, recipient=recipient)
    )
    assert g.plaintext is None and g.ciphertext_for_recipient is not None
    assert len(decrypt_ciphertext_for_recipient(g.ciphertext_for_recipient, enclave_key)) == 48

    p = service.generate_data_key_pair(
        ROOT_CALLER,
        GenerateDataKeyPairRequest(key_id=kid, key_pair_spec="ECC_NIST_P256", recipient=recipient),
    )
    assert p.private_key_plaintext is None and p.ciphertext_for_recipient is not None
    der = decrypt_ciphertext_for_recipient(p.ciphertext_for_recipient, enclave_key)
    private = serialization.load_der_private_key(der, None)
    assert spki(private) == p.public_key  # type: ignore[arg-type]

    ecc = new_key(service, key_spec="ECC_NIST_P256", key_usage="KEY_AGREEMENT")
    peer = ec.generate_private_key(ec.SECP256R1())
    s = service.derive_shared_secret(
        ROOT_CALLER,
        DeriveSharedSecretRequest(
            key_id=ecc, key_agreement_algorithm="ECDH", public_key=spki(peer), recipient=recipient
        ),
    )
    assert s.shared_secret is None and s.ciphertext_for_recipient is not None
    plain = service.derive_shared_secret(
        ROOT_CALLER,
        DeriveSharedSecretRequest(
            key_id=ecc, key_agreement_algorithm="ECDH", public_key=spki(peer)
        ),
    )
    assert (
        decrypt_ciphertext_for_recipient(s.ciphertext_for_recipient, enclave_key)
        == plain.shared_secret
    )


@pytest.mark.interop
def test_openssl_decrypts_ciphertext_for_recipient(
    service: KmsService, recipient: RecipientInfo, enclave_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    kid = new_key(service)
    r = service.generate_data_key(
        ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, number_of_bytes=64, recipient=recipient)
    )
    assert r.ciphertext_for_recipient is not None
    (tmp_path / "cfr.cms").write_bytes(r.ciphertext_for_recipient)
    (tmp_path / "key.pem").write_bytes(
        enclave_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    subprocess.run(
        [
            openssl,
            "cms",
            "-decrypt",
            "-debug_decrypt",
            "-inform",
            "DER",
            "-binary",
            "-in",
            str(tmp_path / "cfr.cms"),
            "-inkey",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "pt.bin"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    expected = service.decrypt(
        ROOT_CALLER, DecryptRequest(ciphertext_blob=r.ciphertext_blob)
    ).plaintext
    assert (tmp_path / "pt.bin").read_bytes() == expected


def test_untrusted_root_is_denied_with_reason_in_audit_only(
    db_path: Path, clock: PinnedClock, recipient: RecipientInfo
) -> None:
    service = make_service(db_path, clock)  # trusts the AWS Nitro root only
    kid = new_key(service)
    with pytest.raises(AccessDeniedException) as err:
        service.generate_data_key(
            ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", recipient=recipient)
        )
    record = service.query_audit(limit=10)[-1]
    assert record.outcome == "AccessDeniedException"
    assert record.deny_reason is not None and "CertificateChainError" in record.deny_reason
    assert "Chain" not in err.value.message and "certificate" not in err.value.message.lower()
    service.close()


def test_stale_document_with_max_age(
    db_path: Path,
    clock: PinnedClock,
    nitro_pki: TestPki,
    attestation_document: Callable[..., bytes],
    enclave_key: rsa.RSAPrivateKey,
) -> None:
    service = make_service(
        db_path,
        clock,
        verifier=Verifier(trusted_roots=[nitro_pki.root]),
        recipient_max_age=timedelta(minutes=5),
    )
    kid = new_key(service)
    old = attestation_document(
        public_key=spki(enclave_key), timestamp=clock.now - timedelta(minutes=10)
    )
    with pytest.raises(AccessDeniedException):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(
                key_id=kid, key_spec="AES_256", recipient=RecipientInfo("RSAES_OAEP_SHA_256", old)
            ),
        )
    assert "StaleDocumentError" in (service.query_audit(limit=10)[-1].deny_reason or "")
    service.close()


def test_pcr_condition_in_key_policy(
    service: KmsService, attestation_document: Callable[..., bytes], enclave_key: rsa.RSAPrivateKey
) -> None:
    kid = new_key(service)
    admin = f"arn:aws:iam::{ACCOUNT}:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": admin},
                "Action": ["kms:PutKeyPolicy", "kms:Encrypt"],
                "Resource": "*",
            },
            {
                "Sid": "EnclaveOnly",
                "Effect": "Allow",
                "Principal": {"AWS": admin},
                "Action": "kms:GenerateDataKey",
                "Resource": "*",
                "Condition": {
                    "StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": PCR0.hex().upper()}
                },
            },
        ],
    }
    service.put_key_policy(ROOT_CALLER, PutKeyPolicyRequest(key_id=kid, policy=json.dumps(policy)))

    def gdk(pcr0: bytes | None) -> object:
        rec = None
        if pcr0 is not None:
            doc = attestation_document(public_key=spki(enclave_key), pcrs={0: pcr0})
            rec = RecipientInfo("RSAES_OAEP_SHA_256", doc)
        return service.generate_data_key(
            ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", recipient=rec)
        )

    gdk(PCR0)
    for pcr0 in (OTHER_PCR0, None):  # a wrong image, and no attestation at all
        with pytest.raises(AccessDeniedException) as err:
            gdk(pcr0)
        record = service.query_audit(limit=100)[-1]
        assert record.outcome == "AccessDeniedException"
        assert record.deny_reason is not None and "EnclaveOnly" in record.deny_reason
        assert "EnclaveOnly" not in err.value.message and "PCR0" not in err.value.message


@pytest.mark.parametrize("kind", ["none", "ec", "rsa1024", "garbage-doc"])
def test_documents_without_a_usable_rsa_key_are_refused(
    service: KmsService, attestation_document: Callable[..., bytes], kind: str
) -> None:
    kid = new_key(service)
    if kind == "none":
        doc = attestation_document(public_key=None)
    elif kind == "ec":
        doc = attestation_document(public_key=spki(ec.generate_private_key(ec.SECP384R1())))
    elif kind == "rsa1024":
        # A deliberately weak key: the service must refuse it.
        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
        doc = attestation_document(public_key=spki(small))
    else:
        doc = b"\x84not a cose document"
    with pytest.raises(ValidationException, match="attestation document"):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(
                key_id=kid, key_spec="AES_256", recipient=RecipientInfo("RSAES_OAEP_SHA_256", doc)
            ),
        )
    assert service.query_audit(limit=100)[-1].deny_reason


def test_dry_run_with_recipient_verifies_the_document(
    service: KmsService, recipient: RecipientInfo
) -> None:
    from enclave_kms.errors import DryRunOperationException

    kid = new_key(service)
    with pytest.raises(DryRunOperationException):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(
                key_id=kid, key_spec="AES_256", recipient=recipient, dry_run=True
            ),
        )
    bad = RecipientInfo("RSAES_OAEP_SHA_256", b"\x00")
    with pytest.raises(ValidationException):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", recipient=bad, dry_run=True),
        )


def test_debug_enclaves_are_refused_only_when_the_operator_says_so(
    db_path: Path,
    clock: PinnedClock,
    nitro_pki: TestPki,
    attestation_document: Callable[..., bytes],
    enclave_key: rsa.RSAPrivateKey,
) -> None:
    # AWS KMS accepts debug-mode documents (PCR0..2 zero); the parent can read such an
    # enclave's memory, so an operator may refuse them whatever the key policies say.
    debug = RecipientInfo(
        "RSAES_OAEP_SHA_256", attestation_document(public_key=spki(enclave_key), debug=True)
    )
    verifier = Verifier(trusted_roots=[nitro_pki.root])
    lenient = make_service(db_path, clock, verifier=verifier)
    kid = new_key(lenient)
    request = GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", recipient=debug)
    assert lenient.generate_data_key(ROOT_CALLER, request).ciphertext_for_recipient
    lenient.close()
    strict = make_service(db_path, clock, verifier=verifier, recipient_reject_debug=True)
    with pytest.raises(AccessDeniedException) as denied:
        strict.generate_data_key(ROOT_CALLER, request)
    assert "debug" not in denied.value.message
    audit = strict.query_audit(limit=1000)[-1]
    assert audit.outcome == "AccessDeniedException" and "debug-mode" in (audit.deny_reason or "")
    strict.close()
