"""The fast strict decoder against the straightforward one it replaced (nitro-attestation.md §7).

``_Reference`` below is the previous ``attestation._cbor`` decoder, kept verbatim (only renamed)
as the executable definition of the accepted language. On every input, well-formed or mutated,
both must return the same value (with the same types: ``True`` is not ``1``, ``b""`` is not
``""``) or both raise :class:`MalformedDocumentError` with the same field and the same message,
byte offset included. The inputs aim at the fast paths: PCR-shaped maps, byte strings with 1-,
2- and 3-byte heads, short text keys, and encodings with non-minimal heads.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nitro_test_helpers import BLOCKY, genuine_payload, raw

from attestation import AttestationDocument, MalformedDocumentError
from attestation._cbor import MAX_DEPTH, Tag, loads_strict
from attestation._cose import _PROTECTED_ES384, decode_sign1

_SIMPLE: dict[int, object] = {20: False, 21: True, 22: None}


class _Reference:
    """The previous decoder, one method call per item (verbatim apart from the name)."""

    __slots__ = ("allowed_tags", "data", "end", "field", "pos")

    def __init__(self, data: bytes, field: str, allowed_tags: frozenset[int]) -> None:
        self.data = data
        self.end = len(data)
        self.pos = 0
        self.field = field
        self.allowed_tags = allowed_tags

    def fail(self, message: str) -> MalformedDocumentError:
        return MalformedDocumentError(f"{message} (at byte {self.pos})", field=self.field)

    def head(self) -> tuple[int, int]:
        if self.pos >= self.end:
            raise self.fail("truncated CBOR item")
        initial = self.data[self.pos]
        major, info = initial >> 5, initial & 0x1F
        self.pos += 1
        if info < 24:
            return major, info
        if info == 31:
            raise self.fail("indefinite-length CBOR items are not allowed")
        if info > 27:
            raise self.fail("reserved CBOR additional information")
        size = 1 << (info - 24)
        if self.pos + size > self.end:
            raise self.fail("truncated CBOR head")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return major, value if major != 7 else info

    def item(self, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise self.fail("CBOR nesting too deep")
        start = self.pos
        major, arg = self.head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            if arg > self.end - self.pos:
                raise self.fail("CBOR string runs past the end of the input")
            raw = self.data[self.pos : self.pos + arg]
            self.pos += arg
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                self.pos = start
                raise self.fail("text string is not valid UTF-8") from None
        if major == 4:
            if arg > self.end - self.pos:
                raise self.fail("CBOR array longer than the input")
            return tuple(self.item(depth + 1) for _ in range(arg))
        if major == 5:
            if arg > (self.end - self.pos) // 2:
                raise self.fail("CBOR map longer than the input")
            out: dict[object, object] = {}
            for _ in range(arg):
                key_at = self.pos
                key = self.item(depth + 1)
                if type(key) not in (int, str, bytes):
                    self.pos = key_at
                    raise self.fail("CBOR map key must be an integer, text or byte string")
                if key in out:
                    self.pos = key_at
                    raise self.fail(f"duplicate CBOR map key {key!r}")
                out[key] = self.item(depth + 1)
            return out
        if major == 6:
            if depth != 0 or arg not in self.allowed_tags:
                self.pos = start
                raise self.fail(f"unexpected CBOR tag {arg}")
            return Tag(arg, self.item(depth + 1))
        if arg in _SIMPLE:
            return _SIMPLE[arg]
        self.pos = start
        raise self.fail("unsupported CBOR simple value or float")


def _reference_loads(data: bytes, *, field: str, allowed_tags: frozenset[int]) -> object:
    decoder = _Reference(data, field, allowed_tags)
    value = decoder.item(0)
    if decoder.pos != decoder.end:
        raise decoder.fail(f"{decoder.end - decoder.pos} trailing bytes after the CBOR item")
    return value


def _typed(value: object) -> object:
    """``value`` with every node's exact type attached, so that True != 1 and b"" != ""."""
    if isinstance(value, tuple):
        return ("tuple", tuple(_typed(v) for v in value))
    if isinstance(value, dict):
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])  # order too
    if isinstance(value, Tag):
        return ("tag", value.tag, _typed(value.value))
    return (type(value).__name__, value)


def _outcome(loads: Any, data: bytes, tags: frozenset[int]) -> tuple[object, ...]:
    try:
        return ("value", _typed(loads(data, field="probe", allowed_tags=tags)))
    except MalformedDocumentError as error:
        return ("error", type(error), error.field, str(error))


def _assert_same(data: bytes, tags: frozenset[int] = frozenset()) -> tuple[object, ...]:
    expected = _outcome(_reference_loads, data, tags)
    assert _outcome(loads_strict, data, tags) == expected
    return expected


# ---- an encoder that can write non-minimal heads and duplicate keys ------------------------


class _Pairs(list[tuple[object, object]]):
    """A map given as pairs, so that a test can encode duplicate keys."""


def _head(major: int, arg: int, rng: random.Random) -> bytes:
    sizes = [s for s in (0, 1, 2, 4, 8) if (arg < 24 if s == 0 else arg < 1 << (8 * s))]
    # Mostly minimal (what encoders write), sometimes wider (valid CBOR, accepted).
    size = sizes[0] if rng.random() < 0.8 else rng.choice(sizes)
    if size == 0:
        return bytes([major << 5 | arg])
    return bytes([major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[size]]) + arg.to_bytes(size, "big")


def _encode(value: object, rng: random.Random) -> bytes:
    if value is None or isinstance(value, bool):
        return {None: b"\xf6", False: b"\xf4", True: b"\xf5"}[value]
    if isinstance(value, int):
        return _head(0, value, rng) if value >= 0 else _head(1, -1 - value, rng)
    if isinstance(value, bytes):
        return _head(2, len(value), rng) + value
    if isinstance(value, str):
        encoded = value.encode()
        return _head(3, len(encoded), rng) + encoded
    if isinstance(value, list | tuple):
        return _head(4, len(value), rng) + b"".join(_encode(v, rng) for v in value)
    if isinstance(value, Tag):
        return _head(6, value.tag, rng) + _encode(value.value, rng)
    pairs = list(value.items()) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
    body = b"".join(_encode(k, rng) + _encode(v, rng) for k, v in pairs)
    return _head(5, len(pairs), rng) + body


_ints = st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.integers(-30, 30)
_scalars = (
    _ints
    | st.binary(max_size=30)
    | st.binary(min_size=250, max_size=300)  # 2-byte length heads (0x59), like certificates
    | st.text(max_size=30)
    | st.none()
    | st.booleans()
)
_keys = (
    st.integers(min_value=-(2**63), max_value=2**63) | st.text(max_size=10) | st.binary(max_size=8)
)
_pcr_maps = st.integers(min_value=0, max_value=2).flatmap(
    lambda i: st.dictionaries(
        st.integers(min_value=0, max_value=40),
        st.binary(min_size=(32, 48, 64)[i], max_size=(32, 48, 64)[i]),
        min_size=1,
        max_size=33,
    )
)
_values = st.recursive(
    _scalars | _pcr_maps,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(_keys, inner, max_size=6)
        | st.lists(st.tuples(_keys, inner), max_size=4).map(_Pairs)
    ),  # duplicates possible
    max_leaves=25,
)
_TAG_SETS: tuple[frozenset[int], ...] = (frozenset(), frozenset({18}))


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        where = rng.randrange(len(buf) + 1)
        kind = rng.randrange(6)
        if kind == 0 and buf and where < len(buf):  # an interesting head byte
            interesting = [0x18, 0x19, 0x1B, 0x1C, 0x1F, 0x38, 0x40, 0x57, 0x58, 0x59, 0x5A]
            interesting += [0x5F, 0x60, 0x77, 0x78, 0x79, 0x7F, 0x80, 0x9F, 0xA0, 0xA1, 0xBF]
            interesting += [0xC1, 0xD2, 0xF4, 0xF5, 0xF6, 0xF7, 0xF9, 0xFB, 0xFF]
            buf[where] = rng.choice(interesting)
        elif kind == 1 and buf and where < len(buf):
            buf[where] ^= 1 << rng.randrange(8)
        elif kind == 2:
            buf[where:where] = bytes([rng.randrange(256)])
        elif kind == 3:
            del buf[where : where + rng.randint(1, 4)]
        elif kind == 4:
            del buf[where:]
        elif buf:  # repeat a slice (duplicate keys, trailing bytes, longer maps)
            start = rng.randrange(len(buf))
            piece = buf[start : start + rng.randint(1, 60)]
            buf[where:where] = piece
    return bytes(buf)


# ---- properties -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(_values, st.randoms(use_true_random=False), st.sampled_from(_TAG_SETS), st.booleans())
def test_same_as_reference_on_well_formed_input(
    value: object, rng: random.Random, tags: frozenset[int], tagged: bool
) -> None:
    data = _encode(Tag(18, value) if tagged else value, rng)
    _assert_same(data, tags)


@settings(max_examples=200, deadline=None)
@given(_values, st.randoms(use_true_random=False), st.sampled_from(_TAG_SETS))
def test_same_as_reference_on_mutated_input(
    value: object, rng: random.Random, tags: frozenset[int]
) -> None:
    _assert_same(_mutate(_encode(value, rng), rng), tags)


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_same_as_reference_on_mutated_documents(rng: random.Random) -> None:
    # The real shape: a genuine COSE_Sign1 or its payload, with a few bytes changed.
    document = raw(BLOCKY)
    payload = cbor2.loads(document)[2]
    data, tags = rng.choice([(document, frozenset({18})), (payload, frozenset())])
    _assert_same(_mutate(data, rng), tags)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(_TAG_SETS))
def test_same_as_reference_on_random_bytes(data: bytes, tags: frozenset[int]) -> None:
    _assert_same(data, tags)


# ---- the fast paths, case by case -----------------------------------------------------------


def test_genuine_documents_decode_as_before(fixtures_dir: Path) -> None:
    names = sorted(p.name for p in (fixtures_dir / "nitro").glob("*.cose"))
    decoded = 0
    for name in names:
        data = (fixtures_dir / "nitro" / name).read_bytes()
        _assert_same(data, frozenset({18}))
        try:
            payload = decode_sign1(data).payload
        except MalformedDocumentError:
            continue  # an invalid variant: its envelope was compared above
        _assert_same(payload)
        decoded += 1
    assert decoded >= 10


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        # PCR-shaped maps (fixed stride) that must leave the fast path:
        (b"\xa2\x00\x58\x20" + bytes(32) + b"\x00\x58\x20" + bytes(32), "duplicate CBOR map key 0"),
        (b"\xa2\x00\x58\x20" + bytes(32) + b"\x01\x58\x20" + bytes(31), "past the end"),
        (b"\xa2\x00\x58\x20" + bytes(32) + b"\x01\x58\x20", "past the end"),
        (b"\xa2\x00\x58\x20" + bytes(32) + b"\x01\x58", "truncated CBOR head"),
        (b"\xa2\x00\x58\x30" + bytes(48) + b"\x18", "truncated"),
        (b"\xa2\x00\x58\x30" + bytes(48) + b"\x18\x58\x30" + bytes(48), "trailing"),
        (b"\xa2\x00\x58\x30" + bytes(48) + b"\x17\x59\x30" + bytes(49), "past the end"),
        (b"\xa2\x00\x58\x30" + bytes(48) + b"\x17\x58\x20" + bytes(48), "trailing"),
        # Inline strings that must fall back to the general decoder:
        (b"\x81\x59\x01", "truncated CBOR head"),
        (b"\x81\x59\x01\x00" + bytes(255), "past the end"),
        (b"\xa1\x61a\x78\x05abc", "past the end"),
        (b"\xa1\x61a\x62\xc3\x28", "UTF-8 (at byte 3)"),
        (b"\x82\x00\x79\x00\x02\xc3\x28", "UTF-8 (at byte 2)"),
        (b"\xa1\x62\xc3\x28\x00", "UTF-8 (at byte 1)"),
        (b"\xa1\x61a\x61", "past the end"),
        (b"\xa2\x61a\x00\x61a\x00", "duplicate CBOR map key 'a' (at byte 4)"),
        (b"\x81" * MAX_DEPTH + b"\x81\x40", "deep"),
        (b"\x81" * MAX_DEPTH + b"\xa1\x00\x40", "deep"),
    ],
)
def test_fast_path_errors_match_reference(data: bytes, fragment: str) -> None:
    outcome = _assert_same(data)
    assert outcome[0] == "error" and fragment in str(outcome[3])


@pytest.mark.parametrize(
    "value",
    [
        {i: bytes([i]) * 48 for i in range(16)},  # the PCR map of a hardware document
        {i: bytes(64) for i in (23, 0, 5)},  # any order, largest one-byte key
        {i: bytes(32) for i in range(24, 26)},  # two-byte keys: general path
        {i: bytes(48) for i in range(33)},  # more than 32 entries: general path
        {0: bytes(47), 1: bytes(47)},  # not a digest length: general path
        [bytes(300), "x" * 30, bytes(24), b"", "", "\u00e9" * 200],
    ],
)
def test_fast_path_values_match_reference(value: object) -> None:
    data = cbor2.dumps(value)
    assert _assert_same(data)[0] == "value"
    assert _typed(loads_strict(data, field="x")) == _typed(_normalise(value))


def _normalise(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def test_protected_header_shortcut_is_what_it_claims() -> None:
    # _cose skips decoding exactly these bytes because they decode to {1: -35}.
    assert cbor2.dumps({1: -35}) == _PROTECTED_ES384
    assert _typed(loads_strict(_PROTECTED_ES384, field="x")) == _typed({1: -35})
    assert decode_sign1(raw(BLOCKY)).protected == _PROTECTED_ES384


# ---- the payload schema's fast checks name the same first offender --------------------------


@pytest.mark.parametrize(
    ("pcrs", "message"),
    [
        ({0: bytes(48), "1": bytes(48), 40: bytes(48)}, "index '1'"),
        ({0: bytes(48), 40: bytes(48), 2: "x"}, "index 40"),
        ({0: bytes(48), 1: bytes(32), 2: bytes(64)}, "PCR1 must be 48 bytes"),
        ({3: bytes(48), 1: None, 2: bytes(64)}, "PCR1 must be 48 bytes"),
        ({3: b"", 1: bytes(48)}, "PCR3 must be 48 bytes"),
    ],
)
def test_pcr_errors_name_the_first_bad_entry(pcrs: dict[object, object], message: str) -> None:
    fields = genuine_payload()
    fields["pcrs"] = pcrs
    with pytest.raises(MalformedDocumentError, match=message) as info:
        AttestationDocument.from_cbor(cbor2.dumps(fields))
    assert info.value.field == "payload.pcrs"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"extra": 1, "more": 2}, "payload"),
        ({"digest": None, "module_id": None}, "payload.module_id"),  # first in schema order
        ({"cabundle": None, "pcrs": None}, "payload.pcrs"),
        ({"cabundle": [b"x", b"y", "z", b""]}, "payload.cabundle[2]"),
        ({"cabundle": [b"x", b"", "z"]}, "payload.cabundle[1]"),
    ],
)
def test_schema_names_the_first_offender(fields: dict[str, Any], field: str) -> None:
    payload = genuine_payload()
    payload.update(fields)
    with pytest.raises(MalformedDocumentError) as info:
        AttestationDocument.from_cbor(cbor2.dumps(payload))
    assert info.value.field == field
    if field == "payload":
        assert "'extra'" in str(info.value)


def test_genuine_document_fields() -> None:
    doc = AttestationDocument.from_cbor(cbor2.loads(raw(BLOCKY))[2])
    expected = genuine_payload()
    assert dict(doc.pcrs) == expected["pcrs"] and list(doc.pcrs) == sorted(expected["pcrs"])
    assert doc.cabundle == tuple(expected["cabundle"])
    assert doc.certificate == expected["certificate"]
    with pytest.raises(TypeError):
        doc.pcrs[0] = b"x"  # type: ignore[index]
