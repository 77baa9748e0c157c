"""EnclaveSession against botocore Stubber responses: wire shape, CMS-only plaintext, errors."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from enclave_sdk_helpers import recipient_of, session_public_key

from attestation.document import parse_document
from attestation.policy import RequirePublicKey
from attestation.testing.pki import TestPki
from attestation.verifier import Verifier
from enclave_kms.cms import build_ciphertext_for_recipient
from enclave_kms.enclave._nsm import detect_nsm
from enclave_kms.enclave.errors import (
    AttestationUnavailableError,
    ConfigurationError,
    EnclaveError,
    KmsRequestError,
    RecipientDecryptionError,
    UnexpectedPlaintextError,
)
from enclave_kms.enclave.session import EnclaveSession

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
Stubbed = tuple[EnclaveSession, Stubber, Any, Any]


def _cfr(session: EnclaveSession, content: bytes) -> bytes:
    return build_ciphertext_for_recipient(content, session_public_key(session))


def test_generate_data_key_sends_recipient_and_returns_cms_plaintext(
    stubbed: Stubbed, test_pki: TestPki
) -> None:
    session, stubber, _, _ = stubbed
    data_key = os.urandom(32)
    stubber.add_response(
        "generate_data_key",
        {
            "KeyId": KEY_ARN,
            "CiphertextBlob": b"blob-bytes",
            "CiphertextForRecipient": _cfr(session, data_key),
        },
        # Stubber fails the call unless the request is exactly this.
        {
            "KeyId": "alias/app",
            "KeySpec": "AES_256",
            "EncryptionContext": {"purpose": "test"},
            "Recipient": recipient_of(session),
        },
    )
    key = session.generate_data_key("alias/app", encryption_context={"purpose": "test"})
    assert bytes(key.plaintext) == data_key
    assert isinstance(key.plaintext, bytearray)
    assert key.ciphertext_blob == b"blob-bytes"
    assert key.key_id == KEY_ARN

    # The document sent is a genuine-format one, signed by the (test) Nitro PKI, and carries
    # exactly the session's RSA SPKI as public_key.
    document = session.attestation_document()
    assert parse_document(document).public_key == session.public_key_der
    verified = Verifier([test_pki.root]).verify(document, policy=RequirePublicKey())
    assert verified.public_key_der == session.public_key_der


def test_session_key_is_rsa_2048_with_e_65537(stubbed: Stubbed) -> None:
    public = session_public_key(stubbed[0])
    assert public.key_size == 2048
    assert public.public_numbers().e == 65537


def test_decrypt_sends_recipient_and_returns_cms_plaintext(stubbed: Stubbed) -> None:
    session, stubber, _, _ = stubbed
    stubber.add_response(
        "decrypt",
        {
            "KeyId": KEY_ARN,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "CiphertextForRecipient": _cfr(session, b"the secret"),
        },
        {
            "CiphertextBlob": b"ct",
            "KeyId": KEY_ARN,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "Recipient": recipient_of(session),
        },
    )
    result = session.decrypt(b"ct", key_id=KEY_ARN, encryption_algorithm="SYMMETRIC_DEFAULT")
    assert bytes(result.plaintext) == b"the secret"
    assert result.key_id == KEY_ARN
    assert result.encryption_algorithm == "SYMMETRIC_DEFAULT"


def test_generate_random_sends_recipient(stubbed: Stubbed) -> None:
    session, stubber, _, _ = stubbed
    random = os.urandom(1024)
    stubber.add_response(
        "generate_random",
        {"CiphertextForRecipient": _cfr(session, random)},
        {"NumberOfBytes": 1024, "Recipient": recipient_of(session)},
    )
    assert bytes(session.generate_random(1024)) == random


def test_generate_data_key_pair_returns_private_key_from_cms(stubbed: Stubbed) -> None:
    session, stubber, _, _ = stubbed
    pair = ec.generate_private_key(ec.SECP256R1())
    private_der = pair.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_der = pair.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stubber.add_response(
        "generate_data_key_pair",
        {
            "KeyId": KEY_ARN,
            "KeyPairSpec": "ECC_NIST_P256",
            "PublicKey": public_der,
            "PrivateKeyCiphertextBlob": b"wrapped-private",
            "CiphertextForRecipient": _cfr(session, private_der),
        },
        {"KeyId": KEY_ARN, "KeyPairSpec": "ECC_NIST_P256", "Recipient": recipient_of(session)},
    )
    result = session.generate_data_key_pair(KEY_ARN, "ECC_NIST_P256")
    assert bytes(result.private_key) == private_der
    assert result.public_key == public_der
    assert result.private_key_ciphertext_blob == b"wrapped-private"
    assert result.key_pair_spec == "ECC_NIST_P256"
    result.wipe()
    assert result.private_key == bytearray(len(private_der))


@pytest.mark.parametrize(
    ("method", "operation", "response", "call"),
    [
        (
            "generate_data_key",
            "GenerateDataKey",
            {"KeyId": KEY_ARN, "CiphertextBlob": b"b", "Plaintext": b"k" * 32},
            lambda s: s.generate_data_key(KEY_ARN),
        ),
        (
            "decrypt",
            "Decrypt",
            {"KeyId": KEY_ARN, "Plaintext": b"secret"},
            lambda s: s.decrypt(b"ct"),
        ),
        (
            "generate_random",
            "GenerateRandom",
            {"Plaintext": b"r" * 16},
            lambda s: s.generate_random(16),
        ),
        (
            "generate_data_key_pair",
            "GenerateDataKeyPair",
            {"KeyId": KEY_ARN, "PublicKey": b"p", "PrivateKeyPlaintext": b"x"},
            lambda s: s.generate_data_key_pair(KEY_ARN, "RSA_2048"),
        ),
    ],
)
def test_a_plaintext_member_is_refused_even_with_valid_cms(
    stubbed: Stubbed, method: str, operation: str, response: dict[str, Any], call: Any
) -> None:
    session, stubber, _, _ = stubbed
    # Even when CiphertextForRecipient is also present and valid, the response is refused.
    response = {**response, "CiphertextForRecipient": _cfr(session, b"legit")}
    stubber.add_response(method, response)
    with pytest.raises(UnexpectedPlaintextError, match=operation):
        call(session)


def test_missing_ciphertext_for_recipient_is_a_recipient_error(stubbed: Stubbed) -> None:
    session, stubber, _, _ = stubbed
    stubber.add_response("decrypt", {"KeyId": KEY_ARN})
    with pytest.raises(RecipientDecryptionError, match="no CiphertextForRecipient"):
        session.decrypt(b"ct")


def test_client_error_becomes_kms_request_error_with_aws_code(stubbed: Stubbed) -> None:
    session, stubber, _, _ = stubbed
    stubber.add_client_error(
        "decrypt",
        service_error_code="AccessDeniedException",
        service_message="denied by key policy",
        http_status_code=400,
    )
    with pytest.raises(KmsRequestError) as caught:
        session.decrypt(b"ct")
    assert caught.value.code == "AccessDeniedException"
    assert caught.value.aws_message == "denied by key policy"
    assert caught.value.operation == "Decrypt"


def test_unreachable_endpoint_becomes_kms_request_error_without_code(make_nsm: Any) -> None:
    session = EnclaveSession(
        nsm=make_nsm(),
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        credentials=None,
    )
    with pytest.raises(KmsRequestError) as caught:
        session.generate_random(8)
    assert caught.value.code is None


def test_attestation_document_is_cached_until_max_age(stubbed: Stubbed) -> None:
    session, _, nsm, clock = stubbed
    first = session.attestation_document()
    clock.now += timedelta(minutes=4, seconds=59).total_seconds()
    assert session.attestation_document() == first
    assert len(nsm.requests) == 1
    clock.now += 1.0  # now exactly the 5-minute default max age
    second = session.attestation_document()
    assert len(nsm.requests) == 2
    assert second != first
    assert parse_document(second).public_key == session.public_key_der


def test_nonce_and_user_data_go_into_every_document(make_nsm: Any, kms_client: Any) -> None:
    nsm = make_nsm()
    session = EnclaveSession(nsm=nsm, kms_client=kms_client, nonce=b"n" * 16, user_data=b"u")
    document = parse_document(session.attestation_document())
    assert (document.nonce, document.user_data) == (b"n" * 16, b"u")
    assert nsm.requests == [
        {"user_data": b"u", "nonce": b"n" * 16, "public_key": session.public_key_der}
    ]


class _FailingNsm:
    def get_attestation_doc(self, **_: Any) -> bytes:
        from attestation.nsm import ErrorCode, NsmError

        raise NsmError(ErrorCode.InternalError, "device hiccup")


def test_nsm_failure_becomes_attestation_unavailable(kms_client: Any) -> None:
    session = EnclaveSession(nsm=_FailingNsm(), kms_client=kms_client)
    with pytest.raises(AttestationUnavailableError), Stubber(kms_client):
        session.generate_random(8)


def test_no_device_is_a_clear_error_not_a_silent_simulation(tmp_path: Any) -> None:
    with pytest.raises(AttestationUnavailableError, match="no NSM device") as caught:
        detect_nsm(tmp_path / "nsm")
    assert "--nsm simulated" in str(caught.value)


@pytest.mark.skipif(os.path.exists("/dev/nsm"), reason="this machine has a real NSM device")
def test_session_without_nsm_outside_an_enclave_raises(kms_client: Any) -> None:
    with pytest.raises(AttestationUnavailableError, match="not running inside a Nitro Enclave"):
        EnclaveSession(kms_client=kms_client)


@pytest.mark.parametrize("size", [1024, 2040, 4104, 8192, 2049])
def test_key_sizes_outside_2048_to_4096_are_refused(
    size: int, make_nsm: Any, kms_client: Any
) -> None:
    with pytest.raises(ConfigurationError):
        EnclaveSession(nsm=make_nsm(), kms_client=kms_client, key_size=size)


def test_a_3072_bit_key_is_put_in_the_document(make_nsm: Any, kms_client: Any) -> None:
    session = EnclaveSession(nsm=make_nsm(), kms_client=kms_client, key_size=3072)
    assert session_public_key(session).key_size == 3072
    assert parse_document(session.attestation_document()).public_key == session.public_key_der


@pytest.mark.parametrize(
    "max_age", [timedelta(0), timedelta(seconds=-1), timedelta(hours=2), timedelta(hours=3)]
)
def test_max_age_must_be_well_under_the_leaf_lifetime(
    max_age: timedelta, make_nsm: Any, kms_client: Any
) -> None:
    with pytest.raises(ConfigurationError):
        EnclaveSession(nsm=make_nsm(), kms_client=kms_client, attestation_max_age=max_age)


def test_reprs_do_not_show_secrets(stubbed: Stubbed) -> None:
    session, stubber, _, _ = stubbed
    data_key = bytes(range(32))
    stubber.add_response(
        "generate_data_key",
        {
            "KeyId": KEY_ARN,
            "CiphertextBlob": b"b",
            "CiphertextForRecipient": _cfr(session, data_key),
        },
    )
    key = session.generate_data_key(KEY_ARN)
    private_numbers = repr(session._recipient._private_key.private_numbers().d)
    for text in (repr(session), repr(key), repr(session._recipient)):
        assert data_key.hex() not in text
        assert repr(bytearray(data_key)) not in text
        assert private_numbers not in text
    assert "plaintext" not in repr(key)


def test_every_sdk_error_shares_one_root() -> None:
    for cls in (
        AttestationUnavailableError,
        ConfigurationError,
        KmsRequestError,
        RecipientDecryptionError,
        UnexpectedPlaintextError,
    ):
        assert issubclass(cls, EnclaveError)


def test_a_foreign_rsa_key_cannot_read_the_response(stubbed: Stubbed) -> None:
    session, stubber, _, _ = stubbed
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stubber.add_response(
        "generate_random",
        {"CiphertextForRecipient": build_ciphertext_for_recipient(b"x" * 8, other.public_key())},
    )
    with pytest.raises(RecipientDecryptionError):
        session.generate_random(8)


def test_credentials_repr_hides_the_secret_and_token() -> None:
    from enclave_kms.enclave import Credentials

    text = repr(Credentials("ASIAEXAMPLE", "wJalrXUtnFEMI-secret", "session-token-value"))
    assert "ASIAEXAMPLE" in text
    assert "wJalrXUtnFEMI-secret" not in text
    assert "session-token-value" not in text
