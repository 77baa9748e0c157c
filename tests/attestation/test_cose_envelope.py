"""COSE_Sign1 envelope rules (nitro-attestation.md §1, §8.6-8.7), on correctly signed documents.

Each document here is signed by a throwaway test chain over exactly the bytes it carries, so the
only reason to reject it is the rule under test.
"""

from __future__ import annotations

import warnings
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from nitro_test_helpers import BLOCKY, T0, index, mini_pki, raw, sign
from pycose.keys.curves import P384
from pycose.keys.ec2 import EC2Key
from pycose.messages import Sign1Message  # type: ignore[attr-defined]

from attestation import (
    AttestationError,
    MalformedDocumentError,
    SignatureError,
    UnsupportedAlgorithmError,
    Verifier,
    policy,
)
from attestation._cose import (
    Sign1,
    _as_the_nsm_encodes,
    _decode_sign1_strict,
    decode_sign1,
    sig_structure,
)


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(trusted_roots=[mini_pki().root])


def _verify(v: Verifier, data: bytes) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
        return v.verify(data, policy=policy.UnsafeNoOp(), at=T0)


def test_minted_document_verifies(verifier: Verifier) -> None:
    assert _verify(verifier, mini_pki().document()).module_id.startswith("i-0a22")
    assert _verify(verifier, mini_pki().document(tag=True)).document.timestamp_ms > 0


@pytest.mark.parametrize(
    ("protected", "error"),
    [
        (cbor2.dumps({1: -7}), UnsupportedAlgorithmError),  # ES256
        (cbor2.dumps({1: -36}), UnsupportedAlgorithmError),  # ES512
        (cbor2.dumps({1: "ES384"}), UnsupportedAlgorithmError),
        (cbor2.dumps({1: -35, 4: b"kid"}), MalformedDocumentError),
        (cbor2.dumps({4: b"kid"}), MalformedDocumentError),
        (b"", MalformedDocumentError),  # RFC 9052 allows h'' for "no headers": no alg then
        (cbor2.dumps([1, -35]), MalformedDocumentError),
        (cbor2.dumps({"1": -35}), MalformedDocumentError),
        (b"\xa1\x01\x38\x22\x00", MalformedDocumentError),  # trailing byte inside
    ],
)
def test_protected_header_must_be_exactly_es384(
    verifier: Verifier, protected: bytes, error: type[AttestationError]
) -> None:
    with pytest.raises(error) as info:
        _verify(verifier, mini_pki().document(protected=protected))
    assert type(info.value) is error


def test_non_minimal_protected_header_is_accepted_when_it_is_what_was_signed(
    verifier: Verifier,
) -> None:
    # The header is checked by meaning, and the signature over the bytes as received: a document
    # *signed* over a1 18 01 38 22 verifies (the fixture that fails was signed over a1 01 38 22).
    _verify(verifier, mini_pki().document(protected=b"\xa1\x18\x01\x38\x22"))


@pytest.mark.parametrize(
    ("unprotected", "error"),
    [
        ({1: -35}, UnsupportedAlgorithmError),
        ({4: b"kid"}, MalformedDocumentError),
        ([], MalformedDocumentError),
    ],
)
def test_unprotected_header(verifier: Verifier, unprotected: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        _verify(verifier, mini_pki().document(unprotected=unprotected))
    assert type(info.value) is error


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: [*a, b""],  # five elements
        lambda a: a[:3],
        lambda a: [a[0], a[1], None, a[3]],  # detached payload
        lambda a: [a[0], a[1], a[2], a[3][:64]],  # 64-byte signature (the AWS doc's "48/64")
        lambda a: [a[0], a[1], a[2], a[3] + b"\x00"],
        lambda a: [cbor2.loads(a[0]), a[1], a[2], a[3]],  # protected as a map, not a bstr
        lambda a: {"sign1": a},
    ],
)
def test_envelope_shape(verifier: Verifier, mutate: Any) -> None:
    arr = cbor2.loads(mini_pki().document())
    with pytest.raises(MalformedDocumentError):
        _verify(verifier, cbor2.dumps(mutate(arr)))


def test_wrong_tag_is_rejected(verifier: Verifier) -> None:
    arr = cbor2.loads(mini_pki().document())
    with pytest.raises(MalformedDocumentError):
        _verify(verifier, cbor2.dumps(cbor2.CBORTag(17, arr)))  # COSE_Mac0


def test_signature_from_another_key_fails(verifier: Verifier) -> None:
    stranger = ec.generate_private_key(ec.SECP384R1())
    pki = mini_pki()
    good = cbor2.loads(pki.document())
    forged = sign(stranger, good[2])
    with pytest.raises(SignatureError):
        _verify(verifier, forged)
    zero = cbor2.dumps([good[0], good[1], good[2], bytes(96)])
    with pytest.raises(SignatureError):
        _verify(verifier, zero)


def test_duplicate_key_in_signed_payload_is_malformed(verifier: Verifier) -> None:
    # Correctly signed, but the payload map repeats "nonce": cbor2 would keep the last one.
    pki = mini_pki()
    fields = cbor2.loads(cbor2.loads(pki.document())[2])
    entries = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in fields.items())
    dup = b"\xaa" + entries + cbor2.dumps("nonce") + cbor2.dumps(b"other")  # map(10)
    with pytest.raises(MalformedDocumentError, match="duplicate"):
        _verify(verifier, sign(pki.leaf_key, dup))


def test_sig_structure_matches_cbor2_encoding() -> None:
    arr = cbor2.loads(raw(BLOCKY))
    assert sig_structure(arr[0], arr[2]) == cbor2.dumps(["Signature1", arr[0], b"", arr[2]])
    message = decode_sign1(raw(BLOCKY))
    assert message.protected == b"\xa1\x01\x38\x22" and not message.tagged


def test_pycose_agrees_on_a_genuine_document() -> None:
    # Independent implementation: pycose verifies the same bytes with the leaf key.
    from cryptography import x509

    data = raw(BLOCKY)
    arr = cbor2.loads(data)
    leaf = x509.load_der_x509_certificate(cbor2.loads(arr[2])["certificate"])
    leaf_key = leaf.public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    numbers = leaf_key.public_numbers()
    msg = Sign1Message.from_cose_obj(list(arr), True)
    msg.key = EC2Key(crv=P384, x=numbers.x.to_bytes(48, "big"), y=numbers.y.to_bytes(48, "big"))
    assert msg.verify_signature()
    bad = list(arr)
    bad[0] = b"\xa1\x18\x01\x38\x22"
    msg = Sign1Message.from_cose_obj(bad, True)
    msg.key = EC2Key(crv=P384, x=numbers.x.to_bytes(48, "big"), y=numbers.y.to_bytes(48, "big"))
    assert not msg.verify_signature()


def _strictly(data: bytes) -> Sign1 | type[Exception]:
    try:
        return _decode_sign1_strict(data)
    except AttestationError as exc:
        return type(exc)


@pytest.mark.parametrize("entry", index(), ids=lambda e: e["file"])
def test_every_sample_decodes_as_the_strict_decoder_decodes_it(entry: dict[str, Any]) -> None:
    data = raw(entry["file"])
    known = _as_the_nsm_encodes(data)
    assert known is None or known == _strictly(data)
    try:
        assert decode_sign1(data) == _strictly(data)
    except AttestationError as exc:
        assert type(exc) is _strictly(data)


def test_genuine_and_minted_documents_are_laid_out_as_the_nsm_writes_them() -> None:
    genuine = [raw(e["file"]) for e in index() if not e["file"].startswith(("invalid", "valid"))]
    assert len(genuine) == 10
    for data in [*genuine, mini_pki().document()]:
        assert _as_the_nsm_encodes(data) == _decode_sign1_strict(data)
    assert _as_the_nsm_encodes(mini_pki().document(tag=True)) is None  # tag 18: strict path


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d + b"\x00",  # a trailing byte
        lambda d: d[:-1],  # a short signature
        lambda d: d[:8] + (int.from_bytes(d[8:10], "big") + 1).to_bytes(2, "big") + d[10:],
        lambda d: d[:8] + (int.from_bytes(d[8:10], "big") - 1).to_bytes(2, "big") + d[10:],
        lambda d: d[:-98] + b"\x58\x5f" + d[-96:],  # the signature's head says 95
        lambda d: d[:-98] + b"\x78\x60" + d[-96:],  # a text signature
        lambda d: b"\x85" + d[1:],  # an array of 5
        lambda d: d[:6] + b"\xa1" + d[7:],  # a non-empty unprotected map
    ],
)
def test_a_layout_that_differs_anywhere_goes_to_the_strict_decoder(change: Any) -> None:
    data = change(raw(BLOCKY))
    assert _as_the_nsm_encodes(data) is None
    with pytest.raises(MalformedDocumentError):
        decode_sign1(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_layout_check_never_disagrees_with_the_strict_decoder(data: st.DataObject) -> None:
    document = bytearray(raw(BLOCKY))
    # Where the layout is decided: the heads, the payload length, the signature head, the end.
    spots = [*range(12), *range(len(document) - 100, len(document))]
    for at in data.draw(st.lists(st.sampled_from(spots), min_size=1, max_size=3)):
        document[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, 3))
    changed = bytes(document[: len(document) - cut])
    known = _as_the_nsm_encodes(changed)
    assert known is None or known == _strictly(changed)
