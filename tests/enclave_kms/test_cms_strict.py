"""The envelope parser's full-parse walk refuses what ``EnvelopedData.native`` refused.

``parse_ciphertext_for_recipient`` used ``_ = enveloped.native`` to force asn1crypto through
every layer; it now uses ``enclave_kms._cms_strict.force_full_parse``. The structure-aware cases
below put a defect where only a full parse looks (a second RecipientInfo, an algorithm's
parameters, unprotectedAttrs) and check three things: the previous parse (kept verbatim in
``test_cms_strict_differential.py``) refuses it, the new one refuses it too, and a shallow
``_parse_children(recurse=True)`` would not have, so each case really needs the full walk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_cms_strict_differential import RICH, outcome, reference_parse, rich_second_ktri
from test_cms_strict_tree import Node, encode, parse_tree, tlv

from enclave_kms import _cms_strict
from enclave_kms import cms as cms_module
from enclave_kms.cms import parse_ciphertext_for_recipient

NULL = Node(b"\x05", None, b"")
BAD_UTF8 = Node(b"\x0c", None, b"\xff")  # a well-formed UTF8String TLV with invalid UTF-8
CUT_SHORT = Node(b"", None, b"\x05")  # raw garbage: an element header without its length
# asn1crypto accepts extra well-formed elements after a SEQUENCE's last field (parsed
# generically), so the defects spliced in are garbage, or an extra element that does not parse.
DEFECTS = pytest.mark.parametrize("defect", [CUT_SHORT, BAD_UTF8], ids=["garbage", "bad-utf8"])


def _shallow(value: Any) -> None:
    # What the brief measured as the cheap alternative: it recurses only into SEQUENCE / SET
    # children, not into CHOICE alternatives, ANY values or explicitly tagged contents.
    value._parse_children(recurse=True)


def _assert_only_a_full_parse_refuses(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    old = outcome(reference_parse, data)
    new = outcome(parse_ciphertext_for_recipient, data)
    assert old == new
    assert new[0] == "error"
    assert new[1] == "malformed CMS EnvelopedData"  # the structure at fault
    with monkeypatch.context() as patch:
        patch.setattr(cms_module, "force_full_parse", _shallow)
        assert outcome(parse_ciphertext_for_recipient, data)[0] == "ok"


def _mutate_rich(change: Callable[[Node], None]) -> bytes:
    tree = parse_tree(RICH)
    change(tree)
    return encode(tree)


def _enveloped(tree: Node) -> Node:
    assert tree.children is not None
    wrapper = tree.children[1].children
    assert wrapper is not None
    return wrapper[0]


def _kids(node: Node) -> list[Node]:
    assert node.children is not None
    return node.children


def test_rich_envelope_is_accepted_and_read_from_its_first_recipient() -> None:
    old = outcome(reference_parse, RICH)
    assert old[0] == "ok"
    assert outcome(parse_ciphertext_for_recipient, RICH) == old


@DEFECTS
def test_extra_element_inside_the_second_recipients_ktri(
    defect: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _mutate_rich(lambda tree: _kids(rich_second_ktri(tree)).append(defect))
    _assert_only_a_full_parse_refuses(data, monkeypatch)


@DEFECTS
def test_extra_element_inside_the_second_ktris_oaep_parameters(
    defect: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    # keyEncryptionAlgorithm = SEQUENCE { OID rsaes-oaep, RSAES-OAEP-params SEQUENCE {...} }
    def change(tree: Node) -> None:
        _kids(_kids(_kids(rich_second_ktri(tree))[2])[1]).append(defect)

    _assert_only_a_full_parse_refuses(_mutate_rich(change), monkeypatch)


@DEFECTS
def test_extra_element_inside_an_algorithm_identifier_in_the_parameters(
    defect: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(tree: Node) -> None:
        params = _kids(_kids(rich_second_ktri(tree))[2])[1]  # RSAES-OAEP-params
        mgf = _kids(_kids(params)[1])[0]  # [1] EXPLICIT MaskGenAlgorithm
        _kids(_kids(mgf)[1]).append(defect)  # inside MGF1's hash AlgorithmIdentifier

    _assert_only_a_full_parse_refuses(_mutate_rich(change), monkeypatch)


@DEFECTS
def test_extra_element_inside_an_unprotected_attribute_value(
    defect: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    # unprotectedAttrs [1] { ..., Attribute { OID 1.3.6.1.4.1.99999.1, SET { SEQUENCE {..} } } }:
    # an unknown attribute's values are ANY, parsed only when read.
    def change(tree: Node) -> None:
        unknown_attr = _kids(_kids(_enveloped(tree))[3])[1]
        _kids(_kids(_kids(unknown_attr)[1])[0]).append(defect)

    _assert_only_a_full_parse_refuses(_mutate_rich(change), monkeypatch)


def test_malformed_second_recipient_of_another_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    # [2] IMPLICIT KEKRecipientInfo { version 4, kekid { keyIdentifier }, keyEncAlg, encKey }
    # with a UTF8String where the version INTEGER belongs: the CHOICE tag matches, so only
    # parsing the chosen alternative notices.
    kekri = Node(b"\xa2", [BAD_UTF8, tlv(0x30, tlv(0x04, b"k")), NULL, tlv(0x04, b"x")], b"")

    def change(tree: Node) -> None:
        _kids(_kids(_enveloped(tree))[1])[1] = kekri

    _assert_only_a_full_parse_refuses(_mutate_rich(change), monkeypatch)


EMPTY_OID = Node(b"\x06", None, b"")  # parses, and .native gives "", but .set("") fails


def _hash_algorithm(parameters: Node, contents_length: int) -> Callable[[Node], None]:
    """Replace the second KTRI's OAEP hashFunc by { OID 1.2.3.4, parameters, padding }.

    An unknown algorithm makes the parameters ANY; the padding OCTET STRING after the last
    field is accepted by asn1crypto and sets the SEQUENCE's contents length.
    """

    def change(tree: Node) -> None:
        params = _kids(_kids(_kids(rich_second_ktri(tree))[2])[1])  # RSAES-OAEP-params
        fixed = len(encode(parameters)) + 5 + 2  # OID 1.2.3.4 is 5 bytes, padding header 2
        padding = Node(b"\x04", None, bytes(contents_length - fixed))
        algorithm = Node(b"\x30", [tlv(0x06, b"\x2a\x03\x04"), parameters, padding], b"")
        params[0] = Node(b"\xa0", [algorithm], b"")

    return change


def test_parameters_asn1crypto_cannot_reencode_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The second KTRI's OAEP params omit pSourceFunc, so asn1crypto fills in the DEFAULT and
    # marks them mutated; reading the keyEncryptionAlgorithm then re-encodes it. asn1crypto
    # takes any header ending in 0x80 for indefinite length, so the hashFunc SEQUENCE with
    # 128 bytes of contents (30 81 80) is re-encoded from .native, and .set() of the empty
    # OID's native "" raises. A walk that skipped the re-encoding would accept this envelope.
    data = _mutate_rich(_hash_algorithm(EMPTY_OID, 128))
    assert bytes.fromhex("a0 81 83 30 81 80 06 03 2a 03 04 06 00") in data
    _assert_only_a_full_parse_refuses(data, monkeypatch)


@pytest.mark.parametrize(
    ("parameters", "length"), [(EMPTY_OID, 127), (EMPTY_OID, 129), (tlv(0x06, b"\x2a"), 128)]
)
def test_reencoding_variants_the_previous_parse_accepted(parameters: Node, length: int) -> None:
    # Without a header ending in 0x80 nothing is re-encoded from .native, and a well-formed OID
    # survives the re-encoding: both parses accept these.
    data = _mutate_rich(_hash_algorithm(parameters, length))
    old = outcome(reference_parse, data)
    assert old[0] == "ok"
    assert outcome(parse_ciphertext_for_recipient, data) == old


def test_fallback_to_native_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        RICH,
        _mutate_rich(lambda tree: _kids(rich_second_ktri(tree)).append(CUT_SHORT)),
        _mutate_rich(_hash_algorithm(EMPTY_OID, 128)),
    ]
    walked = [outcome(parse_ciphertext_for_recipient, data) for data in cases]
    monkeypatch.setattr(_cms_strict, "_CAN_WALK", False)
    assert [outcome(parse_ciphertext_for_recipient, data) for data in cases] == walked
    assert [result[0] for result in walked] == ["ok", "error", "error"]


def test_walk_is_active_with_the_installed_asn1crypto() -> None:
    # The walk is version-gated; losing it silently would only show as a slower benchmark.
    assert _cms_strict._CAN_WALK


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", False),
        (encode(tlv(0x30, tlv(0x02, b"\x01"), tlv(0x04, b"\x80" * 3))), False),  # 0x80 in content
        (bytes.fromhex("3080020101") + b"\x00\x00", True),  # indefinite length
        (bytes.fromhex("0481") + b"\x80" + bytes(128), True),  # long form ending in 0x80
        (bytes.fromhex("30 04 a0 80 00 00"), True),  # indefinite one level down
        (bytes.fromhex("30 05 02 01"), True),  # truncated
        (bytes.fromhex("1f 81 01 01 00"), False),  # high tag number
    ],
)
def test_header_scan(data: bytes, expected: bool) -> None:
    assert _cms_strict._has_header_ending_0x80(data) is expected
