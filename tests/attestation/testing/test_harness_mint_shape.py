"""Minted documents have the byte shape of genuine ones (nitro-attestation.md §1-2)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cbor2
import pytest

from attestation.testing.mint import mint_document
from attestation.testing.pki import TestPki

GENUINE = "evervault-ga-valid.cose"  # untagged, nulls, 4-cert cabundle, 16 PCRs
TS = datetime(2025, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
PKI = TestPki.create(99, valid_from=datetime(2025, 1, 1, tzinfo=UTC))


def head(data: bytes, i: int) -> tuple[bytes, int, int]:
    """The CBOR head at ``i``: (head bytes, major type, argument)."""
    ai = data[i] & 31
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(ai, 0)
    arg = ai if width == 0 else int.from_bytes(data[i + 1 : i + 1 + width], "big")
    return data[i : i + 1 + width], data[i] >> 5, arg


def skip(data: bytes, i: int) -> int:
    h, major, arg = head(data, i)
    i += len(h)
    if major in (2, 3):
        return i + arg
    if major == 4:
        for _ in range(arg):
            i = skip(data, i)
    elif major == 5:
        for _ in range(2 * arg):
            i = skip(data, i)
    return i


def field_shapes(payload: bytes) -> list[tuple[str, int, int, int]]:
    """For each payload entry: key, value's major type, head length, and its first byte class."""
    h, major, count = head(payload, 0)
    assert major == 5
    i, out = len(h), []
    for _ in range(count):
        key_end = skip(payload, i)
        key = cbor2.loads(payload[i:key_end])
        vh, vmajor, _ = head(payload, key_end)
        out.append((key, vmajor, len(vh), payload[key_end] & 0xE0 | min(payload[key_end] & 31, 24)))
        i = skip(payload, key_end)
    assert i == len(payload)
    return out


def test_envelope_prefix_and_signature_match_genuine(fixtures_dir: Path) -> None:
    genuine = (fixtures_dir / "nitro" / GENUINE).read_bytes()
    minted = mint_document(PKI, timestamp=TS)
    assert minted[:8] == genuine[:8] == bytes.fromhex("8444a1013822a059")
    for doc in (genuine, minted):
        arr = cbor2.loads(doc)
        sig_head = doc[len(doc) - 98 : len(doc) - 96]
        assert sig_head == b"\x58\x60"
        assert len(arr[3]) == 96
        assert arr[1] == {}


def test_payload_fields_have_genuine_order_types_and_widths(fixtures_dir: Path) -> None:
    genuine = cbor2.loads((fixtures_dir / "nitro" / GENUINE).read_bytes())[2]
    minted = cbor2.loads(mint_document(PKI, timestamp=TS, user_data=b"u" * 91, nonce=b"n" * 256))[2]
    assert field_shapes(minted) == field_shapes(genuine)
    assert [k for k, *_ in field_shapes(minted)] == [
        "module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle",
        "public_key", "user_data", "nonce",
    ]  # fmt: skip


def test_pcr_map_and_cabundle_element_shapes(fixtures_dir: Path) -> None:
    genuine = cbor2.loads(cbor2.loads((fixtures_dir / "nitro" / GENUINE).read_bytes())[2])
    minted_raw = cbor2.loads(mint_document(PKI, timestamp=TS))[2]
    minted = cbor2.loads(minted_raw)
    assert list(minted["pcrs"]) == list(genuine["pcrs"]) == list(range(16))
    assert all(len(v) == 48 for v in minted["pcrs"].values())
    # The pcrs map encodes as b0, then 00 58 30 <48>, 01 58 30 <48>, ... like hardware.
    start = minted_raw.index(b"dpcrs") + 5
    assert minted_raw[start : start + 4] == b"\xb0\x00\x58\x30"
    assert len(minted["cabundle"]) == len(genuine["cabundle"]) == 4
    for der in [minted["certificate"], *minted["cabundle"]]:
        assert 256 <= len(der) <= 1024  # 59 hh ll heads, as genuine
    assert minted["cabundle"][0] == PKI.cabundle[0]  # root first


def test_unset_optionals_are_null_and_timestamp_is_ms() -> None:
    payload = cbor2.loads(cbor2.loads(mint_document(PKI, timestamp=TS))[2])
    assert (payload["public_key"], payload["user_data"], payload["nonce"]) == (None, None, None)
    assert payload["timestamp"] == 1735732800123
    assert len(payload) == 9


def test_module_id_shape_and_leaf_cn() -> None:
    payload = cbor2.loads(cbor2.loads(mint_document(PKI, timestamp=TS))[2])
    module_id = payload["module_id"]
    assert len(module_id) == 39  # i-<17 hex>-enc<16 hex>, a 78 27 head like hardware
    from cryptography import x509

    leaf = x509.load_der_x509_certificate(payload["certificate"])
    assert leaf.subject.rfc4514_string().startswith(f"CN={module_id}.us-east-1.aws,")


def test_minting_is_deterministic_and_inputs_matter() -> None:
    a = mint_document(PKI, timestamp=TS, nonce=b"1")
    assert a == mint_document(PKI, timestamp=TS, nonce=b"1")
    assert a != mint_document(PKI, timestamp=TS, nonce=b"2")


def test_debug_and_explicit_pcrs() -> None:
    pcrs = {0: b"\x01" * 48, 16: b"\x02" * 48}
    payload = cbor2.loads(cbor2.loads(mint_document(PKI, timestamp=TS, pcrs=pcrs))[2])
    assert list(payload["pcrs"]) == [*range(17)]
    assert payload["pcrs"][0] == b"\x01" * 48
    assert payload["pcrs"][5] == bytes(48)
    debug = cbor2.loads(cbor2.loads(mint_document(PKI, timestamp=TS, pcrs=pcrs, debug=True))[2])
    assert debug["pcrs"][0] == bytes(48)


def test_unknown_variant_and_naive_timestamp_are_rejected() -> None:
    with pytest.raises(ValueError):
        mint_document(PKI, timestamp=TS, variant="nope")
    with pytest.raises(ValueError):
        mint_document(PKI, timestamp=datetime(2025, 1, 1))
