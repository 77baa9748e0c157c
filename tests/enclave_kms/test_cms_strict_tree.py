"""A minimal BER tree for editing envelopes structurally, and a check that it is lossless.

The structure-aware tests in ``test_cms_strict.py`` and ``test_cms_strict_differential.py``
parse an envelope into :class:`Node` objects, edit one, and re-encode with every enclosing
length recomputed. That is only meaningful if an unedited tree re-encodes to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_kms.cms import build_ciphertext_for_recipient


@dataclass
class Node:
    """One BER element: identifier octets, then children (constructed) or a body (primitive).

    A node without identifier octets stands for raw bytes (garbage) spliced into its parent.
    """

    ident: bytes
    children: list[Node] | None
    body: bytes
    indefinite: bool = False


def tlv(tag: int, *parts: Node | bytes) -> Node:
    """A definite-length element with a one-byte tag: children if constructed, else bytes."""
    if tag & 0x20:
        return Node(bytes((tag,)), [part for part in parts if isinstance(part, Node)], b"")
    return Node(bytes((tag,)), None, b"".join(part for part in parts if isinstance(part, bytes)))


def _parse_node(data: bytes, pos: int) -> tuple[Node, int]:
    start = pos
    pos += 1
    if data[start] & 0x1F == 0x1F:
        while data[pos] & 0x80:
            pos += 1
        pos += 1
    ident, first = data[start:pos], data[pos]
    pos += 1
    constructed = bool(data[start] & 0x20)
    if first == 0x80:  # indefinite: children up to the end-of-contents octets
        children = []
        while data[pos : pos + 2] != b"\x00\x00":
            child, pos = _parse_node(data, pos)
            children.append(child)
        return Node(ident, children, b"", indefinite=True), pos + 2
    length = first
    if first > 0x80:
        count = first & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if not constructed:
        return Node(ident, None, data[pos:end]), end
    children = []
    while pos < end:
        child, pos = _parse_node(data, pos)
        children.append(child)
    return Node(ident, children, b""), end


def parse_tree(data: bytes) -> Node:
    node, end = _parse_node(data, 0)
    assert end == len(data)
    return node


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def encode(node: Node) -> bytes:
    """Re-encode ``node``; every length is recomputed from what is inside."""
    if not node.ident:  # raw bytes spliced in as they are
        return node.body
    if node.children is None:
        body = node.body
    else:
        body = b"".join(encode(child) for child in node.children)
    if node.indefinite and node.children is not None:
        return node.ident + b"\x80" + body + b"\x00\x00"
    return node.ident + _der_length(len(body)) + body


def walk_nodes(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children or ():
        yield from walk_nodes(child)


def oid(dotted: str) -> Node:
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    body = bytearray((40 * first + second,))
    for arc in rest:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def test_tree_is_lossless_on_ber_and_der(fixtures_dir: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ours = build_ciphertext_for_recipient(bytes(40), key.public_key())
    samples = [path.read_bytes() for path in sorted((fixtures_dir / "kms").glob("*.*er"))]
    for data in [ours, *samples]:
        for form in (data, bytes(cms.ContentInfo.load(data).dump(force=True))):
            assert encode(parse_tree(form)) == form


@pytest.mark.parametrize(
    ("dotted", "der"),
    [("1.2.840.113549.1.7.3", "06092a864886f70d010703"), ("1.2.3.4", "06032a0304")],
)
def test_oid_encoding(dotted: str, der: str) -> None:
    assert encode(oid(dotted)) == bytes.fromhex(der)
