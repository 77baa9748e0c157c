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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import MalformedDocumentError

__all__ = ["MAX_DEPTH", "Tag", "encode_head", "loads_strict"]

#: Deepest nesting accepted. Documents nest 3 deep (tag, array, payload map values are flat);
#: a bound keeps hostile input from exhausting the Python stack.
MAX_DEPTH: Final = 16

_SIMPLE: Final[dict[int, object]] = {20: False, 21: True, 22: None}


@dataclass(frozen=True, slots=True)
class Tag:
    """A CBOR tag (major type 6) and its content."""

    tag: int
    value: object


class _Decoder:
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
            # RFC 8949 §3.2: indefinite lengths (and "break"); the format has none.
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
            # Every item takes at least one byte: a count beyond the rest of the input is a lie
            # and must not drive an allocation.
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
                # bool is an int subclass: True would collide with 1. Only int/text/bytes keys
                # occur in the format (COSE labels, payload keys, PCR indexes).
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
        # major 7: only false/true/null; no floats, undefined or other simple values occur.
        if arg in _SIMPLE:
            return _SIMPLE[arg]
        self.pos = start
        raise self.fail("unsupported CBOR simple value or float")


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
    decoder = _Decoder(data, field, allowed_tags)
    value = decoder.item(0)
    if decoder.pos != decoder.end:
        # nitro-attestation.md §7: cbor2.loads would silently drop these bytes.
        raise decoder.fail(f"{decoder.end - decoder.pos} trailing bytes after the CBOR item")
    return value


def encode_head(major: int, value: int) -> bytes:
    """Encode a minimal CBOR head (RFC 8949 §3 preferred serialisation)."""
    if value < 24:
        return bytes([(major << 5) | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([(major << 5) | info]) + value.to_bytes(size, "big")
    raise ValueError("CBOR argument does not fit in 64 bits")
