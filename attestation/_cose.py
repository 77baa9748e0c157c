"""COSE_Sign1 (RFC 9052) as AWS Nitro hardware emits it: decode, pin ES384, verify.

nitro-attestation.md §1: an untagged (or tag-18) array of 4: protected ``bstr`` that decodes to
exactly ``{1: -35}``, an empty unprotected map, the payload ``bstr`` and a 96-byte ``r || s``
signature. The signature covers the protected bytes *as received*; they are never re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ._cbor import Tag, encode_head, loads_strict
from .errors import MalformedDocumentError, SignatureError, UnsupportedAlgorithmError

__all__ = ["COSE_SIGN1_TAG", "ES384", "Sign1", "decode_sign1", "sig_structure", "verify_es384"]

COSE_SIGN1_TAG: Final = 18
ES384: Final = -35  # RFC 9053 §2.1: ECDSA w/ SHA-384
_HEADER_ALG: Final = 1
_SIG_LEN: Final = 96  # P-384 r || s, 48 bytes each (the AWS doc's 32/48/64 is wrong, §1)
_CONTEXT: Final = b"\x6aSignature1"  # tstr "Signature1", RFC 9052 §4.4
_ECDSA_SHA384: Final = ec.ECDSA(hashes.SHA384())
_SIGN1_TAGS: Final = frozenset({COSE_SIGN1_TAG})
#: ``{1: -35}`` with preferred (minimal) heads: what the NSM writes, byte for byte, into every
#: document. Recognising these exact bytes skips a decode whose result is known (the tests
#: check that they decode to ``{1: -35}``); any other encoding takes the strict decoder.
_PROTECTED_ES384: Final = b"\xa1\x01\x38\x22"
#: How every COSE_Sign1 from the NSM begins: an array of 4, the protected bstr above, an empty
#: unprotected map, and the head of the payload bstr with a 2-byte length. The genuine samples
#: all do; their payloads are 4-8 KB.
_NSM_HEAD: Final = b"\x84\x44" + _PROTECTED_ES384 + b"\xa0\x59"
_NSM_SIGNATURE_HEAD: Final = b"\x58\x60"  # bstr of 96 bytes


@dataclass(frozen=True, slots=True)
class Sign1:
    """A structurally valid COSE_Sign1 message.

    Attributes:
        protected: the protected header bstr exactly as received (it is what was signed).
        payload: the payload bstr (the attestation document's CBOR map).
        signature: the raw 96-byte ``r || s`` signature.
        tagged: whether the input carried CBOR tag 18 (outside the signed bytes).
    """

    protected: bytes
    payload: bytes
    signature: bytes
    tagged: bool


def decode_sign1(data: bytes) -> Sign1:
    """Decode and check the COSE_Sign1 envelope (spec §5 step 1).

    Raises:
        MalformedDocumentError: not a strict 4-element COSE_Sign1 of the Nitro shape.
        UnsupportedAlgorithmError: the algorithm is not ES384, or ``alg`` is unprotected.
    """
    known = _as_the_nsm_encodes(data)
    if known is not None:
        return known
    return _decode_sign1_strict(data)


def _as_the_nsm_encodes(data: bytes) -> Sign1 | None:
    """``data`` as a Sign1 if it is laid out byte for byte as the NSM writes it, else None.

    These bytes leave the strict decoder no choice: the head, the payload's length, the
    signature's head and the total length fix every item, and its result would be this Sign1
    (the tests compare the two). It costs a few slices instead of a decode, on the path of
    every verification. Anything else, a tagged message included, returns None.
    """
    if not data.startswith(_NSM_HEAD):
        return None
    start = len(_NSM_HEAD) + 2
    end = start + int.from_bytes(data[len(_NSM_HEAD) : start], "big")
    if len(data) != end + len(_NSM_SIGNATURE_HEAD) + _SIG_LEN:
        return None
    if not data.startswith(_NSM_SIGNATURE_HEAD, end):
        return None
    return Sign1(
        protected=_PROTECTED_ES384,
        payload=data[start:end],
        signature=data[end + len(_NSM_SIGNATURE_HEAD) :],
        tagged=False,
    )


def _decode_sign1_strict(data: bytes) -> Sign1:
    item = loads_strict(data, field="cose", allowed_tags=_SIGN1_TAGS)
    tagged = isinstance(item, Tag)
    if isinstance(item, Tag):
        item = item.value
    if not isinstance(item, tuple):
        raise MalformedDocumentError("COSE_Sign1 must be a CBOR array", field="cose")
    if len(item) != 4:
        raise MalformedDocumentError(
            f"COSE_Sign1 must have 4 elements, not {len(item)}", field="cose"
        )
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise MalformedDocumentError("must be a byte string", field="cose.protected")
    _check_protected(protected)
    if not isinstance(unprotected, dict):
        # The blocky self-signed fixture carries null here; RFC 9052 requires a map.
        raise MalformedDocumentError("must be a map", field="cose.unprotected")
    if _HEADER_ALG in unprotected:
        # RFC 9052 §3.1 and nitro-attestation.md §8.7: alg must be integrity protected.
        raise UnsupportedAlgorithmError(
            "alg must not appear in the unprotected header", field="cose.unprotected"
        )
    if unprotected:
        # Empty on all hardware documents; anything here would be unsigned data riding along.
        raise MalformedDocumentError("must be empty", field="cose.unprotected")
    if not isinstance(payload, bytes):
        raise MalformedDocumentError("must be a byte string", field="cose.payload")
    if not isinstance(signature, bytes):
        raise MalformedDocumentError("must be a byte string", field="cose.signature")
    if len(signature) != _SIG_LEN:
        raise MalformedDocumentError(
            f"ES384 signature must be {_SIG_LEN} bytes, not {len(signature)}",
            field="cose.signature",
        )
    return Sign1(protected=protected, payload=payload, signature=signature, tagged=tagged)


def _check_protected(protected: bytes) -> None:
    if protected == _PROTECTED_ES384:
        return
    header = loads_strict(protected, field="cose.protected")
    if not isinstance(header, dict):
        raise MalformedDocumentError("must encode a map", field="cose.protected")
    if _HEADER_ALG not in header:
        raise MalformedDocumentError("lacks alg (label 1)", field="cose.protected")
    alg = header[_HEADER_ALG]
    # type() rather than isinstance(): True must not pass for an integer label value.
    if type(alg) is not int or alg != ES384:
        raise UnsupportedAlgorithmError(
            f"alg {alg!r} is not ES384 (-35), the only algorithm Nitro uses",
            field="cose.protected",
        )
    if len(header) != 1:
        raise MalformedDocumentError("must be exactly {1: -35}", field="cose.protected")


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """Build the ``Signature1`` Sig_structure (RFC 9052 §4.4) over the received bytes.

    The encoding is ``["Signature1", protected, h'', payload]`` with preferred (minimal) heads,
    which is what the NSM signs.
    """
    return b"".join(
        (
            b"\x84",
            _CONTEXT,
            encode_head(2, len(protected)),
            protected,
            b"\x40",  # external_aad: empty bstr
            encode_head(2, len(payload)),
            payload,
        )
    )


def verify_es384(message: Sign1, key: ec.EllipticCurvePublicKey) -> None:
    """Verify the COSE signature with the leaf key (spec §5 step 7).

    Raises:
        SignatureError: the signature does not verify.
    """
    r = int.from_bytes(message.signature[:48], "big")
    s = int.from_bytes(message.signature[48:], "big")
    if r == 0 or s == 0:
        raise SignatureError("COSE signature has a zero r or s component")
    try:
        key.verify(
            encode_dss_signature(r, s),
            sig_structure(message.protected, message.payload),
            _ECDSA_SHA384,
        )
    except InvalidSignature:
        raise SignatureError("COSE_Sign1 signature does not verify under the leaf key") from None
