"""Property tests: mutated genuine documents only ever fail with our errors.

Every outcome must be an AttestationError subclass (never another exception, never a hang), or
(only when the signed bytes are untouched, e.g. adding or removing tag 18) a verified document
whose signed content equals the original.
"""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nitro_test_helpers import BLOCKY, doc_time, raw

from attestation import AttestationError, Verifier, policy
from attestation._cose import decode_sign1

ORIGINAL = raw(BLOCKY)
AT = doc_time(ORIGINAL)
SIGNED = decode_sign1(ORIGINAL)
VERIFIER = Verifier()
# RejectDebugMode accepts this prod document and, unlike UnsafeNoOp, does not warn.
POLICY = policy.RejectDebugMode()
ORIGINAL_DOC = VERIFIER.verify(ORIGINAL, policy=POLICY, at=AT).document
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(data: bytes) -> None:
    try:
        result = VERIFIER.verify(data, policy=POLICY, at=AT)
    except AttestationError:
        return
    # Accepted: then what was signed must be exactly what was signed originally.
    message = decode_sign1(data)
    assert (message.protected, message.payload) == (SIGNED.protected, SIGNED.payload)
    assert result.document == ORIGINAL_DOC


@SETTINGS
@given(st.data())
def test_bit_flips(data: Any) -> None:
    buf = bytearray(ORIGINAL)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] ^= 1 << data.draw(st.integers(0, 7))
    check(bytes(buf))


@SETTINGS
@given(st.integers(0, len(ORIGINAL) - 1))
def test_truncation(n: int) -> None:
    check(ORIGINAL[:n])


@SETTINGS
@given(st.integers(0, len(ORIGINAL)), st.binary(min_size=1, max_size=16), st.integers(0, 16))
def test_splicing(at: int, insert: bytes, delete: int) -> None:
    check(ORIGINAL[:at] + insert + ORIGINAL[at + delete :])


_PARTS = st.sampled_from(["protected", "unprotected", "payload", "signature", "tag"])


@SETTINGS
@given(_PARTS, st.data())
def test_reencoding_parts(part: str, data: Any) -> None:
    arr = list(cbor2.loads(ORIGINAL))
    payload = dict(cbor2.loads(arr[2]))
    if part == "tag":  # outside the signed bytes: must still verify
        check(cbor2.dumps(cbor2.CBORTag(18, arr)))
        return
    if part == "protected":
        arr[0] = data.draw(
            st.sampled_from(
                [b"\xa1\x18\x01\x38\x22", b"\xa1\x01\x39\x00\x22", cbor2.dumps({1: -35, 2: 0})]
            )
        )
    elif part == "unprotected":
        arr[1] = data.draw(st.sampled_from([{1: -35}, {4: b"k"}, None, [], b""]))
    elif part == "payload":
        key = data.draw(st.sampled_from(sorted(payload)))
        payload[key] = data.draw(
            st.none()
            | st.integers(-(2**64), 2**64 - 1)
            | st.binary(max_size=64)
            | st.text(max_size=8)
        )
        arr[2] = cbor2.dumps(payload)
    else:
        arr[3] = data.draw(st.binary(min_size=0, max_size=100))
    check(cbor2.dumps(arr))


def test_genuine_reencoded_by_cbor2_is_byte_identical_or_rejected() -> None:
    # cbor2's canonical re-encoding of the decoded envelope reproduces the original bytes, so
    # "re-encoding" alone does not alter what is signed; the property tests rely on that.
    arr = cbor2.loads(ORIGINAL)
    assert cbor2.dumps(arr) == ORIGINAL
    check(cbor2.dumps(arr))
