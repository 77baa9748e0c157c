"""Strict CBOR decoding and the payload schema (nitro-attestation.md §2 and §7)."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nitro_test_helpers import BLOCKY, genuine_payload, raw

from attestation import AttestationDocument, MalformedDocumentError, parse_document
from attestation._cbor import MAX_DEPTH, Tag, encode_head, loads_strict
from attestation.document import MAX_DOCUMENT_SIZE

# ---- the decoder agrees with cbor2 on everything cbor2 encodes in the accepted subset ------

_scalars = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.none()
    | st.booleans()
)
_keys = (
    st.integers(min_value=-(2**63), max_value=2**63) | st.text(max_size=8) | st.binary(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20,
)


def _normalise(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_normalise(v) for v in value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


@settings(max_examples=200, deadline=None)
@given(_values)
def test_matches_cbor2_on_valid_input(value: Any) -> None:
    encoded = cbor2.dumps(value)
    assert loads_strict(encoded, field="x") == _normalise(cbor2.loads(encoded))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=7))
def test_encode_head_is_minimal_and_matches_cbor2(value: int, major: int) -> None:
    head = encode_head(major, value)
    if major == 0:
        assert head == cbor2.dumps(value)
    assert loads_strict(encode_head(0, value), field="x") == value


def test_genuine_payload_decodes_like_cbor2() -> None:
    arr = cbor2.loads(raw(BLOCKY))
    assert loads_strict(arr[2], field="payload") == _normalise(cbor2.loads(arr[2]))


# ---- what cbor2 lets through and we must not ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\xa2\x61a\x01\x61a\x02", "duplicate"),  # {"a": 1, "a": 2}
        (b"\xa2\x01\x01\x18\x01\x02", "duplicate"),  # {1: 1, 1 (non-minimal): 2}
        (b"\xa1\xa0\x01", "key"),  # map as a key
        (b"\xa1\xf5\x01", "key"),  # true as a key (would collide with 1)
        (b"\x5f\x41a\xff", "indefinite"),  # indefinite bstr
        (b"\x7f\x61a\xff", "indefinite"),  # indefinite tstr
        (b"\x9f\x01\xff", "indefinite"),  # indefinite array
        (b"\xbf\x01\x01\xff", "indefinite"),  # indefinite map
        (b"\x01\xf6", "trailing"),
        (b"\x1c", "reserved"),
        (b"\xf9\x3c\x00", "float"),  # half float 1.0
        (b"\xfb" + bytes(8), "float"),
        (b"\xf7", "simple"),  # undefined
        (b"\xc1\x01", "tag"),  # epoch time tag
        (b"\x62\xff\xfe", "UTF-8"),
        (b"\x5a\xff\xff\xff\xff", "past the end"),
        (b"\x9b" + (2**63).to_bytes(8, "big"), "longer than the input"),
        (b"\xbb" + (2**63).to_bytes(8, "big"), "longer than the input"),
        (b"\x19\x01", "truncated"),
        (b"", "truncated"),
    ],
)
def test_rejects(data: bytes, fragment: str) -> None:
    with pytest.raises(MalformedDocumentError, match=fragment) as info:
        loads_strict(data, field="probe")
    assert info.value.field == "probe"


def test_cbor2_really_is_lenient_here() -> None:
    # The reason for the strict decoder: these all load silently with cbor2.
    assert cbor2.loads(b"\xa2\x61a\x01\x61a\x02") == {"a": 2}
    assert cbor2.loads(b"\x01\xf6") == 1
    assert cbor2.loads(b"\x9f\x01\xff") == [1]


def test_tag_only_where_allowed() -> None:
    assert loads_strict(b"\xd2\x80", field="x", allowed_tags=frozenset({18})) == Tag(18, ())
    with pytest.raises(MalformedDocumentError, match="tag"):
        loads_strict(b"\x81\xd2\x80", field="x", allowed_tags=frozenset({18}))  # nested
    with pytest.raises(MalformedDocumentError, match="tag"):
        loads_strict(b"\xd2\xd2\x80", field="x", allowed_tags=frozenset({18}))  # twice


def test_depth_is_bounded() -> None:
    ok = b"\x81" * MAX_DEPTH + b"\x01"
    loads_strict(ok, field="x")
    with pytest.raises(MalformedDocumentError, match="deep"):
        loads_strict(b"\x81" * (MAX_DEPTH + 1) + b"\x01", field="x")
    with pytest.raises(MalformedDocumentError):
        loads_strict(b"\x81" * 100_000, field="x")  # no RecursionError


# ---- payload schema ------------------------------------------------------------------------


def _payload(**changes: Any) -> bytes:
    fields = genuine_payload()
    for key, value in changes.items():
        if value is _DROP:
            del fields[key]
        else:
            fields[key] = value
    return cbor2.dumps(fields)


_DROP = object()


def test_genuine_payload_parses() -> None:
    doc = AttestationDocument.from_cbor(_payload())
    assert doc.digest == "SHA384" and len(doc.pcrs) == 16
    assert doc.public_key is not None and len(doc.public_key) == 1024


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"module_id": ""}, "payload.module_id"),
        ({"module_id": b"i-0"}, "payload.module_id"),
        ({"module_id": None}, "payload.module_id"),
        ({"module_id": _DROP}, "payload.module_id"),
        ({"digest": "MD5"}, "payload.digest"),
        ({"timestamp": 0}, "payload.timestamp"),
        ({"timestamp": -1}, "payload.timestamp"),
        ({"timestamp": True}, "payload.timestamp"),
        ({"timestamp": "1725719859545"}, "payload.timestamp"),
        ({"timestamp": 2**64 - 1}, "payload.timestamp"),
        ({"pcrs": {}}, "payload.pcrs"),
        ({"pcrs": [bytes(48)]}, "payload.pcrs"),
        ({"pcrs": {32: bytes(48)}}, "payload.pcrs"),
        ({"pcrs": {-1: bytes(48)}}, "payload.pcrs"),
        ({"pcrs": {"0": bytes(48)}}, "payload.pcrs"),
        ({"pcrs": {0: bytes(32)}}, "payload.pcrs"),  # 32 bytes but digest SHA384
        ({"pcrs": {0: "00" * 48}}, "payload.pcrs"),
        ({"pcrs": {i: bytes(48) for i in range(33)}}, "payload.pcrs"),
        ({"certificate": b""}, "payload.certificate"),
        ({"certificate": bytes(1025)}, "payload.certificate"),
        ({"certificate": None}, "payload.certificate"),
        ({"cabundle": []}, "payload.cabundle"),
        ({"cabundle": None}, "payload.cabundle"),
        ({"cabundle": b"x"}, "payload.cabundle"),
        ({"cabundle": [b""]}, "payload.cabundle[0]"),
        ({"cabundle": [b"x", bytes(1025)]}, "payload.cabundle[1]"),
        ({"cabundle": ["x"]}, "payload.cabundle[0]"),
        ({"public_key": bytes(1025)}, "payload.public_key"),
        ({"user_data": bytes(1025)}, "payload.user_data"),
        ({"nonce": bytes(1025)}, "payload.nonce"),
        ({"nonce": "abc"}, "payload.nonce"),
        ({"extra": 1}, "payload"),
    ],
)
def test_schema_rejects_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedDocumentError) as info:
        AttestationDocument.from_cbor(_payload(**changes))
    assert info.value.field == field


@pytest.mark.parametrize(
    "changes",
    [
        {"public_key": b"", "user_data": None, "nonce": None},  # 0-length as in hf-nitrite
        {"public_key": bytes(1024), "user_data": bytes(1024), "nonce": bytes(1024)},
        {"public_key": _DROP, "user_data": _DROP, "nonce": _DROP},  # absent = null
        {"pcrs": {i: bytes(48) for i in range(32)}},  # all 32 PCRs, as after locking 16..31
        {"digest": "SHA256", "pcrs": {0: bytes(32)}},
        {"digest": "SHA512", "pcrs": {31: bytes(64)}},
    ],
)
def test_schema_accepts_what_hardware_emits(changes: dict[str, Any]) -> None:
    AttestationDocument.from_cbor(_payload(**changes))


def test_payload_that_is_not_a_map() -> None:
    with pytest.raises(MalformedDocumentError) as info:
        AttestationDocument.from_cbor(cbor2.dumps([1, 2]))
    assert info.value.field == "payload"


def test_document_is_immutable() -> None:
    doc = AttestationDocument.from_cbor(_payload())
    with pytest.raises(AttributeError):
        doc.module_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        doc.pcrs[0] = b"x"  # type: ignore[index]


def test_size_is_bounded_before_decoding() -> None:
    with pytest.raises(MalformedDocumentError, match="limit"):
        parse_document(b"\x84" + bytes(MAX_DOCUMENT_SIZE))
    with pytest.raises(MalformedDocumentError, match="bytes"):
        parse_document("not bytes")  # type: ignore[arg-type]
