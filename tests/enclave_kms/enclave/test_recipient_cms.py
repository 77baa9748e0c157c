"""The CMS path the SDK uses: real KMS samples parse; corrupted envelopes are typed errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from enclave_sdk_helpers import session_public_key
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_kms import cms
from enclave_kms.enclave.errors import RecipientDecryptionError
from enclave_kms.enclave.session import EnclaveSession

SAMPLES = [
    "rustcrypto_kms_ciphertext_for_recipient_1.ber",
    "rustcrypto_kms_ciphertext_for_recipient_4.ber",
    "sdkc_cms_test_input_ber.der",
    "sdkc_cms_test_input_ber_w_ctx.der",
]


@pytest.mark.parametrize("name", SAMPLES)
def test_real_kms_samples_pass_the_structural_parse_and_fail_only_at_decryption(
    name: str, fixtures_dir: Path, stubbed: Any
) -> None:
    session, stubber, _, _ = stubbed
    sample = (fixtures_dir / "kms" / name).read_bytes()
    envelope = cms.parse_ciphertext_for_recipient(sample)
    assert envelope.content_algorithm == "aes256_cbc"
    assert len(envelope.encrypted_key) == 256  # RSA-2048 recipients
    # The session's key is not the one these were encrypted to (those private keys are not
    # public), so the SDK must get past parsing and fail at decryption with its typed error.
    stubber.add_response("generate_random", {"CiphertextForRecipient": sample})
    with pytest.raises(RecipientDecryptionError) as caught:
        session.generate_random(32)
    assert isinstance(caught.value.__cause__, cms.CmsDecryptionError)


def _valid_cfr(session: EnclaveSession, content: bytes = b"k" * 32) -> bytes:
    return cms.build_ciphertext_for_recipient(content, session_public_key(session))


@pytest.mark.parametrize("keep", [0, 1, 2, 16, 100, 300, 400, 480, -2, -1])
def test_truncated_envelope_is_a_recipient_error(keep: int, stubbed: Any) -> None:
    session, stubber, _, _ = stubbed
    data = _valid_cfr(session)
    truncated = data[:keep]  # a prefix, or (negative) all but the last bytes
    stubber.add_response("generate_random", {"CiphertextForRecipient": truncated})
    with pytest.raises(RecipientDecryptionError):
        session.generate_random(32)


def test_recipient_decrypt_rejects_every_single_byte_corruption(make_nsm: Any) -> None:
    # Drive the session's decrypt step directly (no KMS round trip) over many corruptions.
    import boto3

    session = EnclaveSession(
        nsm=make_nsm(),
        kms_client=boto3.client(
            "kms",
            region_name="us-east-1",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="x",
        ),
    )
    recipient = session._recipient
    data = _valid_cfr(session)
    assert bytes(recipient.decrypt(data)) == b"k" * 32

    @settings(max_examples=150, deadline=None)
    @given(position=st.integers(0, len(data) - 1), flip=st.integers(1, 255))
    def check(position: int, flip: int) -> None:
        corrupted = bytearray(data)
        corrupted[position] ^= flip
        try:
            result = recipient.decrypt(bytes(corrupted))
        except RecipientDecryptionError:
            return
        # A flip inside the unauthenticated CBC IV or the last-but-one block can still yield
        # valid padding (CMS from KMS has no MAC, kms-recipient.md §4); the result then
        # differs from the original. What must never happen is any other exception.
        assert bytes(result) != b"k" * 32 or position in _ignored_positions(data)

    check()


def _ignored_positions(data: bytes) -> set[int]:
    # Bytes whose value does not change the decoded meaning: the rid (opaque, not checked by
    # any client) sits right after the KTRI version. Locate it by its tag and length.
    start = data.find(b"\x80\x20")
    return set(range(start + 2, start + 34)) if start >= 0 else set()


def test_garbage_is_a_recipient_error(stubbed: Any) -> None:
    session, stubber, _, _ = stubbed
    stubber.add_response("generate_random", {"CiphertextForRecipient": os.urandom(200)})
    with pytest.raises(RecipientDecryptionError):
        session.generate_random(32)
