"""Strict decoding of the CBOR subset that attestation documents use (RFC 8949).

Why not ``cbor2.loads``: cbor2 silently ignores trailing bytes, lets the last of two duplicate map
keys win, and accepts indefinite-length items (nitro-attestation.md §7). Each of those lets two
different byte strings carry "the same" document, or lets unsigned bytes ride along. Real
documents use only definite-length items, integer and text keys, byte and text strings, arrays,
maps, ``null`` and (at the top only) tag 18, so a small decoder that accepts exactly that subset
is both stricter and simpler than a pre-scan plus cbor2. cbor2 remains the independent
implementation the tests compare this decoder against.

What is accepted, and why:

- Non-minimal integer heads (``18 01`` for 1) are accepted: they are valid CBOR, and
  ``invalid-protected-header-reencoded.cose`` must decode and then fail at the signature
  (the fixture README names that stage). Rejecting them here would mislabel it.
- Arrays and maps are returned as ``tuple`` and ``dict``; byte strings as ``bytes``.

How it is fast (every verification decodes a ~7.5 KB payload of about 60 items, so the
decoder is written for CPython's costs, not for brevity):

- :func:`_item` is the one general decoder, and the only code that reports errors.
- Arrays and maps decode the leaves documents are made of inline, without a call per item:
  byte and text strings with a 1..3-byte head, small integer and short text map keys. Anything
  else, and anything that looks wrong (a head or content past the end, say), goes through
  :func:`_item`, which then decodes it or raises exactly as it would for any other item.
- A PCR-shaped map (one-byte integer keys, equal-length byte strings) is cut apart with stepped
  slices and one :mod:`struct` call, see :func:`_fixed_stride_map`.

The fast paths accept only what :func:`_item` accepts and produce the same values; the tests
compare the whole decoder with the previous one-call-per-item decoder on well-formed and
mutated input, messages and byte offsets included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .errors import MalformedDocumentError

__all__ = ["MAX_DEPTH", "Tag", "encode_head", "loads_strict"]

#: Deepest nesting accepted. Documents nest 3 deep (tag, array, payload map values are flat);
#: a bound keeps hostile input from exhausting the Python stack.
MAX_DEPTH: Final = 16

_SIMPLE: Final[dict[int, object]] = {20: False, 21: True, 22: None}
# bool is an int subclass: True would collide with 1, hence type() and not isinstance().
_KEY_TYPES: Final = frozenset({int, str, bytes})
# The PCR map fast path (_fixed_stride_map): SHA256/384/512 values, at most 32 PCRs.
_DIGEST_SIZES: Final = frozenset({32, 48, 64})
_MAX_PCRS: Final = 32
_PCR_LAYOUTS: dict[tuple[int, int], struct.Struct] = {}


@dataclass(frozen=True, slots=True)
class Tag:
    """A CBOR tag (major type 6) and its content."""

    tag: int
    value: object


class _Fail(Exception):
    """A decoding error at a byte offset; :func:`loads_strict` adds the field name."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def loads_strict(data: bytes, *, field: str, allowed_tags: frozenset[int] = frozenset()) -> object:
    """Decode exactly one CBOR item that spans all of ``data``.

    Args:
        data: the encoded item.
        field: the name used in error messages (for example ``"payload"``).
        allowed_tags: tags accepted on the outermost item only (COSE_Sign1 may carry tag 18).

    Returns:
        The decoded value: ``int``, ``bytes``, ``str``, ``tuple``, ``dict``, ``bool``, ``None``
        or :class:`Tag`.

    Raises:
        MalformedDocumentError: the bytes are not exactly one item of the accepted subset.
    """
    try:
        value, pos = _item(data, 0, 0, allowed_tags)
        if pos != len(data):
            # nitro-attestation.md §7: cbor2.loads would silently drop these bytes.
            raise _Fail(f"{len(data) - pos} trailing bytes after the CBOR item", pos)
    except _Fail as error:
        raise MalformedDocumentError(
            f"{error.message} (at byte {error.pos})", field=field
        ) from None
    return value


def _item(data: bytes, pos: int, depth: int, tags: frozenset[int]) -> tuple[object, int]:
    """Decode the item at ``pos`` (at nesting ``depth``); return it and the offset after it.

    Raises:
        _Fail: the item is malformed or outside the accepted subset.
    """
    end = len(data)
    if pos >= end:
        raise _Fail("truncated CBOR item", pos)
    start = pos
    initial = data[pos]
    major = initial >> 5
    arg = initial & 0x1F
    pos += 1
    if arg >= 24:
        if arg == 31:
            # RFC 8949 §3.2: indefinite lengths (and "break"); the format has none.
            raise _Fail("indefinite-length CBOR items are not allowed", pos)
        if arg > 27:
            raise _Fail("reserved CBOR additional information", pos)
        size = 1 << (arg - 24)
        if pos + size > end:
            raise _Fail("truncated CBOR head", pos)
        if major != 7:  # for major 7 the argument stays the additional information
            arg = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major == 2 or major == 3:
        if arg > end - pos:
            raise _Fail("CBOR string runs past the end of the input", pos)
        raw = data[pos : pos + arg]
        return raw if major == 2 else _utf8(raw, start), pos + arg
    if major == 4:
        # Every item takes at least one byte: a count beyond the rest of the input is a lie
        # and must not drive an allocation.
        if arg > end - pos:
            raise _Fail("CBOR array longer than the input", pos)
        if arg and depth >= MAX_DEPTH:
            raise _Fail("CBOR nesting too deep", pos)
        return _array(data, pos, arg, depth + 1, tags)
    if major == 5:
        if arg > (end - pos) // 2:
            raise _Fail("CBOR map longer than the input", pos)
        if arg and depth >= MAX_DEPTH:
            raise _Fail("CBOR nesting too deep", pos)
        return _map(data, pos, arg, depth + 1, tags)
    if major == 6:
        if depth != 0 or arg not in tags:
            raise _Fail(f"unexpected CBOR tag {arg}", start)
        value, pos = _item(data, pos, depth + 1, tags)
        return Tag(arg, value), pos
    # major 7: only false/true/null; no floats, undefined or other simple values occur.
    if arg in _SIMPLE:
        return _SIMPLE[arg], pos
    raise _Fail("unsupported CBOR simple value or float", start)


def _array(
    data: bytes, pos: int, count: int, depth: int, tags: frozenset[int]
) -> tuple[tuple[object, ...], int]:
    """Decode ``count`` items at ``depth`` into a tuple (the cabundle: byte strings)."""
    end = len(data)
    out: list[object] = []
    append = out.append
    for _ in range(count):
        # Inline: a byte or text string with a 1..3-byte head (info <= 25), head and content
        # wholly inside the input. Anything else, including every error, is _item's.
        initial = data[pos] if pos < end else 0xFF
        if 0x40 <= initial <= 0x79 and (info := initial & 0x1F) <= 25 and end - pos > 2:
            if info == 25:  # first: certificates, keys and user data are 256..65535 bytes
                at, size = pos + 3, data[pos + 1] << 8 | data[pos + 2]
            elif info == 24:
                at, size = pos + 2, data[pos + 1]
            else:
                at, size = pos + 1, info
            if size <= end - at:
                raw = data[at : at + size]
                append(raw if initial < 0x60 else _utf8(raw, pos))
                pos = at + size
                continue
        value, pos = _item(data, pos, depth, tags)
        append(value)
    return tuple(out), pos


def _map(
    data: bytes, pos: int, count: int, depth: int, tags: frozenset[int]
) -> tuple[dict[object, object], int]:
    """Decode ``count`` key/value pairs at ``depth`` (the payload, the PCRs, COSE headers)."""
    end = len(data)
    if count > 1 and data[pos + 1] == 0x58:  # count > 1 means at least 4 bytes remain
        fixed = _fixed_stride_map(data, pos, count)
        if fixed is not None:
            return fixed
    out: dict[object, object] = {}
    for _ in range(count):
        start = pos
        initial = data[pos] if pos < end else 0xFF
        key: object
        if initial < 0x18:  # small unsigned integer: COSE labels and PCR indexes
            key = initial
            pos += 1
        elif 0x60 <= initial < 0x78 and initial - 0x60 < end - pos:  # short text: payload keys
            pos += 1 + initial - 0x60
            key = _utf8(data[start + 1 : pos], start)
        else:
            key, pos = _item(data, pos, depth, tags)
            if type(key) not in _KEY_TYPES:
                raise _Fail("CBOR map key must be an integer, text or byte string", start)
        if key in out:
            raise _Fail(f"duplicate CBOR map key {key!r}", start)
        # The value: strings inline exactly as in _array.
        initial = data[pos] if pos < end else 0xFF
        if 0x40 <= initial <= 0x79 and (info := initial & 0x1F) <= 25 and end - pos > 2:
            if info == 25:  # first: certificates, keys and user data are 256..65535 bytes
                at, size = pos + 3, data[pos + 1] << 8 | data[pos + 2]
            elif info == 24:
                at, size = pos + 2, data[pos + 1]
            else:
                at, size = pos + 1, info
            if size <= end - at:
                raw = data[at : at + size]
                out[key] = raw if initial < 0x60 else _utf8(raw, pos)
                pos = at + size
                continue
        out[key], pos = _item(data, pos, depth, tags)
    return out, pos


def _utf8(raw: bytes, start: int) -> str:
    """Decode text string content; ``start`` is the item's first byte, for the error."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Fail("text string is not valid UTF-8", start) from None


def _fixed_stride_map(data: bytes, pos: int, count: int) -> tuple[dict[object, object], int] | None:
    """A PCR-shaped map decoded by C-level slicing, or ``None`` to take the general path.

    PCR maps are ``count`` entries of ``<uint 0..23> 58 <L> <L bytes>``: a fixed stride of
    ``L + 3`` bytes. Stepped slices pick out every key byte and every head byte at once, and one
    :mod:`struct` call cuts out every value. The result is used only when every key is a
    distinct one-byte integer and every value head is ``58 L`` with the content inside the
    input, which is exactly when the general loop would decode the same entries, in the same
    order, to the same dict without error.
    """
    size = data[pos + 2]
    if size not in _DIGEST_SIZES or count > _MAX_PCRS:
        return None
    stride = size + 3
    stop = pos + count * stride
    if stop > len(data):
        return None
    keys = data[pos:stop:stride]
    if (
        max(keys) >= 0x18
        or data[pos + 1 : stop : stride] != b"\x58" * count
        or data[pos + 2 : stop : stride] != bytes((size,)) * count
        or len(set(keys)) != count
    ):
        return None
    layout = _PCR_LAYOUTS.get((count, size))
    if layout is None:  # at most 3 x 32 layouts, so the cache is bounded
        layout = _PCR_LAYOUTS[count, size] = struct.Struct(f"<{count * f'3x{size}s'}")
    return dict(zip(keys, layout.unpack_from(data, pos), strict=True)), stop


def encode_head(major: int, value: int) -> bytes:
    """Encode a minimal CBOR head (RFC 8949 §3 preferred serialisation)."""
    if value < 24:
        return bytes([(major << 5) | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([(major << 5) | info]) + value.to_bytes(size, "big")
    raise ValueError("CBOR argument does not fit in 64 bits")
