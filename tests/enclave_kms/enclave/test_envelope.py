"""Envelope encryption: format, round trip, key hygiene and tamper detection (KMS double)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from enclave_sdk_helpers import FakeKms
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_kms.enclave import envelope as envelope_module
from enclave_kms.enclave.envelope import EnvelopeCipher, parse_message
from enclave_kms.enclave.errors import (
    ConfigurationError,
    EnvelopeAuthenticationError,
    EnvelopeError,
    EnvelopeFormatError,
    KmsRequestError,
)
from enclave_kms.enclave.session import DataKey, EnclaveSession

CONTEXT = {"tenant": "acme", "purpose": "unit-test", "ünïcode": "välue"}


@pytest.fixture
def kms() -> FakeKms:
    return FakeKms()


@pytest.fixture
def cipher(make_nsm: Any, kms: FakeKms) -> EnvelopeCipher:
    return EnvelopeCipher(EnclaveSession(nsm=make_nsm(), kms_client=kms))  # type: ignore[arg-type]


@pytest.fixture
def message(cipher: EnvelopeCipher) -> bytes:
    return cipher.encrypt(b"attack at dawn", key_id="alias/app", encryption_context=CONTEXT)


def test_round_trip_returns_the_plaintext(cipher: EnvelopeCipher, message: bytes) -> None:
    assert cipher.decrypt(message) == b"attack at dawn"


def test_round_trip_without_context_and_with_empty_plaintext(cipher: EnvelopeCipher) -> None:
    assert cipher.decrypt(cipher.encrypt(b"", key_id="k")) == b""


def test_the_message_is_self_describing(message: bytes, kms: FakeKms) -> None:
    parsed = parse_message(message)
    assert message[:6] == b"EKEV\x01\x01"
    assert (parsed.version, parsed.suite) == (1, 1)
    assert dict(parsed.encryption_context) == CONTEXT
    ((op, params, response),) = kms.calls
    assert op == "GenerateDataKey"
    assert params["KeySpec"] == "AES_256"
    assert params["KeyId"] == "alias/app"
    assert params["EncryptionContext"] == CONTEXT
    assert parsed.ciphertext_blob == response["CiphertextBlob"]
    assert len(parsed.nonce) == 12
    assert len(parsed.ciphertext) == len(b"attack at dawn") + 16
    assert message == parsed.header + parsed.nonce + parsed.ciphertext


def test_decrypt_sends_blob_and_context_to_kms_with_recipient(
    cipher: EnvelopeCipher, message: bytes, kms: FakeKms
) -> None:
    cipher.decrypt(message, key_id=FakeKms.KEY_ARN)
    op, params, _ = kms.calls[-1]
    assert op == "Decrypt"
    assert params["CiphertextBlob"] == parse_message(message).ciphertext_blob
    assert params["EncryptionContext"] == CONTEXT
    assert params["KeyId"] == FakeKms.KEY_ARN
    assert params["Recipient"]["KeyEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"


def test_the_data_key_is_overwritten_after_encrypt_and_decrypt(
    cipher: EnvelopeCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = cipher._session
    seen: list[bytearray] = []
    real_generate, real_decrypt = session.generate_data_key, session.decrypt

    def generate(*args: Any, **kwargs: Any) -> DataKey:
        key = real_generate(*args, **kwargs)
        seen.append(key.plaintext)
        return key

    def decrypt(*args: Any, **kwargs: Any) -> Any:
        result = real_decrypt(*args, **kwargs)
        seen.append(result.plaintext)
        return result

    monkeypatch.setattr(session, "generate_data_key", generate)
    monkeypatch.setattr(session, "decrypt", decrypt)
    cipher.decrypt(cipher.encrypt(b"data", key_id="k"))
    assert len(seen) == 2
    assert all(buf == bytearray(32) for buf in seen)


def test_the_data_key_is_overwritten_when_decryption_fails(
    cipher: EnvelopeCipher, message: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = cipher._session
    seen: list[bytearray] = []
    real_decrypt = session.decrypt

    def decrypt(*args: Any, **kwargs: Any) -> Any:
        result = real_decrypt(*args, **kwargs)
        seen.append(result.plaintext)
        return result

    monkeypatch.setattr(session, "decrypt", decrypt)
    tampered = bytearray(message)
    tampered[-1] ^= 1
    with pytest.raises(EnvelopeAuthenticationError):
        cipher.decrypt(bytes(tampered))
    assert seen == [bytearray(32)]


def test_every_truncation_is_refused(cipher: EnvelopeCipher, message: bytes, kms: FakeKms) -> None:
    header_and_nonce = len(parse_message(message).header) + 12
    for length in range(len(message)):
        before = len(kms.calls)
        with pytest.raises(EnvelopeError):
            cipher.decrypt(message[:length])
        if length < header_and_nonce + 16:
            # Structurally incomplete: refused before any KMS call.
            assert len(kms.calls) == before, length


def test_every_single_byte_flip_is_refused(cipher: EnvelopeCipher, message: bytes) -> None:
    for position in range(len(message)):
        tampered = bytearray(message)
        tampered[position] ^= 0x01
        # Header and context edits fail at parse, at KMS (the context is KMS AAD too) or at
        # the GCM tag; ciphertext and nonce edits at the tag. Never a plaintext.
        with pytest.raises((EnvelopeError, KmsRequestError)):
            cipher.decrypt(bytes(tampered))


def test_trailing_bytes_fail_authentication(cipher: EnvelopeCipher, message: bytes) -> None:
    with pytest.raises(EnvelopeAuthenticationError):
        cipher.decrypt(message + b"\x00")


def test_a_swapped_context_fails_even_with_a_valid_blob(
    cipher: EnvelopeCipher, message: bytes
) -> None:
    parsed = parse_message(message)
    other = cipher.encrypt(b"x", key_id="k", encryption_context={"tenant": "evil"})
    forged = parse_message(other).header + parsed.nonce + parsed.ciphertext
    with pytest.raises(EnvelopeAuthenticationError):
        cipher.decrypt(forged)


def test_unknown_version_and_suite_are_format_errors(message: bytes) -> None:
    for offset, name in ((4, "version"), (5, "suite")):
        edited = bytearray(message)
        edited[offset] = 2
        with pytest.raises(EnvelopeFormatError, match=name):
            parse_message(bytes(edited))
    with pytest.raises(EnvelopeFormatError, match="magic"):
        parse_message(b"XXXX" + message[4:])


def test_non_canonical_context_order_is_refused() -> None:
    def pair(k: bytes, v: bytes) -> bytes:
        return struct.pack(">H", len(k)) + k + struct.pack(">H", len(v)) + v

    blob = b"B" * 10
    body = b"EKEV\x01\x01" + struct.pack(">H", len(blob)) + blob + struct.pack(">H", 2)
    good = body + pair(b"a", b"1") + pair(b"b", b"2") + bytes(12) + bytes(16)
    bad = body + pair(b"b", b"2") + pair(b"a", b"1") + bytes(12) + bytes(16)
    assert dict(parse_message(good).encryption_context) == {"a": "1", "b": "2"}
    with pytest.raises(EnvelopeFormatError, match="canonical"):
        parse_message(bad)


def test_invalid_context_is_a_configuration_error(cipher: EnvelopeCipher, kms: FakeKms) -> None:
    with pytest.raises(ConfigurationError):
        cipher.encrypt(b"x", key_id="k", encryption_context={"k": 1})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        cipher.encrypt(b"x", key_id="k", encryption_context={"k": "\ud800"})


def test_nonce_comes_from_the_injected_source(make_nsm: Any, kms: FakeKms) -> None:
    session = EnclaveSession(nsm=make_nsm(), kms_client=kms)  # type: ignore[arg-type]
    cipher = EnvelopeCipher(session, randbytes=lambda n: b"\x07" * n)
    assert parse_message(cipher.encrypt(b"x", key_id="k")).nonce == b"\x07" * 12
    assert envelope_module.NONCE_SIZE == 12


def test_round_trip_property(make_nsm: Any) -> None:
    kms = FakeKms()
    cipher = EnvelopeCipher(EnclaveSession(nsm=make_nsm(), kms_client=kms))  # type: ignore[arg-type]

    @settings(max_examples=40, deadline=None)
    @given(
        plaintext=st.binary(max_size=2048),
        context=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4),
    )
    def check(plaintext: bytes, context: dict[str, str]) -> None:
        message = cipher.encrypt(plaintext, key_id="k", encryption_context=context)
        assert dict(parse_message(message).encryption_context) == context
        assert cipher.decrypt(message) == plaintext

    check()
