"""The NSM CBOR wire format: serde externally-tagged enums, exactly as nsm-api encodes them."""

from __future__ import annotations

import cbor2
import pytest

from attestation.nsm import ErrorCode, NsmError
from attestation.nsm import _protocol as p


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        # Unit variants are bare text strings.
        (p.DescribeNsm(), "DescribeNSM"),
        (p.GetRandom(), "GetRandom"),
        # Struct variants are one-entry maps with the fields in declaration order.
        (p.DescribePcr(3), {"DescribePCR": {"index": 3}}),
        (p.ExtendPcr(16, b"x"), {"ExtendPCR": {"index": 16, "data": b"x"}}),
        (p.LockPcr(17), {"LockPCR": {"index": 17}}),
        (p.LockPcrs(20), {"LockPCRs": {"range": 20}}),
        (
            p.AttestationRequest(nonce=b"n"),
            {"Attestation": {"user_data": None, "nonce": b"n", "public_key": None}},
        ),
    ],
)
def test_request_encoding_matches_serde_shape(request_: p.Request, expected: object) -> None:
    raw = p.encode_request(request_)
    assert raw == cbor2.dumps(expected)
    assert p.decode_request(raw) == request_


def test_attestation_request_field_order_is_declaration_order() -> None:
    raw = p.encode_request(p.AttestationRequest(user_data=b"u", nonce=b"n", public_key=b"k"))
    assert list(cbor2.loads(raw)["Attestation"]) == ["user_data", "nonce", "public_key"]


def test_bare_index_bytes_are_minimal_uint() -> None:
    # QEMU reads index/range as a one-byte uint; cbor2 writes small ints inline like serde.
    assert p.encode_request(p.LockPcr(5)) == bytes.fromhex("a1674c6f636b504352a165696e64657805")


@pytest.mark.parametrize("index", [-1, 65536, True])
def test_request_index_outside_u16_is_invalid_argument(index: int) -> None:
    with pytest.raises(NsmError) as info:
        p.encode_request(p.DescribePcr(index))
    assert info.value.code is ErrorCode.InvalidArgument


def test_error_response_raises_with_the_wire_name() -> None:
    with pytest.raises(NsmError) as info:
        p.decode_response(cbor2.dumps({"Error": "ReadOnlyIndex"}), "ExtendPCR")
    assert info.value.code is ErrorCode.ReadOnlyIndex
    assert info.value.error_name == "ReadOnlyIndex"
    assert "ReadOnlyIndex" in str(info.value)


def test_error_codes_have_the_c_abi_numbers() -> None:
    assert [c.name for c in sorted(ErrorCode)] == [
        "Success", "InvalidArgument", "InvalidIndex", "InvalidResponse", "ReadOnlyIndex",
        "InvalidOperation", "BufferTooSmall", "InputTooLarge", "InternalError",
    ]  # fmt: skip


def test_response_of_another_type_is_invalid_response() -> None:
    with pytest.raises(NsmError) as info:
        p.decode_response(cbor2.dumps({"GetRandom": {"random": b""}}), "DescribePCR")
    assert info.value.code is ErrorCode.InvalidResponse


def test_unit_response_must_be_the_bare_string() -> None:
    assert p.decode_response(cbor2.dumps("LockPCR"), "LockPCR", unit=True) == {}
    with pytest.raises(NsmError) as info:
        p.decode_response(cbor2.dumps("LockPCRs"), "LockPCR", unit=True)
    assert info.value.code is ErrorCode.InvalidResponse


@pytest.mark.parametrize("raw", [b"", b"\xff", cbor2.dumps("LockPCR") + b"\x00"])
def test_undecodable_response_is_internal_error(raw: bytes) -> None:
    with pytest.raises(NsmError) as info:
        p.decode_response(raw, "LockPCR", unit=True)
    assert info.value.code is ErrorCode.InternalError


def test_unknown_error_name_is_invalid_response() -> None:
    with pytest.raises(NsmError) as info:
        p.decode_response(cbor2.dumps({"Error": "Nope"}), "LockPCR", unit=True)
    assert info.value.code is ErrorCode.InvalidResponse


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x00" * 4097, ErrorCode.InputTooLarge),
        (cbor2.dumps("Reboot"), ErrorCode.InvalidOperation),
        (cbor2.dumps({"DescribePCR": {"index": 1}, "x": 1}), ErrorCode.InvalidOperation),
        (cbor2.dumps([1, 2]), ErrorCode.InvalidOperation),
        (b"\xa1", ErrorCode.InvalidOperation),
        (cbor2.dumps({"DescribePCR": {"index": "1"}}), ErrorCode.InvalidArgument),
        (cbor2.dumps({"DescribePCR": 1}), ErrorCode.InvalidArgument),
        (cbor2.dumps({"ExtendPCR": {"index": 16, "data": "text"}}), ErrorCode.InvalidArgument),
        (cbor2.dumps({"Attestation": {"nonce": 5}}), ErrorCode.InvalidArgument),
    ],
)
def test_decode_request_rejects_with_the_nsm_code(raw: bytes, code: ErrorCode) -> None:
    with pytest.raises(NsmError) as info:
        p.decode_request(raw)
    assert info.value.code is code


def test_attestation_request_repr_shows_lengths_only() -> None:
    text = repr(p.AttestationRequest(user_data=b"secret-commitment"))
    assert "secret" not in text
    assert "17 bytes" in text
