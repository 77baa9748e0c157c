"""Format-aware mutation primitives shared by the fuzz targets: bytes, CBOR and BER/DER TLV.

Raw bit flips mostly die at the first length or type check of a parser, so each target mutates
the *decoded* structure and re-encodes it. The encoders here deliberately produce the odd but
legal encodings (non-minimal CBOR heads, indefinite lengths, long-form BER lengths, constructed
OCTET STRINGs) as well as illegal ones, because those are the places two parsers disagree.

Every function takes an explicit ``random.Random`` so that a run is reproducible from its seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Node",
    "RawCbor",
    "encode_cbor",
    "encode_tlv",
    "mutate_bytes",
    "mutate_tlv",
    "parse_tlv",
    "random_cbor_value",
]

# Byte-level mutation (used alone when no libFuzzer is present, and inside structure mutators).

_INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x17, 0x18, 0x1F, 0x20, 0x40, 0x9F, 0xBF, 0xF6)


def mutate_bytes(data: bytes, rng: random.Random, max_size: int = 1 << 16) -> bytes:
    """One to four classic byte mutations: flip, set, insert, delete, duplicate, truncate."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[pos % len(buf)] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[pos % len(buf)] = rng.choice(_INTERESTING)
        elif op == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and buf:
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            chunk = buf[start : start + rng.randint(1, 64)]
            buf[pos:pos] = chunk
        elif op == 5:
            del buf[pos:]
        else:
            buf += bytes(rng.randint(0, 4))
    return bytes(buf[:max_size])


# CBOR: an encoder that can be asked for non-minimal heads and indefinite lengths.


@dataclass(frozen=True)
class RawCbor:
    """Pre-encoded CBOR bytes spliced verbatim into :func:`encode_cbor` output."""

    data: bytes


@dataclass(frozen=True)
class CborTag:
    """A tag for :func:`encode_cbor` (cbor2's CBORTag also works)."""

    tag: int
    value: Any


@dataclass(frozen=True)
class DupMap:
    """A map encoded from a list of pairs, so duplicate keys survive re-encoding."""

    pairs: list[tuple[Any, Any]] = field(default_factory=list)


def _head(major: int, value: int, rng: random.Random | None, weird: float) -> bytes:
    if rng is not None and rng.random() < weird:
        # Non-minimal but legal: any width that holds the value.
        widths = [w for w in (1, 2, 4, 8) if value < 1 << (8 * w)]
        if widths:
            width = rng.choice(widths)
            info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
            return bytes([(major << 5) | info]) + value.to_bytes(width, "big")
    if value < 24:
        return bytes([(major << 5) | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([(major << 5) | info]) + value.to_bytes(size, "big")
    # Bignum territory: CBOR tag 2/3 would be right; emit a head that lies instead.
    return bytes([(major << 5) | 27]) + b"\xff" * 8


def encode_cbor(value: Any, rng: random.Random | None = None, weird: float = 0.0) -> bytes:
    """Encode ``value``; with ``rng`` and ``weird`` > 0, sometimes use odd but legal forms."""

    def indefinite() -> bool:
        return rng is not None and rng.random() < weird / 2

    if isinstance(value, RawCbor):
        return value.data
    if value is None:
        return b"\xf6"
    if value is False:
        return b"\xf4"
    if value is True:
        return b"\xf5"
    if isinstance(value, int):
        if value >= 0:
            return _head(0, value, rng, weird)
        return _head(1, -1 - value, rng, weird)
    if isinstance(value, float):
        import struct

        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, bytes | bytearray | str):
        major = 3 if isinstance(value, str) else 2
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
        if len(raw) > 1 and indefinite():
            assert rng is not None
            cut = rng.randrange(1, len(raw))
            parts = (raw[:cut], raw[cut:])
            return (
                bytes([(major << 5) | 31])
                + b"".join(_head(major, len(p), rng, weird) + p for p in parts)
                + b"\xff"
            )
        return _head(major, len(raw), rng, weird) + raw
    if isinstance(value, list | tuple):
        items = b"".join(encode_cbor(v, rng, weird) for v in value)
        if indefinite():
            return b"\x9f" + items + b"\xff"
        return _head(4, len(value), rng, weird) + items
    if isinstance(value, DupMap) or callable(getattr(value, "items", None)):
        # dict, or cbor2's frozendict (a map used as a key) which is a Mapping but not a dict.
        pairs = value.pairs if isinstance(value, DupMap) else list(value.items())
        items = b"".join(encode_cbor(k, rng, weird) + encode_cbor(v, rng, weird) for k, v in pairs)
        if indefinite():
            return b"\xbf" + items + b"\xff"
        return _head(5, len(pairs), rng, weird) + items
    tag = getattr(value, "tag", None)
    if isinstance(tag, int):
        return _head(6, tag, rng, weird) + encode_cbor(value.value, rng, weird)
    raise TypeError(f"cannot encode {type(value).__name__}")


def random_cbor_value(rng: random.Random, depth: int = 0) -> Any:
    """A random CBOR item, including the types the Nitro format never uses."""
    choice = rng.randrange(14 if depth < 3 else 10)
    if choice == 0:
        return rng.choice([0, 1, 23, 24, 255, 256, 2**31, 2**32, 2**63, 2**64 - 1])
    if choice == 1:
        return rng.choice([-1, -24, -25, -35, -7, -(2**63), -(2**64)])
    if choice == 2:
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 16, 32, 48, 64, 97])))
    if choice == 3:
        return rng.choice(["", "SHA384", "SHA256", "i-0-enc0", "\u00e9", "x" * 300])
    if choice == 4:
        return rng.choice([None, True, False])
    if choice == 5:
        return rng.choice([0.0, -0.0, 1.5, float("inf"), float("nan")])
    if choice == 6:
        return RawCbor(rng.choice([b"\xf7", b"\xf0", b"\xf8\xff", b"\xf9\x7e\x00", b"\xff"]))
    if choice == 7:
        return RawCbor(bytes(rng.randrange(256) for _ in range(rng.randint(1, 6))))
    if choice == 8:
        return bytes(rng.randrange(256) for _ in range(rng.choice([1023, 1024, 1025])))
    if choice == 9:
        return rng.choice([b"", "", 0])
    if choice == 10:
        return [random_cbor_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if choice == 11:
        return {
            random_cbor_value(rng, depth + 1) if rng.random() < 0.3 else rng.randrange(40): (
                random_cbor_value(rng, depth + 1)
            )
            for _ in range(rng.randint(0, 4))
        }
    if choice == 12:
        return CborTag(rng.choice([0, 1, 2, 18, 24, 55799]), random_cbor_value(rng, depth + 1))
    deep: Any = 0
    for _ in range(rng.choice([15, 16, 17, 40])):
        deep = [deep]
    return deep


# BER/DER: a tolerant TLV tree, mutated and re-encoded with chosen length forms.


@dataclass
class Node:
    """One BER TLV: the identifier octets, and either content bytes or children."""

    ident: bytes
    content: bytes = b""
    children: list[Node] | None = None
    indefinite: bool = False
    long_len: int = 0  # extra length octets beyond the minimal form (0 = minimal)

    @property
    def constructed(self) -> bool:
        return bool(self.ident[0] & 0x20)


def _read_len(data: bytes, pos: int) -> tuple[int | None, int]:
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    if first == 0x80:
        return None, pos
    count = first & 0x7F
    if count > 4 or pos + count > len(data):
        raise ValueError("bad length")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def _parse(data: bytes, pos: int, end: int, depth: int) -> tuple[list[Node], int]:
    nodes: list[Node] = []
    while pos < end:
        if data[pos : pos + 2] == b"\x00\x00":
            return nodes, pos + 2
        start = pos
        pos += 1
        if data[start] & 0x1F == 0x1F:
            while pos < end and data[pos] & 0x80:
                pos += 1
            pos += 1
        ident = data[start:pos]
        length, pos = _read_len(data, pos)
        constructed = bool(ident[0] & 0x20)
        if length is None:
            if not constructed or depth > 20:
                raise ValueError("indefinite primitive")
            children, pos = _parse(data, pos, end, depth + 1)
            nodes.append(Node(ident, children=children, indefinite=True))
            continue
        if pos + length > end:
            raise ValueError("overrun")
        body = data[pos : pos + length]
        pos += length
        if constructed and depth <= 20:
            children, used = _parse(body, 0, len(body), depth + 1)
            if used != len(body):
                raise ValueError("EOC inside definite")
            nodes.append(Node(ident, children=children))
        else:
            nodes.append(Node(ident, content=body))
    return nodes, pos


def parse_tlv(data: bytes) -> list[Node]:
    """Parse BER into a forest of nodes; raises ``ValueError`` on input it cannot frame."""
    if not data:
        raise ValueError("empty")
    try:
        nodes, _ = _parse(data, 0, len(data), 0)
    except IndexError:
        raise ValueError("truncated") from None
    return nodes


def _len_octets(length: int, extra: int) -> bytes:
    if length < 0x80 and not extra:
        return bytes([length])
    raw = length.to_bytes(max(1, (length.bit_length() + 7) // 8), "big")
    raw = bytes(extra) + raw
    return bytes([0x80 | len(raw)]) + raw


def encode_tlv(nodes: list[Node]) -> bytes:
    """Re-encode a forest, honouring each node's length form."""
    out = []
    for n in nodes:
        if n.children is not None:
            body = encode_tlv(n.children)
            if n.indefinite and n.constructed:
                out.append(n.ident + b"\x80" + body + b"\x00\x00")
                continue
        else:
            body = n.content
        out.append(n.ident + _len_octets(len(body), n.long_len) + body)
    return b"".join(out)


def _walk(nodes: list[Node], parent: list[Node] | None = None) -> list[tuple[list[Node], int]]:
    found = []
    for i, n in enumerate(nodes):
        found.append((nodes, i))
        if n.children is not None:
            found.extend(_walk(n.children, nodes))
    return found


#: OIDs (full TLV) a CMS mutation may swap in: those the parser must reject and near misses.
OIDS = tuple(
    bytes.fromhex(h)
    for h in (
        "06092a864886f70d010703",  # envelopedData
        "06092a864886f70d010701",  # data
        "06092a864886f70d010702",  # signedData
        "06092a864886f70d010107",  # rsaesOaep
        "06092a864886f70d010101",  # rsaEncryption (PKCS#1 v1.5)
        "06092a864886f70d010108",  # mgf1
        "06092a864886f70d010109",  # pSpecified
        "0609608648016503040201",  # sha256
        "0609608648016503040203",  # sha512
        "06052b0e03021a",  # sha1
        "060960864801650304012a",  # aes256-CBC
        "0609608648016503040102",  # aes128-CBC
        "060960864801650304012e",  # aes256-GCM
        "0600",  # empty OID
        "06018f",  # truncated arc
    )
)


def mutate_tlv(nodes: list[Node], rng: random.Random) -> None:
    """Apply one structural mutation in place to a random node of the forest."""
    spots = _walk(nodes)
    siblings, i = rng.choice(spots)
    node = siblings[i]
    op = rng.randrange(14)
    if op == 0:  # retag: universal types, context tags, constructed bit
        node.ident = bytes([rng.choice([0x02, 0x04, 0x05, 0x06, 0x30, 0x31, 0x80, 0xA0, 0xA1])])
        if not node.constructed and node.children is not None:
            node.content, node.children = encode_tlv(node.children), None
    elif op == 1:
        del siblings[i]
    elif op == 2:
        siblings.insert(i, Node(node.ident, node.content, _copy(node.children), node.indefinite))
    elif op == 3:
        other_siblings, j = rng.choice(spots)
        siblings[i], other_siblings[j] = other_siblings[j], siblings[i]
    elif op == 4:  # length form
        node.long_len = rng.choice([0, 1, 2])
        node.indefinite = node.constructed and rng.random() < 0.5
    elif op == 5 and node.children is None:  # BER: split a primitive into a constructed string
        cut = rng.randrange(len(node.content) + 1)
        parts = [node.content[:cut], node.content[cut:]]
        node.ident = bytes([node.ident[0] | 0x20]) + node.ident[1:]
        node.children = [Node(b"\x04", p) for p in parts]
        node.indefinite = rng.random() < 0.5
    elif op == 6 and node.children is None:
        node.content = mutate_bytes(node.content, rng, 1 << 14)
    elif op == 7 and node.children is None:  # INTEGER-ish values: versions, sizes
        node.content = rng.choice([b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\xff", b""])
    elif op == 8:
        oid = rng.choice(OIDS)
        siblings[i] = Node(oid[:1], oid[2:])
    elif op == 9 and node.children is not None:
        node.children.append(Node(b"\x05", b""))  # trailing NULL inside a structure
    elif op == 10 and node.children is not None:
        node.children = node.children[: rng.randrange(len(node.children) + 1)]
    elif op == 11:
        node.ident = node.ident + b"\x00" if node.ident[0] & 0x1F == 0x1F else b"\x9f\x7f"
    elif op == 12 and node.children is None:
        node.content = node.content * rng.choice([2, 16])
    else:
        siblings.insert(i + 1, Node(b"\x04", bytes(rng.randrange(256) for _ in range(16))))


def _copy(children: list[Node] | None) -> list[Node] | None:
    if children is None:
        return None
    return [Node(c.ident, c.content, _copy(c.children), c.indefinite, c.long_len) for c in children]
