"""The data-key family: GenerateDataKey*, Encrypt, Decrypt, ReEncrypt, GenerateRandom, rotation,
DryRun, validation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_service_support import ROOT_CALLER, PinnedClock, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms._ciphertext import read_header
from enclave_kms.errors import (
    DryRunOperationException,
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    ValidationException,
)
from enclave_kms.model import (
    CreateAliasRequest,
    DecryptRequest,
    EnableKeyRotationRequest,
    EncryptRequest,
    GenerateDataKeyPairRequest,
    GenerateDataKeyPairWithoutPlaintextRequest,
    GenerateDataKeyRequest,
    GenerateDataKeyWithoutPlaintextRequest,
    GenerateRandomRequest,
    GetKeyRotationStatusRequest,
    ListKeyRotationsRequest,
    RecipientInfo,
    ReEncryptRequest,
    RotateKeyOnDemandRequest,
)
from enclave_kms.service import KmsService

CTX = {"purpose": "test", "tenant": "a"}


def test_generate_data_key_specs_and_decrypt(service: KmsService) -> None:
    kid = new_key(service)
    for spec, size in (("AES_256", 32), ("AES_128", 16)):
        r = service.generate_data_key(
            ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec=spec, encryption_context=CTX)
        )
        assert r.plaintext is not None and len(r.plaintext) == size
        assert r.ciphertext_for_recipient is None
        assert r.key_id == f"arn:aws:kms:eu-west-1:111122223333:key/{kid}"
        d = service.decrypt(
            ROOT_CALLER, DecryptRequest(ciphertext_blob=r.ciphertext_blob, encryption_context=CTX)
        )
        assert d.plaintext == r.plaintext
        assert (d.key_id, d.encryption_algorithm) == (r.key_id, "SYMMETRIC_DEFAULT")
    r = service.generate_data_key(
        ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, number_of_bytes=1024)
    )
    assert r.plaintext is not None and len(r.plaintext) == 1024


def test_generate_data_key_without_plaintext(service: KmsService) -> None:
    kid = new_key(service)
    r = service.generate_data_key_without_plaintext(
        ROOT_CALLER, GenerateDataKeyWithoutPlaintextRequest(key_id=kid, number_of_bytes=7)
    )
    assert r.ciphertext_blob is not None
    d = service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=r.ciphertext_blob))
    assert d.plaintext is not None and len(d.plaintext) == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Please specify either number of bytes or key spec."),
        (
            {"key_spec": "AES_256", "number_of_bytes": 32},
            "Please specify either number of bytes or key spec.",
        ),
        (
            {"number_of_bytes": 0},
            "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1",
        ),
        ({"number_of_bytes": 1025}, "Member must have value less than or equal to 1024"),
        (
            {"key_spec": "AES-256"},
            "Value 'AES-256' at 'keySpec' failed to satisfy constraint: Member must satisfy enum "
            "value set: [AES_256, AES_128]",
        ),
        ({"key_spec": "AES_256", "grant_tokens": ("t",) * 11}, "'grantTokens'"),
        (
            {"key_spec": "AES_256", "recipient": RecipientInfo("RSAES_OAEP_SHA_1", b"x")},
            "'recipient.keyEncryptionAlgorithm'",
        ),
        (
            {"key_spec": "AES_256", "recipient": RecipientInfo("RSAES_OAEP_SHA_256", None)},
            "Value null at 'recipient.attestationDocument'",
        ),
    ],
)
def test_generate_data_key_validation(
    service: KmsService, kwargs: dict[str, object], message: str
) -> None:
    kid = new_key(service)
    with pytest.raises(ValidationException) as err:
        service.generate_data_key(ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, **kwargs))  # type: ignore[arg-type]
    assert message in err.value.message


def test_two_errors_are_reported_together(service: KmsService) -> None:
    with pytest.raises(ValidationException) as err:
        service.generate_data_key(ROOT_CALLER, GenerateDataKeyRequest(key_id="", number_of_bytes=0))
    assert err.value.message.startswith("2 validation errors detected: ")


def test_encrypt_decrypt_and_context_binding(service: KmsService) -> None:
    kid = new_key(service)
    blob = service.encrypt(
        ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"p" * 4096, encryption_context=CTX)
    ).ciphertext_blob
    assert blob is not None
    with pytest.raises(InvalidCiphertextException):
        service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob))
    with pytest.raises(InvalidCiphertextException):
        service.decrypt(
            ROOT_CALLER,
            DecryptRequest(ciphertext_blob=blob, encryption_context={**CTX, "tenant": "b"}),
        )
    with pytest.raises(ValidationException, match="'plaintext'"):
        service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"p" * 4097))
    with pytest.raises(ValidationException, match="'plaintext'"):
        service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b""))
    with pytest.raises(InvalidKeyUsageException):
        service.encrypt(
            ROOT_CALLER,
            EncryptRequest(key_id=kid, plaintext=b"x", encryption_algorithm="RSAES_OAEP_SHA_256"),
        )


def test_decrypt_with_key_id_checks_the_blob_key(service: KmsService) -> None:
    a, b = new_key(service), new_key(service)
    service.create_alias(ROOT_CALLER, CreateAliasRequest(alias_name="alias/a", target_key_id=a))
    blob = service.encrypt(ROOT_CALLER, EncryptRequest(key_id=a, plaintext=b"x")).ciphertext_blob
    assert (
        service.decrypt(
            ROOT_CALLER, DecryptRequest(ciphertext_blob=blob, key_id="alias/a")
        ).plaintext
        == b"x"
    )
    with pytest.raises(IncorrectKeyException):
        service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob, key_id=b))


def test_re_encrypt(service: KmsService) -> None:
    a, b = new_key(service), new_key(service)
    blob = service.encrypt(
        ROOT_CALLER, EncryptRequest(key_id=a, plaintext=b"move me", encryption_context=CTX)
    ).ciphertext_blob
    r = service.re_encrypt(
        ROOT_CALLER,
        ReEncryptRequest(
            ciphertext_blob=blob,
            source_encryption_context=CTX,
            destination_key_id=b,
            destination_encryption_context={"new": "ctx"},
        ),
    )
    assert r.source_key_id is not None and r.source_key_id.endswith(a)
    assert r.key_id is not None and r.key_id.endswith(b)
    assert r.ciphertext_blob is not None and read_header(r.ciphertext_blob).key_id == b
    d = service.decrypt(
        ROOT_CALLER,
        DecryptRequest(ciphertext_blob=r.ciphertext_blob, encryption_context={"new": "ctx"}),
    )
    assert d.plaintext == b"move me"
    with pytest.raises(IncorrectKeyException):
        service.re_encrypt(
            ROOT_CALLER,
            ReEncryptRequest(
                ciphertext_blob=blob,
                source_key_id=b,
                destination_key_id=a,
                source_encryption_context=CTX,
            ),
        )


def test_rotation_keeps_old_ciphertexts_decryptable(service: KmsService) -> None:
    kid = new_key(service)
    blobs = []
    for i in range(4):
        blob = service.encrypt(
            ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=bytes([i]) * 8)
        ).ciphertext_blob
        assert blob is not None
        assert read_header(blob).key_version == i + 1  # new ciphertexts use the newest version
        blobs.append(blob)
        service.rotate_key_on_demand(ROOT_CALLER, RotateKeyOnDemandRequest(key_id=kid))
    for i, blob in enumerate(blobs):
        assert (
            service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob)).plaintext
            == bytes([i]) * 8
        )
    rotations = service.list_key_rotations(
        ROOT_CALLER, ListKeyRotationsRequest(key_id=kid)
    ).rotations
    assert rotations is not None and [r.rotation_type for r in rotations] == ["ON_DEMAND"] * 4
    assert [r.key_material_state for r in rotations][-1] == "CURRENT"
    page = service.list_key_rotations(ROOT_CALLER, ListKeyRotationsRequest(key_id=kid, limit=3))
    assert page.truncated is True and page.next_marker is not None
    rest = service.list_key_rotations(
        ROOT_CALLER, ListKeyRotationsRequest(key_id=kid, limit=3, marker=page.next_marker)
    )
    assert rest.rotations is not None and len(rest.rotations) == 1


def test_automatic_rotation_happens_lazily_when_due(
    service: KmsService, clock: PinnedClock
) -> None:
    kid = new_key(service)
    with pytest.raises(ValidationException, match="rotationPeriodInDays"):
        service.enable_key_rotation(
            ROOT_CALLER, EnableKeyRotationRequest(key_id=kid, rotation_period_in_days=89)
        )
    service.enable_key_rotation(
        ROOT_CALLER, EnableKeyRotationRequest(key_id=kid, rotation_period_in_days=90)
    )
    status = service.get_key_rotation_status(ROOT_CALLER, GetKeyRotationStatusRequest(key_id=kid))
    assert status.key_rotation_enabled is True and status.rotation_period_in_days == 90
    assert status.next_rotation_date == clock.now + timedelta(days=90)
    old = service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"old")).ciphertext_blob
    assert old is not None
    clock.advance(days=90)
    new = service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"new")).ciphertext_blob
    assert new is not None and read_header(new).key_version == 2
    status = service.get_key_rotation_status(ROOT_CALLER, GetKeyRotationStatusRequest(key_id=kid))
    assert status.next_rotation_date == clock.now + timedelta(days=90)
    assert service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=old)).plaintext == b"old"
    rotations = service.list_key_rotations(
        ROOT_CALLER, ListKeyRotationsRequest(key_id=kid)
    ).rotations
    assert rotations is not None and [r.rotation_type for r in rotations] == ["AUTOMATIC"]


def test_generate_random(service: KmsService) -> None:
    r = service.generate_random(ROOT_CALLER, GenerateRandomRequest(number_of_bytes=1024))
    assert r.plaintext is not None and len(r.plaintext) == 1024
    assert r.ciphertext_for_recipient is None
    for n in (0, 1025):
        with pytest.raises(ValidationException, match="numberOfBytes"):
            service.generate_random(ROOT_CALLER, GenerateRandomRequest(number_of_bytes=n))


def test_dry_run_on_each_operation_checks_and_does_nothing(service: KmsService) -> None:
    kid = new_key(service)
    blob = service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x")).ciphertext_blob
    calls = [
        lambda: service.generate_data_key(
            ROOT_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", dry_run=True)
        ),
        lambda: service.generate_data_key_without_plaintext(
            ROOT_CALLER,
            GenerateDataKeyWithoutPlaintextRequest(key_id=kid, key_spec="AES_256", dry_run=True),
        ),
        lambda: service.generate_data_key_pair(
            ROOT_CALLER,
            GenerateDataKeyPairRequest(key_id=kid, key_pair_spec="ECC_NIST_P256", dry_run=True),
        ),
        lambda: service.generate_data_key_pair_without_plaintext(
            ROOT_CALLER,
            GenerateDataKeyPairWithoutPlaintextRequest(
                key_id=kid, key_pair_spec="ECC_NIST_P256", dry_run=True
            ),
        ),
        lambda: service.encrypt(
            ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x", dry_run=True)
        ),
        lambda: service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob, dry_run=True)),
        lambda: service.decrypt(
            ROOT_CALLER,
            DecryptRequest(key_id=kid, dry_run=True, dry_run_modifiers=("IGNORE_CIPHERTEXT",)),
        ),
        lambda: service.re_encrypt(
            ROOT_CALLER,
            ReEncryptRequest(ciphertext_blob=blob, destination_key_id=kid, dry_run=True),
        ),
    ]
    for call in calls:
        with pytest.raises(DryRunOperationException, match="DryRun"):
            call()
    # A dry run still performs the checks: a wrong context fails as it would for real.
    with pytest.raises(InvalidCiphertextException):
        service.decrypt(
            ROOT_CALLER, DecryptRequest(ciphertext_blob=blob, encryption_context=CTX, dry_run=True)
        )
    records = service.query_audit(limit=100)
    assert sum(r.dry_run for r in records) == len(calls)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_bit_flip_is_invalid_ciphertext(service: KmsService, data: st.DataObject) -> None:
    if not hasattr(service, "_flip_blob"):
        kid = new_key(service)
        blob = service.encrypt(
            ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"secret", encryption_context=CTX)
        ).ciphertext_blob
        service._flip_blob = blob  # type: ignore[attr-defined]
    blob = service._flip_blob  # type: ignore[attr-defined]
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    flipped = bytearray(blob)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidCiphertextException):
        service.decrypt(
            ROOT_CALLER, DecryptRequest(ciphertext_blob=bytes(flipped), encryption_context=CTX)
        )


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"tenant": "A", "Tenant": "B"}, "differ only by case"),
        ({"k": "v" * 8192}, "at most 8192 bytes"),
    ],
)
def test_encryption_contexts_that_could_bypass_conditions_are_refused(
    service: KmsService, context: dict[str, str], message: str
) -> None:
    # Condition keys fold the case of kms:EncryptionContext:<key>, so case-twins would give a
    # negated Deny two values to choose from; and every context's keys reach the audit record.
    kid = new_key(service)
    with pytest.raises(ValidationException, match=message):
        service.encrypt(
            ROOT_CALLER,
            EncryptRequest(key_id=kid, plaintext=b"x", encryption_context=context),
        )
    with pytest.raises(ValidationException, match=message):
        service.generate_data_key(
            ROOT_CALLER,
            GenerateDataKeyRequest(key_id=kid, key_spec="AES_256", encryption_context=context),
        )


def test_every_invalid_ciphertext_gets_the_same_message(service: KmsService) -> None:
    # A blob naming no key of ours must be indistinguishable from a tampered one.
    kid = new_key(service)
    blob = service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x")).ciphertext_blob
    assert blob is not None
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    foreign = blob[:3] + bytes(16) + blob[19:]  # another key id in the header
    messages = set()
    for bad in (tampered, foreign, b"EK\x01" + bytes(60)):
        with pytest.raises(InvalidCiphertextException) as caught:
            service.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=bad))
        messages.add(caught.value.message)
    assert len(messages) == 1 and messages != {""}
