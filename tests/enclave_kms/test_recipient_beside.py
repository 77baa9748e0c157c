"""Recipient work done beside the signature check is kept only for an accepted document.

GenerateDataKey and Decrypt decide the key policy, DryRun and the cryptography while the
document's signature is still being checked (``Verifier.verify_then``). A document that then
fails must be answered and audited exactly as if nothing had been decided.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from test_recipient import enclave_key as enclave_key
from test_recipient import service as service
from test_service_support import ROOT_CALLER, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path

import enclave_kms._service_crypto as service_crypto
import enclave_kms._service_decrypt as service_decrypt
from enclave_kms.cms import decrypt_ciphertext_for_recipient
from enclave_kms.errors import (
    AccessDeniedException,
    DryRunOperationException,
    InvalidCiphertextException,
    NotFoundException,
    ValidationException,
)
from enclave_kms.model import DecryptRequest, GenerateDataKeyRequest, RecipientInfo
from enclave_kms.service import KmsService

PCR0 = bytes.fromhex("ab" * 48)


@pytest.fixture
def documents(
    attestation_document: Callable[..., bytes], enclave_key: rsa.RSAPrivateKey
) -> Iterator[Callable[[], bytes]]:
    spki = enclave_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    counter = iter(range(1, 1 << 30))
    # A distinct nonce each: every document is new to the verifier (no document cache).
    yield lambda: attestation_document(
        public_key=spki, pcrs={0: PCR0}, nonce=next(counter).to_bytes(4, "big")
    )


def as_recipient(document: bytes) -> RecipientInfo:
    return RecipientInfo("RSAES_OAEP_SHA_256", document)


def forged(document: bytes) -> RecipientInfo:
    damaged = bytearray(document)
    damaged[-1] ^= 1  # the ES384 signature's last byte
    return as_recipient(bytes(damaged))


@pytest.fixture
def wrap_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the threads that built a CiphertextForRecipient."""
    names: list[str] = []
    original = service_crypto.wrap_for

    def spy(*args: Any) -> bytes:
        names.append(threading.current_thread().name)
        return original(*args)

    monkeypatch.setattr(service_crypto, "wrap_for", spy)
    monkeypatch.setattr(service_decrypt, "wrap_for", spy)
    return names


def test_an_accepted_document_gets_what_was_made_beside_its_check(
    service: KmsService,
    documents: Callable[[], bytes],
    enclave_key: rsa.RSAPrivateKey,
    wrap_threads: list[str],
) -> None:
    kid = new_key(service)
    documents_seen = [documents() for _ in range(3)]
    for document in documents_seen:  # the first warms the chain; the rest are new documents
        r = service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(
                key_id=kid,
                key_spec="AES_256",
                recipient=as_recipient(document),
            ),
        )
        assert r.ciphertext_for_recipient is not None and r.ciphertext_blob is not None
        data_key = decrypt_ciphertext_for_recipient(r.ciphertext_for_recipient, enclave_key)
        d = service.decrypt(
            ROOT_CALLER,
            DecryptRequest(
                ciphertext_blob=r.ciphertext_blob,
                recipient=as_recipient(documents()),
            ),
        )
        assert d.ciphertext_for_recipient is not None and d.plaintext is None
        assert decrypt_ciphertext_for_recipient(d.ciphertext_for_recipient, enclave_key) == data_key
    main = threading.current_thread().name
    assert any(name != main for name in wrap_threads)  # the work did run beside the check
    records = service.query_audit(limit=20)
    assert [r.outcome for r in records[-6:]] == ["success"] * 6
    assert all(r.attestation_image_digest == PCR0.hex() for r in records[-6:])


def test_a_forged_document_is_refused_and_audited_as_if_nothing_was_decided(
    service: KmsService, documents: Callable[[], bytes], wrap_threads: list[str]
) -> None:
    kid = new_key(service)
    service.generate_data_key(  # warms the chain, so the next documents take the parallel path
        ROOT_CALLER,
        GenerateDataKeyRequest(
            key_id=kid,
            key_spec="AES_256",
            recipient=as_recipient(documents()),
        ),
    )
    blob = service.generate_data_key(
        ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256")
    ).ciphertext_blob
    wrap_threads.clear()
    for dry_run in (False, True):
        # Beside the check, the policy admitted the caller and DryRun was reached (or the
        # key wrapped): none of it may surface.
        with pytest.raises(AccessDeniedException):
            service.generate_data_key(
                ROOT_CALLER,
                GenerateDataKeyRequest(
                    key_id=kid, key_spec="AES_256", recipient=forged(documents()), dry_run=dry_run
                ),
            )
        with pytest.raises(AccessDeniedException):
            service.decrypt(
                ROOT_CALLER,
                DecryptRequest(
                    ciphertext_blob=blob, recipient=forged(documents()), dry_run=dry_run
                ),
            )
    assert wrap_threads  # the speculative work did happen, and was dropped
    for record in service.query_audit(limit=20)[-4:]:
        assert record.outcome == "AccessDeniedException"
        assert record.deny_reason is not None and "SignatureError" in record.deny_reason
        assert record.dry_run is False
        assert record.attestation_module_id is None and record.attestation_pcrs == ()


def test_dry_run_on_an_accepted_document_is_recorded(
    service: KmsService, documents: Callable[[], bytes]
) -> None:
    kid = new_key(service)
    for _ in range(2):
        with pytest.raises(DryRunOperationException):
            service.generate_data_key(
                ROOT_CALLER,
                GenerateDataKeyRequest(
                    key_id=kid,
                    key_spec="AES_256",
                    recipient=as_recipient(documents()),
                    dry_run=True,
                ),
            )
    for record in service.query_audit(limit=10)[-2:]:
        assert record.outcome == "DryRunOperationException" and record.dry_run is True
        assert record.attestation_image_digest == PCR0.hex()


def _warm(service: KmsService, kid: str, documents: Callable[[], bytes]) -> None:
    """Validate the chain once, so the next new documents take the parallel path."""
    service.generate_data_key(
        ROOT_CALLER,
        GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", recipient=as_recipient(documents())),
    )


def test_the_request_s_own_errors_win_over_a_forged_document(
    service: KmsService, documents: Callable[[], bytes]
) -> None:
    # The request is checked and its key found beside the signature check now: the errors
    # must still be those of checking the request first, as AWS does.
    kid = new_key(service)
    _warm(service, kid, documents)
    unknown = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(NotFoundException):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(
                key_id=unknown, key_spec="AES_256", recipient=forged(documents())
            ),
        )
    with pytest.raises(ValidationException, match="numberOfBytes"):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(key_id=kid, number_of_bytes=0, recipient=forged(documents())),
        )
    with pytest.raises(InvalidCiphertextException):
        service.decrypt(
            ROOT_CALLER,
            DecryptRequest(ciphertext_blob=b"\x01" * 64, recipient=forged(documents())),
        )
    outcomes = [r.outcome for r in service.query_audit(limit=10)[-3:]]
    assert outcomes == ["NotFoundException", "ValidationException", "InvalidCiphertextException"]


@pytest.mark.usefixtures("patient_caller")
def test_a_forged_document_s_audit_record_keeps_what_the_request_named(
    service: KmsService, documents: Callable[[], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    kid = new_key(service)
    _warm(service, kid, documents)
    checked_on: list[str] = []
    original = service_crypto._data_key_checks

    def spy(*args: Any, **kwargs: Any) -> None:
        checked_on.append(threading.current_thread().name)
        original(*args, **kwargs)

    monkeypatch.setattr(service_crypto, "_data_key_checks", spy)
    with pytest.raises(AccessDeniedException):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(
                key_id=kid,
                key_spec="AES_256",
                encryption_context={"tenant": "a"},
                recipient=forged(documents()),
            ),
        )
    assert checked_on and checked_on[0] != threading.current_thread().name  # on the helper
    record = service.query_audit(limit=10)[-1]
    assert record.outcome == "AccessDeniedException"
    assert record.key_arn is not None and record.key_arn.endswith(kid)
    assert record.encryption_context_keys == ("tenant",)
