"""``Verifier.verify_then``: the outcome of ``verify`` then ``then``, whichever thread works."""

from __future__ import annotations

import contextvars
import threading
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from nitro_test_helpers import T0, genuine_payload, index, mini_pki, sample_and_time, sign

from attestation import AttestationError, SignatureError, VerifiedAttestation, Verifier, policy
from attestation._beside import certificate_hint
from attestation.errors import PolicyError

ENTRIES = index()
NOOP = policy.UnsafeNoOp()
MAIN = threading.current_thread().name


def _quiet(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
        return fn()


def _sequential(data: bytes, at: datetime, then: Callable[[VerifiedAttestation], Any]) -> object:
    try:
        verified = _quiet(lambda: Verifier(parallel=False).verify(data, policy=NOOP, at=at))
    except AttestationError as exc:
        return (type(exc), str(exc))
    try:
        value = then(verified)
    except Exception as exc:
        return (type(exc), str(exc))
    return (verified.document, verified.chain, value)


def _then(
    v: Verifier, data: bytes, at: datetime, then: Callable[[VerifiedAttestation], Any]
) -> object:
    try:
        verified, value = _quiet(lambda: v.verify_then(data, then, policy=NOOP, at=at))
    except Exception as exc:
        return (type(exc), str(exc))
    return (verified.document, verified.chain, value)


def _module(verified: VerifiedAttestation) -> str:
    return f"follow-up for {verified.module_id}"


def _fails(verified: VerifiedAttestation) -> str:
    raise RuntimeError(f"follow-up failed for {verified.module_id}")


@pytest.mark.parametrize("then", [_module, _fails], ids=["returns", "raises"])
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_every_fixture_has_the_outcome_of_verify_then_then(
    entry: dict[str, Any], then: Callable[[VerifiedAttestation], str]
) -> None:
    data, at = sample_and_time(entry["file"])
    expected = _sequential(data, at, then)
    for parallel in (True, False):
        assert _then(Verifier(parallel=parallel), data, at, then) == expected


def _threads_of_then(v: Verifier, data: bytes) -> list[str]:
    names: list[str] = []

    def then(_: VerifiedAttestation) -> None:
        names.append(threading.current_thread().name)

    _quiet(lambda: v.verify_then(data, then, policy=NOOP, at=T0))
    return names


@pytest.mark.usefixtures("patient_caller")
def test_the_follow_up_runs_beside_the_signature_check_for_a_new_document() -> None:
    pki = mini_pki()
    v = Verifier([pki.root], document_cache_size=0)
    first, second = pki.document(), pki.document(timestamp=T0 - timedelta(seconds=1))
    assert _threads_of_then(v, first)[0] != MAIN  # cold chain
    assert _threads_of_then(v, second)[0] != MAIN  # warm chain, new document
    assert _threads_of_then(Verifier([pki.root], parallel=False), first) == [MAIN]


def test_a_document_seen_before_runs_the_follow_up_on_the_calling_thread() -> None:
    pki = mini_pki()
    v = Verifier([pki.root])
    data = pki.document()
    _threads_of_then(v, data)
    assert _threads_of_then(v, data) == [MAIN]


@pytest.mark.parametrize("then", [_module, _fails], ids=["returns", "raises"])
def test_a_forged_signature_wins_over_what_the_follow_up_made(
    then: Callable[[VerifiedAttestation], str],
) -> None:
    pki = mini_pki()
    forged = bytearray(pki.document())
    forged[-1] ^= 1  # the signature's last byte
    calls: list[str] = []

    def spy(verified: VerifiedAttestation) -> str:
        calls.append(threading.current_thread().name)
        return then(verified)

    with pytest.raises(SignatureError):
        _quiet(lambda: Verifier([pki.root]).verify_then(bytes(forged), spy, policy=NOOP, at=T0))
    # It did run, speculatively, on the helper: what it made was dropped.
    assert calls and calls[0] != MAIN


def test_the_policy_wins_over_the_follow_up() -> None:
    pki = mini_pki()
    wrong_nonce = policy.Nonce(b"expected")
    for then in (_module, _fails):
        with pytest.raises(PolicyError):
            Verifier([pki.root]).verify_then(pki.document(), then, policy=wrong_nonce, at=T0)


def test_the_follow_up_sees_the_callers_context_variables() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    request_id.set("r-42")
    pki = mini_pki()
    seen: list[tuple[str, str]] = []

    def then(_: VerifiedAttestation) -> None:
        seen.append((threading.current_thread().name, request_id.get()))

    _quiet(lambda: Verifier([pki.root]).verify_then(pki.document(), then, policy=NOOP, at=T0))
    assert seen[0][0] != MAIN and seen[0][1] == "r-42"


def _decoy_payload(decoy_leaf_der: bytes) -> dict[str, Any]:
    """A payload whose user_data, placed first, carries a "certificate" key and a leaf."""
    head = b"\x6bcertificate\x59" + len(decoy_leaf_der).to_bytes(2, "big")
    rest = {k: v for k, v in genuine_payload().items() if k != "user_data"}
    return {"user_data": head + decoy_leaf_der, **rest}


def test_a_decoy_certificate_never_lends_its_key_to_the_signature() -> None:
    pki = mini_pki()
    decoy = mini_pki(start=T0 - timedelta(hours=2))  # another PKI: another leaf key
    decoy_der = decoy.leaf.public_bytes(Encoding.DER)
    payload = _decoy_payload(decoy_der)
    assert certificate_hint(cbor2.dumps(payload)) == decoy_der
    v = Verifier([pki.root])
    # Signed by the real leaf: verifies, although the first "certificate" found is the decoy.
    genuine = pki.document(payload)
    verified, value = _quiet(lambda: v.verify_then(genuine, _module, policy=NOOP, at=T0))
    assert verified.document.certificate == pki.leaf.public_bytes(Encoding.DER)
    assert value == _module(verified)
    # Signed by the decoy's key, naming the real leaf: the decoy key would accept the
    # signature, the validated leaf key does not.
    fields = dict(payload)
    fields["certificate"] = pki.leaf.public_bytes(Encoding.DER)
    fields["cabundle"] = pki.cabundle
    forged = sign(decoy.leaf_key, cbor2.dumps(fields))
    with pytest.raises(SignatureError):
        _quiet(lambda: v.verify_then(forged, _module, policy=NOOP, at=T0))
    sequential = Verifier([pki.root], parallel=False)
    with pytest.raises(SignatureError):
        _quiet(lambda: sequential.verify_then(forged, _module, policy=NOOP, at=T0))


def test_a_leaf_with_an_unknown_key_algorithm_gets_the_sequential_error() -> None:
    pki = mini_pki()
    der = pki.leaf.public_bytes(Encoding.DER)
    ec_public_key = bytes.fromhex("06072a8648ce3d0201")  # OID 1.2.840.10045.2.1
    unknown = der.replace(ec_public_key, bytes.fromhex("06072a8648ce3d0209"))
    assert unknown != der
    fields = genuine_payload()
    fields["certificate"] = unknown
    fields["cabundle"] = pki.cabundle
    data = sign(pki.leaf_key, cbor2.dumps(fields))
    expected = _then(Verifier([pki.root], parallel=False), data, T0, _module)
    assert isinstance(expected, tuple) and issubclass(expected[0], AttestationError)
    assert _then(Verifier([pki.root]), data, T0, _module) == expected
