"""CiphertextForRecipient: byte layout against real KMS samples, parsing, round trips."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from enclave_kms.cms import (
    MAX_ENVELOPE_SIZE,
    CmsDecryptionError,
    CmsFormatError,
    build_ciphertext_for_recipient,
    decrypt_ciphertext_for_recipient,
    parse_ciphertext_for_recipient,
    recipient_key_identifier,
)

SAMPLES = {
    "rustcrypto_kms_ciphertext_for_recipient_1.ber": 16,
    "rustcrypto_kms_ciphertext_for_recipient_4.ber": 4112,
    "sdkc_cms_test_input_ber.der": 48,
    "sdkc_cms_test_input_ber_w_ctx.der": 16,
}
# Byte ranges (inclusive) that are identical in every real sample with an RSA-2048 recipient:
# the outer headers up to the rid, the OAEP AlgorithmIdentifier and encryptedKey header, and
# the EncryptedContentInfo up to the IV (kms-recipient.md §4).
FIXED_RANGES = ((0, 32), (65, 130), (387, 414))


def _counter_randbytes(seed: int = 0) -> Callable[[int], bytes]:
    """A deterministic ``randbytes``: consecutive counter bytes across calls."""
    state = {"n": seed}

    def randbytes(n: int) -> bytes:
        out = bytes((state["n"] + i) & 0xFF for i in range(n))
        state["n"] += n
        return out

    return randbytes


Element = tuple[int, int, int, int | None, int]


def walk_ber(data: bytes, pos: int = 0, depth: int = 0) -> tuple[list[Element], int]:
    """A minimal, independent BER walker: returns (tag, depth, header_len, length|None, offset)."""
    out: list[Element] = []
    tag = data[pos]
    first = data[pos + 1]
    if first == 0x80:
        out.append((tag, depth, 2, None, pos))
        cur = pos + 2
        while data[cur : cur + 2] != b"\x00\x00":
            sub, cur = walk_ber(data, cur, depth + 1)
            out += sub
        return out, cur + 2
    if first < 0x80:
        hl, length = 2, first
    else:
        n = first & 0x7F
        hl, length = 2 + n, int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
        assert length >= 0x80 and data[pos + 2] != 0, "non-minimal length"
    out.append((tag, depth, hl, length, pos))
    return out, pos + hl + length


def chunks_of(data: bytes) -> list[bytes]:
    """Return the OCTET STRING chunks inside the indefinite encryptedContent [0]."""
    elements, end = walk_ber(data)
    assert end == len(data)
    content = [e for e in elements if e[0] == 0xA0 and e[3] is None and e[4] > 20]
    assert len(content) == 1
    depth = content[0][1]
    found = [e for e in elements if e[1] == depth + 1 and e[4] > content[0][4]]
    chunks = []
    for tag, _, header_len, length, offset in found:
        assert tag == 0x04 and length is not None  # definite primitive OCTET STRINGs only
        chunks.append(data[offset + header_len : offset + header_len + length])
    return chunks


@pytest.fixture(scope="module")
def key2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def samples(fixtures_dir: Path) -> dict[str, bytes]:
    return {name: (fixtures_dir / "kms" / name).read_bytes() for name in SAMPLES}


# --- byte layout -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plaintext_len", "ciphertext_len", "total"), [(1, 16, 461), (32, 48, 493), (4096, 4112, 4573)]
)
def test_layout_matches_real_kms_samples(
    key2048: rsa.RSAPrivateKey,
    samples: dict[str, bytes],
    plaintext_len: int,
    ciphertext_len: int,
    total: int,
) -> None:
    ours = build_ciphertext_for_recipient(b"\x5a" * plaintext_len, key2048.public_key())
    chunk_total = sum(len(c) + (4 if len(c) > 255 else 2) for c in chunks_of(ours))
    assert len(ours) == 433 + chunk_total + 10 == total
    for name, sample in samples.items():
        for start, end in FIXED_RANGES:
            assert ours[start : end + 1] == sample[start : end + 1], (name, start)
    # Real samples of the same ciphertext size: every non-random byte is identical too.
    for name, size in SAMPLES.items():
        if size == ciphertext_len and "w_ctx" not in name:
            sample = samples[name]
            assert len(ours) == len(sample)
            assert [len(c) for c in chunks_of(ours)] == [len(c) for c in chunks_of(sample)]
            assert ours[431:435] == sample[431:435]
            assert ours[-10:] == sample[-10:] == b"\x00" * 10


def test_large_content_is_chunked_1000x4_plus_112(key2048: rsa.RSAPrivateKey) -> None:
    ours = build_ciphertext_for_recipient(bytes(4096), key2048.public_key())
    chunks = chunks_of(ours)
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 1000, 112]
    assert ours[433:437] == bytes.fromhex("048203e8")
    # Only the five intended layers are indefinite; everything else is definite and minimal.
    elements, _ = walk_ber(ours)
    indefinite = [(tag, depth) for tag, depth, _, length, _ in elements if length is None]
    assert indefinite == [(0x30, 0), (0xA0, 1), (0x30, 2), (0x30, 3), (0xA0, 4)]


def test_rid_is_sha256_of_spki_and_randomness_is_pinned(key2048: rsa.RSAPrivateKey) -> None:
    public = key2048.public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ours = build_ciphertext_for_recipient(b"k" * 32, public, randbytes=_counter_randbytes())
    assert ours[33:65] == hashlib.sha256(spki).digest() == recipient_key_identifier(public)
    # CEK is drawn first (bytes 0..31), then the IV (32..47).
    assert ours[415:431] == bytes(range(32, 48))
    again = build_ciphertext_for_recipient(b"k" * 32, public, randbytes=_counter_randbytes())
    assert again[387:] == ours[387:]  # same CEK and IV -> same content encryption
    assert again[131:387] != ours[131:387]  # RSA-OAEP is randomised by OpenSSL


@pytest.mark.parametrize("bits", [3072, 4096])
def test_larger_recipient_keys(bits: int) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    content = bytes(range(256)) * 16
    ours = build_ciphertext_for_recipient(content, key.public_key())
    envelope = parse_ciphertext_for_recipient(ours)
    assert len(envelope.encrypted_key) == bits // 8
    assert len(ours) == 4573 + bits // 8 - 256
    assert len(ours) <= 6144  # the model's CiphertextType limit holds even for RSA-4096
    assert decrypt_ciphertext_for_recipient(ours, key) == content


def test_build_rejects_non_rsa_key() -> None:
    with pytest.raises(TypeError):
        build_ciphertext_for_recipient(b"x", ec.generate_private_key(ec.SECP384R1()).public_key())  # type: ignore[arg-type]


# --- parsing the real samples ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "ciphertext_len"), sorted(SAMPLES.items()))
def test_real_samples_parse(samples: dict[str, bytes], name: str, ciphertext_len: int) -> None:
    envelope = parse_ciphertext_for_recipient(samples[name])
    assert envelope.rid_type == "subject_key_identifier"
    assert envelope.rid == samples[name][33:65]
    assert (envelope.key_encryption_algorithm, envelope.oaep_hash, envelope.mgf_hash) == (
        "rsaes_oaep",
        "sha256",
        "sha256",
    )
    assert envelope.content_algorithm == "aes256_cbc"
    assert envelope.iv == samples[name][415:431]
    assert envelope.encrypted_key == samples[name][131:387]
    assert len(envelope.encrypted_content) == ciphertext_len


def test_chunked_sample_is_concatenated_in_order(samples: dict[str, bytes]) -> None:
    data = samples["rustcrypto_kms_ciphertext_for_recipient_4.ber"]
    chunks = chunks_of(data)
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 1000, 112]
    assert parse_ciphertext_for_recipient(data).encrypted_content == b"".join(chunks)


def test_primitive_content_variant(samples: dict[str, bytes]) -> None:
    data = samples["sdkc_cms_test_input_ber_w_ctx.der"]
    assert data[431:433] == b"\x80\x10"
    assert parse_ciphertext_for_recipient(data).encrypted_content == data[433:449]


def test_real_sample_with_wrong_key_is_a_decryption_error(
    key2048: rsa.RSAPrivateKey, samples: dict[str, bytes]
) -> None:
    for data in samples.values():
        with pytest.raises(CmsDecryptionError):
            decrypt_ciphertext_for_recipient(data, key2048)


# --- round trips and failures ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 15, 16, 17, 32, 64, 999, 1000, 1001, 2047, 4095, 4096])
def test_round_trip(key2048: rsa.RSAPrivateKey, size: int) -> None:
    content = bytes((i * 7 + size) & 0xFF for i in range(size))
    ours = build_ciphertext_for_recipient(content, key2048.public_key())
    assert decrypt_ciphertext_for_recipient(ours, key2048) == content


def test_empty_content_round_trips(key2048: rsa.RSAPrivateKey) -> None:
    ours = build_ciphertext_for_recipient(b"", key2048.public_key())
    assert len(parse_ciphertext_for_recipient(ours).encrypted_content) == 16
    assert decrypt_ciphertext_for_recipient(ours, key2048) == b""


def test_wrong_key_and_tampered_padding_share_one_message(key2048: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ours = build_ciphertext_for_recipient(b"secret-data-key!" * 2, key2048.public_key())
    with pytest.raises(CmsDecryptionError) as wrong_key:
        decrypt_ciphertext_for_recipient(ours, other)
    # The content is 32 bytes, so the last CBC block is a full padding block (16 x 0x10).
    # Flipping the last byte of the block *before* it flips the last plaintext byte to
    # 0x10 ^ 0xFF = 0xEF: deterministically invalid PKCS#7 padding.
    tampered = bytearray(ours)
    tampered[-10 - 16 - 1] ^= 0xFF
    with pytest.raises(CmsDecryptionError) as bad_padding:
        decrypt_ciphertext_for_recipient(bytes(tampered), key2048)
    assert str(wrong_key.value) == str(bad_padding.value)
    assert "secret" not in str(wrong_key.value)


def _der_envelope(data: bytes, **override: object) -> bytes:
    """Re-encode ``data`` as DER EnvelopedData, replacing the KTRI's keyEncryptionAlgorithm or
    the contentEncryptionAlgorithm (asn1crypto does not re-serialise mutated parsed children, so
    the structure is rebuilt from its parts)."""
    env = parse_ciphertext_for_recipient(data)
    parsed = cms.ContentInfo.load(data)["content"]
    kea = override.get("kea", parsed["recipient_infos"][0].chosen["key_encryption_algorithm"])
    cea = override.get("cea", {"algorithm": "aes256_cbc", "parameters": env.iv})
    ktri = cms.KeyTransRecipientInfo(
        {
            "version": "v2",
            "rid": cms.RecipientIdentifier(name="subject_key_identifier", value=env.rid),
            "key_encryption_algorithm": kea,
            "encrypted_key": env.encrypted_key,
        }
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v2",
            "recipient_infos": [cms.RecipientInfo(name="ktri", value=ktri)],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": cea,
                "encrypted_content": env.encrypted_content,
            },
        }
    )
    return bytes(cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump())


def test_der_reencoding_is_accepted(key2048: rsa.RSAPrivateKey) -> None:
    ours = build_ciphertext_for_recipient(b"d" * 40, key2048.public_key())
    der = _der_envelope(ours)
    assert der[1] != 0x80  # definite: a genuinely different encoding
    assert decrypt_ciphertext_for_recipient(der, key2048) == b"d" * 40


def _oaep(**fields: object) -> dict[str, object]:
    sha256 = {"algorithm": "sha256", "parameters": core.Null()}
    params = {
        "hash_algorithm": sha256,
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": sha256},
        **fields,
    }
    return {"algorithm": "rsaes_oaep", "parameters": algos.RSAESOAEPParams(params)}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        # An empty SEQUENCE: every field at its DEFAULT, i.e. SHA-1 and MGF1-SHA-1.
        (
            {"kea": {"algorithm": "rsaes_oaep", "parameters": algos.RSAESOAEPParams.load(b"0\0")}},
            "hashFunc",
        ),
        ({"kea": _oaep(hash_algorithm={"algorithm": "sha384"})}, "hashFunc"),
        (
            {
                "kea": _oaep(
                    mask_gen_algorithm={"algorithm": "mgf1", "parameters": {"algorithm": "sha1"}}
                )
            },
            "MGF1",
        ),
        (
            {"kea": _oaep(p_source_algorithm={"algorithm": "p_specified", "parameters": b"label"})},
            "pSourceFunc",
        ),
        ({"kea": {"algorithm": "rsaes_pkcs1v15", "parameters": core.Null()}}, "keyEncryptionAlg"),
        ({"cea": {"algorithm": "aes128_cbc", "parameters": bytes(16)}}, "contentEncryptionAlg"),
        ({"cea": {"algorithm": "aes256_cbc", "parameters": bytes(8)}}, "IV"),
    ],
)
def test_unsupported_algorithms_are_named(
    key2048: rsa.RSAPrivateKey, override: dict[str, object], named: str
) -> None:
    ours = build_ciphertext_for_recipient(b"d" * 40, key2048.public_key())
    with pytest.raises(CmsFormatError, match=named):
        parse_ciphertext_for_recipient(_der_envelope(ours, **override))


def test_non_null_hash_parameters_are_rejected(key2048: rsa.RSAPrivateKey) -> None:
    ours = build_ciphertext_for_recipient(b"d" * 40, key2048.public_key())
    sha256_null = bytes.fromhex("06096086480165030402010500")
    assert ours[84:97] == sha256_null  # the OAEP hashFunc inside [0] (kms-recipient.md §4)
    # Same length, so no enclosing length changes: NULL -> empty OCTET STRING.
    tampered = ours[:95] + b"\x04\x00" + ours[97:]
    with pytest.raises(CmsFormatError):
        parse_ciphertext_for_recipient(tampered)


@pytest.mark.parametrize(("offset", "what"), [(19, "EnvelopedData"), (30, "KeyTransRecipientInfo")])
def test_versions_must_match_rfc5652(key2048: rsa.RSAPrivateKey, offset: int, what: str) -> None:
    ours = build_ciphertext_for_recipient(b"d", key2048.public_key())
    assert ours[offset] == 2
    for version in (0, 1, 3):
        tampered = ours[:offset] + bytes([version]) + ours[offset + 1 :]
        with pytest.raises(CmsFormatError, match=what):
            parse_ciphertext_for_recipient(tampered)


def test_other_content_types_and_sizes_are_rejected(key2048: rsa.RSAPrivateKey) -> None:
    signed = cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump()
    with pytest.raises(CmsFormatError, match="contentType"):
        parse_ciphertext_for_recipient(signed)
    ours = build_ciphertext_for_recipient(b"x", key2048.public_key())
    with pytest.raises(CmsFormatError, match="ContentInfo"):
        parse_ciphertext_for_recipient(ours + b"\x00")  # trailing data
    with pytest.raises(CmsFormatError, match="larger"):
        parse_ciphertext_for_recipient(ours + bytes(MAX_ENVELOPE_SIZE))
    with pytest.raises(CmsFormatError):
        parse_ciphertext_for_recipient("not bytes")  # type: ignore[arg-type]
