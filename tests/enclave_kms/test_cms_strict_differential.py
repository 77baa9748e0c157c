"""Differential test: the envelope parser against its previous ``.native``-based version.

``reference_parse`` below is ``parse_ciphertext_for_recipient`` (and its helpers) exactly as it
was before the full-parse walk replaced ``_ = enveloped.native``. Every property feeds both the
same mutated envelope and requires the same outcome: the same ``RecipientEnvelope``, or a
``CmsFormatError`` with the same message. Bases are our builder's BER output, its DER
re-encoding, the four real KMS samples and their DER, and a richer DER envelope (two
recipients, unprotectedAttrs); mutations are bit flips, byte insertions and deletions, and
structure-aware edits that re-encode the tree with every enclosing length fixed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import pytest
from asn1crypto import algos, cms
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_cms_strict_tree import Node, encode, oid, parse_tree, tlv, walk_nodes

from enclave_kms import cms as cms_module
from enclave_kms.cms import (
    MAX_ENVELOPE_SIZE,
    CmsFormatError,
    RecipientEnvelope,
    build_ciphertext_for_recipient,
)
from enclave_kms.cms import parse_ciphertext_for_recipient as new_parse

_IV_SIZE = 16
_BLOCK_BITS = 128

# ---- the previous parse, verbatim but for the function name (enclave_kms/cms.py before) ---


@contextmanager
def _reading(where: str) -> Iterator[None]:
    """Turn any exception raised while reading ``where`` into a :class:`CmsFormatError`."""
    try:
        yield
    except CmsFormatError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, ...
        raise CmsFormatError(f"malformed CMS {where}") from exc


def _check_sha256(alg: Any, where: str) -> None:
    if alg["algorithm"].native != "sha256":
        raise CmsFormatError(f"unsupported {where}: only SHA-256 is used by KMS")
    # Parameters are NULL (KMS, BouncyCastle) or absent (openssl); anything else is wrong.
    if alg["parameters"].native is not None:
        raise CmsFormatError(f"malformed {where}: unexpected parameters")


def _read_ktri(enveloped: Any) -> Any:
    with _reading("recipientInfos"):
        infos = list(enveloped["recipient_infos"])
    # sdk-c uses the first KTRI only; we take the first recipient that is a KTRI.
    for info in infos:
        with _reading("RecipientInfo"):
            if info.name == "ktri":
                return info.chosen
    raise CmsFormatError("no KeyTransRecipientInfo in recipientInfos")


def _read_oaep(ktri: Any) -> None:
    with _reading("keyEncryptionAlgorithm"):
        kea = ktri["key_encryption_algorithm"]
        name = kea["algorithm"].native
        if name != "rsaes_oaep":
            raise CmsFormatError(f"unsupported keyEncryptionAlgorithm {name!r}: need RSAES-OAEP")
        params = kea["parameters"]
        if not isinstance(params, algos.RSAESOAEPParams):
            raise CmsFormatError("malformed keyEncryptionAlgorithm: missing RSAES-OAEP params")
        _check_sha256(params["hash_algorithm"], "RSAES-OAEP hashFunc")
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].native != "mgf1":
            raise CmsFormatError("unsupported RSAES-OAEP maskGenFunc: need MGF1")
        _check_sha256(mgf["parameters"], "RSAES-OAEP MGF1 hash")
        psource = params["p_source_algorithm"]
        if psource["algorithm"].native != "p_specified" or psource["parameters"].native != b"":
            raise CmsFormatError("unsupported RSAES-OAEP pSourceFunc: need the empty label")


def reference_parse(data: bytes) -> RecipientEnvelope:
    """Parse a ``CiphertextForRecipient`` (BER as KMS sends it, or DER) without decrypting.

    Only what this module can decrypt is accepted: ``envelopedData`` whose first
    KeyTransRecipientInfo uses RSAES-OAEP with SHA-256 and MGF1-SHA-256 (the only setting KMS
    uses), and AES-256-CBC content with a 16-byte IV.

    Args:
        data: the envelope bytes.

    Returns:
        The parsed envelope.

    Raises:
        CmsFormatError: the input is malformed, too large, or uses an unsupported algorithm;
            the message names the structure at fault.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CmsFormatError("CMS input must be bytes")
    if len(data) > MAX_ENVELOPE_SIZE:
        raise CmsFormatError(f"CMS input is larger than {MAX_ENVELOPE_SIZE} bytes")
    with _reading("ContentInfo"):
        info = cms.ContentInfo.load(bytes(data), strict=True)
        content_type = info["content_type"].native
    if content_type != "enveloped_data":
        raise CmsFormatError(f"unsupported ContentInfo contentType {content_type!r}")
    with _reading("EnvelopedData"):
        enveloped = info["content"]
        # Force the whole EnvelopedData to parse so trailing garbage inside any layer fails
        # here, with a format error, rather than being silently ignored.
        _ = enveloped.native
    with _reading("EnvelopedData version"):
        version = enveloped["version"].native
    # RFC 5652 §6.1: v0 (all recipients v0, e.g. openssl with issuerAndSerialNumber) or v2
    # (KMS, openssl -keyid); v3/v4 need pwri/ori recipients or originator certs we never use.
    if version not in ("v0", "v2"):
        raise CmsFormatError(f"unsupported EnvelopedData version {version!r}")
    ktri = _read_ktri(enveloped)
    with _reading("KeyTransRecipientInfo rid"):
        ktri_version = ktri["version"].native
        rid_choice = ktri["rid"]
        rid_type = rid_choice.name
        rid = (
            bytes(rid_choice.chosen.native)
            if rid_type == "subject_key_identifier"
            else bytes(rid_choice.chosen.dump())
        )
    # RFC 5652 §6.2.1: version 2 with a subjectKeyIdentifier rid, 0 with issuerAndSerialNumber.
    if ktri_version != ("v2" if rid_type == "subject_key_identifier" else "v0"):
        raise CmsFormatError(f"KeyTransRecipientInfo version {ktri_version!r} does not match rid")
    # RFC 5652 §6.1: any recipient other than v0 makes the EnvelopedData v2.
    if ktri_version == "v2" and version != "v2":
        raise CmsFormatError("EnvelopedData version must be v2 with a v2 recipient")
    _read_oaep(ktri)
    with _reading("encryptedKey"):
        encrypted_key = bytes(ktri["encrypted_key"].native)
    with _reading("EncryptedContentInfo"):
        eci = enveloped["encrypted_content_info"]
        eci_type = eci["content_type"].native
        cea = eci["content_encryption_algorithm"]
        cea_name = cea["algorithm"].native
    if eci_type != "data":
        raise CmsFormatError(f"unsupported EncryptedContentInfo contentType {eci_type!r}")
    if cea_name != "aes256_cbc":
        raise CmsFormatError(
            f"unsupported contentEncryptionAlgorithm {cea_name!r}: need AES-256-CBC"
        )
    with _reading("aes-256-cbc parameters"):
        iv = cea["parameters"].native
    if not isinstance(iv, bytes) or len(iv) != _IV_SIZE:
        raise CmsFormatError("malformed aes-256-cbc parameters: the IV must be 16 bytes")
    with _reading("encryptedContent"):
        content_field = eci["encrypted_content"]
        encrypted_content = content_field.native
    if not isinstance(encrypted_content, bytes):
        raise CmsFormatError("missing encryptedContent (detached content is not supported)")
    if not encrypted_content or len(encrypted_content) % (_BLOCK_BITS // 8):
        raise CmsFormatError("malformed encryptedContent: not a multiple of the AES block size")
    return RecipientEnvelope(
        rid_type=rid_type,
        rid=rid,
        key_encryption_algorithm="rsaes_oaep",
        oaep_hash="sha256",
        mgf_hash="sha256",
        content_algorithm="aes256_cbc",
        iv=iv,
        encrypted_key=encrypted_key,
        encrypted_content=encrypted_content,
    )


# ---- bases --------------------------------------------------------------------------------

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OURS = build_ciphertext_for_recipient(bytes(range(40)), KEY.public_key())


def der(data: bytes) -> bytes:
    return bytes(cms.ContentInfo.load(data).dump(force=True))


def rich_second_ktri(tree: Node) -> Node:
    """The second RecipientInfo (a KTRI) of a tree built from :data:`RICH`."""
    enveloped = tree.children[1].children[0]
    return enveloped.children[1].children[1]


def _rich() -> bytes:
    # A DER envelope using the parts only a full parse reads: a second KTRI (v0, rid =
    # IssuerAndSerialNumber whose issuer is an e-mail address, OAEP params without
    # pSourceFunc) and unprotectedAttrs with a typed and an unknown (ANY) attribute.
    tree = parse_tree(der(OURS))
    enveloped = tree.children[1].children[0]
    recipients = enveloped.children[1].children
    second = copy.deepcopy(recipients[0])
    email = tlv(0x30, oid("1.2.840.113549.1.9.1"), tlv(0x16, b"ops@example.com"))
    issuer = tlv(0x30, tlv(0x31, email))
    second.children[0] = tlv(0x02, b"\x00")
    second.children[1] = tlv(0x30, issuer, tlv(0x02, b"\x01"))
    recipients.append(second)
    content_type = tlv(0x30, oid("1.2.840.113549.1.9.3"), tlv(0x31, oid("1.2.840.113549.1.7.1")))
    unknown_value = tlv(0x30, tlv(0x02, b"\x07"), tlv(0x0C, b"x"))
    unknown = tlv(0x30, oid("1.3.6.1.4.1.99999.1"), tlv(0x31, unknown_value))
    enveloped.children.append(tlv(0xA1, content_type, unknown))
    return encode(tree)


RICH = _rich()


@pytest.fixture(scope="module")
def bases(fixtures_dir: Path) -> list[bytes]:
    samples = sorted((fixtures_dir / "kms").glob("*.*er"))
    assert len(samples) == 4
    real = [path.read_bytes() for path in samples]
    return [OURS, der(OURS), RICH, *real, *(der(data) for data in real)]


# ---- the comparison -------------------------------------------------------------------------

Outcome = tuple[Literal["ok"], RecipientEnvelope] | tuple[Literal["error"], str]


def outcome(parse: Callable[[bytes], RecipientEnvelope], data: bytes) -> Outcome:
    """The parse result, or the CmsFormatError message; any other exception fails the test."""
    try:
        return ("ok", parse(data))
    except CmsFormatError as exc:
        return ("error", str(exc))


def _same(data: bytes) -> Outcome:
    old = outcome(reference_parse, data)
    assert outcome(new_parse, data) == old
    return old


def _shallow_outcome(data: bytes) -> Outcome:
    # The parse with only asn1crypto's own recursion (SEQUENCE/SET children, not CHOICE, ANY
    # or explicit contents), to count the cases that need the full walk.
    def shallow(value: Any) -> None:
        value._parse_children(recurse=True)

    with mock.patch.object(cms_module, "force_full_parse", shallow):
        return outcome(new_parse, data)


def _count(data: bytes, result: Outcome) -> None:
    # Hypothesis statistics (--hypothesis-show-statistics): accepted vs refused, by structure.
    if result[0] == "ok":
        event("accepted")
        return
    event("refused: " + re.sub(r"'[^']*'|(?<=version )-?\d+", "_", result[1]))
    if _shallow_outcome(data)[0] == "ok":
        event("refused, and a shallow parse would have accepted it")


_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_bases_are_accepted_alike(bases: list[bytes]) -> None:
    for data in bases:
        assert outcome(reference_parse, data)[0] == "ok"
        _same(data)


@_SETTINGS
@given(st.data())
def test_bit_flips(bases: list[bytes], data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(bases))
    flipped = bytearray(base)
    for _ in range(data.draw(st.integers(1, 3))):
        flipped[data.draw(st.integers(0, len(base) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    _count(bytes(flipped), _same(bytes(flipped)))


@_SETTINGS
@given(st.data())
def test_byte_insertions_and_deletions(bases: list[bytes], data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(bases))
    at = data.draw(st.integers(0, len(base)))
    cut = data.draw(st.integers(0, 4))
    junk = data.draw(st.binary(max_size=6))
    mutated = base[:at] + junk + base[at + cut :]
    _count(mutated, _same(mutated))


# Elements to splice into a tree: well-formed, malformed as a typed value, and raw garbage.
_EXTRAS = [
    tlv(0x05),
    tlv(0x02, b"\x00"),
    tlv(0x04),
    tlv(0x30),
    tlv(0xA0),
    oid("1.2.3.4"),
    tlv(0x0C, b"\xff"),
    tlv(0x17, b"garbage"),
    tlv(0x30, tlv(0x02, b"\x01"), tlv(0x05)),
    Node(b"", None, b"\x05"),  # a header cut short
    Node(b"", None, b"\x30\x80\x05\x00"),  # indefinite length without end-of-contents
]


def _edit(root: Node, within: Node, data: st.DataObject) -> bytes:
    """Apply one structural edit to a node under ``within``; return the re-encoded ``root``."""
    node = data.draw(st.sampled_from(list(walk_nodes(within))))
    kind = data.draw(
        st.sampled_from(["append", "insert", "delete", "duplicate", "indefinite", "tag"])
    )
    event(f"edit: {kind}")
    kids = node.children
    if kind == "tag":
        node.ident = bytes((data.draw(st.integers(0, 0x1E)) | (node.ident[0] & 0xE0),))
    elif kids is None:  # a primitive: new contents
        node.body = data.draw(st.binary(max_size=8))
    elif kind in ("append", "insert"):
        at = len(kids) if kind == "append" else data.draw(st.integers(0, len(kids)))
        kids.insert(at, copy.deepcopy(data.draw(st.sampled_from(_EXTRAS))))
    elif kind == "indefinite":
        node.indefinite = not node.indefinite
    elif kids and kind in ("delete", "duplicate"):
        index = data.draw(st.integers(0, len(kids) - 1))
        if kind == "delete":
            del kids[index]
        else:
            kids.insert(index, copy.deepcopy(kids[index]))
    return encode(root)


@_SETTINGS
@given(st.data())
def test_structure_aware_edits(bases: list[bytes], data: st.DataObject) -> None:
    tree = parse_tree(data.draw(st.sampled_from(bases)))
    mutated = _edit(tree, tree, data)
    if len(mutated) <= MAX_ENVELOPE_SIZE:
        _count(mutated, _same(mutated))


@_SETTINGS
@given(st.data())
def test_structure_aware_edits_where_only_a_full_parse_looks(data: st.DataObject) -> None:
    # Edits confined to the second RecipientInfo or the unprotectedAttrs of the rich envelope:
    # the parts the parse never reads field by field.
    tree = parse_tree(RICH)
    enveloped = tree.children[1].children[0]
    within = data.draw(st.sampled_from([rich_second_ktri(tree), enveloped.children[3]]))
    mutated = _edit(tree, within, data)
    _count(mutated, _same(mutated))
