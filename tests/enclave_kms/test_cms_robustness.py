"""CiphertextForRecipient on hostile input: only CmsFormatError or CmsDecryptionError escape."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave_kms.cms import (
    CmsDecryptionError,
    CmsError,
    CmsFormatError,
    build_ciphertext_for_recipient,
    decrypt_ciphertext_for_recipient,
    parse_ciphertext_for_recipient,
)

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CONTENT = bytes(range(40))
OURS = build_ciphertext_for_recipient(CONTENT, KEY.public_key())
OURS_LARGE = build_ciphertext_for_recipient(bytes(2500), KEY.public_key())
# Bytes that carry structure, not randomness (kms-recipient.md §4 offsets for RSA-2048): the
# headers up to the rid, the OAEP AlgorithmIdentifier and encryptedKey header, the
# EncryptedContentInfo up to the IV, the content [0] header and chunk header, and the EOCs.
STRUCTURE = [*range(33), *range(65, 131), *range(387, 415), *range(431, 435)]
STRUCTURE += list(range(len(OURS) - 10, len(OURS)))


def _decrypt_outcome(data: bytes) -> bytes | CmsError:
    try:
        return decrypt_ciphertext_for_recipient(data, KEY)
    except CmsError as exc:  # anything else propagates and fails the test
        return exc


def test_every_truncation_fails_cleanly() -> None:
    for data in (OURS, OURS_LARGE):
        for end in range(len(data)):
            outcome = _decrypt_outcome(data[:end])
            assert isinstance(outcome, CmsFormatError), end


def test_every_structure_bit_flip_is_an_error() -> None:
    # Exhaustive (about 1000 cases, nearly all rejected before any RSA operation).
    for position in STRUCTURE:
        for bit in range(8):
            flipped = bytearray(OURS)
            flipped[position] ^= 1 << bit
            assert isinstance(_decrypt_outcome(bytes(flipped)), CmsError), (position, bit)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(OURS) - 1), st.integers(0, 7))
def test_any_bit_flip_fails_cleanly_or_is_unauthenticated_content(position: int, bit: int) -> None:
    flipped = bytearray(OURS)
    flipped[position] ^= 1 << bit
    outcome = _decrypt_outcome(bytes(flipped))
    if isinstance(outcome, bytes):
        # The rid is opaque (no client matches on it), so a flip there changes nothing. CMS
        # EnvelopedData has no MAC: a flip in the IV or content (from offset 415) may decrypt
        # to other bytes, exactly as with real KMS. Nothing else may survive a flip.
        assert 33 <= position < 65 or position >= 415
        if position < 65:
            assert outcome == CONTENT


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_garbage_is_a_format_error(data: bytes) -> None:
    with pytest.raises(CmsFormatError):
        parse_ciphertext_for_recipient(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(0, 420))
def test_spliced_garbage_fails_cleanly(junk: bytes, position: int) -> None:
    outcome = _decrypt_outcome(OURS[:position] + junk + OURS[position:])
    assert isinstance(outcome, CmsError)


def test_deep_nesting_is_a_format_error() -> None:
    deep = b"\x30\x80" * 5000 + b"\x00\x00" * 5000
    with pytest.raises(CmsFormatError):
        parse_ciphertext_for_recipient(deep[:8192])


def test_real_samples_with_wrong_key_and_flips(fixtures_dir: Path) -> None:
    for path in sorted(p for p in (fixtures_dir / "kms").iterdir() if p.suffix in {".ber", ".der"}):
        data = path.read_bytes()
        with pytest.raises(CmsDecryptionError):
            decrypt_ciphertext_for_recipient(data, KEY)
        for position in range(0, len(data), 7):
            flipped = bytearray(data)
            flipped[position] ^= 0x80
            assert isinstance(_decrypt_outcome(bytes(flipped)), CmsError)
