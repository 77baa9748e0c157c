"""The verified-document cache skips decoding and the signature, never the time or policy checks."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nitro_test_helpers import BLOCKY, raw

from attestation import (
    CertificateExpiredError,
    MeasurementMismatchError,
    SignatureError,
    StaleDocumentError,
    Verifier,
    _cose,
    policy,
)
from attestation._doccache import SignedDocumentCache
from attestation.testing.pki import TestPki

DOCUMENT = raw(BLOCKY)
AT = datetime.fromtimestamp(1725719859545 / 1000, tz=UTC)  # the document's own timestamp
ANY = policy.RejectDebugMode()  # the blocky document is a production one


def _count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = _cose.verify_es384

    def counting(*args: object) -> None:
        calls.append(1)
        real(*args)  # type: ignore[arg-type]

    # The calling thread's check, and the one it makes beside a cold chain's validation.
    monkeypatch.setattr("attestation.verifier.verify_es384", counting)
    monkeypatch.setattr("attestation._beside.verify_es384", counting)
    return calls


def test_a_document_seen_before_skips_the_signature_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _count_signature_checks(monkeypatch)
    verifier = Verifier()
    first = verifier.verify(DOCUMENT, policy=ANY, at=AT)
    second = verifier.verify(DOCUMENT, policy=ANY, at=AT + timedelta(seconds=1))
    assert len(calls) == 1
    assert second.document == first.document and second.pcrs == first.pcrs
    assert second.verified_at == AT + timedelta(seconds=1)


def test_the_chain_window_is_checked_on_every_hit() -> None:
    verifier = Verifier()
    verifier.verify(DOCUMENT, policy=ANY, at=AT)
    with pytest.raises(CertificateExpiredError):
        verifier.verify(DOCUMENT, policy=ANY, at=AT + timedelta(days=30))


def test_the_future_skew_is_checked_on_every_hit() -> None:
    verifier = Verifier(max_future_skew=timedelta(0))
    verifier.verify(DOCUMENT, policy=ANY, at=AT)
    # The leaf is valid from 3 s before the timestamp; 2 s early the document is from the future.
    with pytest.raises(StaleDocumentError):
        verifier.verify(DOCUMENT, policy=ANY, at=AT - timedelta(seconds=2))


def test_the_policy_is_applied_on_every_hit() -> None:
    verifier = Verifier()
    verifier.verify(DOCUMENT, policy=ANY, at=AT)
    with pytest.raises(MeasurementMismatchError):
        verifier.verify(DOCUMENT, policy=policy.PCR(0, "00" * 47 + "01"), at=AT)
    with pytest.raises(StaleDocumentError):
        verifier.verify(
            DOCUMENT, policy=policy.MaxAge(timedelta(minutes=1)), at=AT + timedelta(minutes=5)
        )


def test_a_changed_byte_is_a_miss_and_fails_as_before() -> None:
    verifier = Verifier()
    verifier.verify(DOCUMENT, policy=ANY, at=AT)
    tampered = bytearray(DOCUMENT)
    tampered[-1] ^= 0x01  # the last signature byte
    with pytest.raises(SignatureError):
        verifier.verify(bytes(tampered), policy=ANY, at=AT)


def test_a_change_outside_the_signature_is_a_miss_too() -> None:
    # The cache finds entries by the input's last 96 bytes (the signature); a document that
    # shares them but differs elsewhere must still be decoded and its signature checked.
    verifier = Verifier()
    pcr0 = verifier.verify(DOCUMENT, policy=ANY, at=AT).pcrs[0]
    tampered = bytearray(DOCUMENT)
    tampered[DOCUMENT.index(pcr0)] ^= 0x01  # inside the signed payload
    assert tampered[-96:] == DOCUMENT[-96:]
    with pytest.raises(SignatureError):
        verifier.verify(bytes(tampered), policy=ANY, at=AT)
    assert verifier.verify(DOCUMENT, policy=ANY, at=AT).pcrs[0] == pcr0


def test_failures_are_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    tampered = bytearray(DOCUMENT)
    tampered[-1] ^= 0x01
    verifier = Verifier()
    for _ in range(2):
        with pytest.raises(SignatureError):
            verifier.verify(bytes(tampered), policy=ANY, at=AT)


def test_size_zero_disables_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_signature_checks(monkeypatch)
    verifier = Verifier(document_cache_size=0)
    for _ in range(3):
        verifier.verify(DOCUMENT, policy=ANY, at=AT)
    assert len(calls) == 3


def test_clear_cache_forgets_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_signature_checks(monkeypatch)
    verifier = Verifier()
    verifier.verify(DOCUMENT, policy=ANY, at=AT)
    verifier.clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verifier.verify(DOCUMENT, policy=ANY, at=AT)
    assert len(calls) == 2


def test_one_parsed_public_key_serves_every_document_that_carries_it(
    attestation_document: Callable[..., bytes], nitro_verifier: Verifier
) -> None:
    spki = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    first, second = (attestation_document(public_key=spki, nonce=n) for n in (b"1", b"2"))
    accept = policy.RejectDebugMode()
    a = nitro_verifier.verify(first, policy=accept)
    b = nitro_verifier.verify(second, policy=accept)
    assert a.document != b.document
    assert a.public_key is b.public_key  # parsed once
    nitro_verifier.clear_cache()
    c = nitro_verifier.verify(second, policy=accept)
    assert c.public_key is not b.public_key  # a cold verifier parses again
    assert c.public_key == b.public_key


def test_make_room_evicts_only_the_least_recently_used_entry_of_a_full_cache() -> None:
    cache = SignedDocumentCache(2)
    document = Verifier().verify(DOCUMENT, policy=ANY, at=AT).document
    first, second = DOCUMENT[:-1] + b"\x01", DOCUMENT[:-1] + b"\x02"
    cache.put(first, document, None)
    cache.make_room()  # not full: nothing goes
    cache.put(second, document, None)
    assert cache.get(first) is not None  # now the most recently used
    cache.make_room()
    assert cache.get(second) is None and cache.get(first) is not None
    cache.put(second, document, None)  # the room made is enough: first stays
    assert cache.get(first) is not None and cache.get(second) is not None


def test_verifying_beside_the_signature_keeps_the_cache_an_lru_of_its_size(
    monkeypatch: pytest.MonkeyPatch,
    attestation_document: Callable[..., bytes],
    nitro_pki: TestPki,
) -> None:
    verifier = Verifier(trusted_roots=[nitro_pki.root], document_cache_size=2)
    documents = [attestation_document(nonce=bytes([n])) for n in range(3)]
    for document in documents:  # each one decoded on the helper, beside its signature check
        verifier.verify_then(document, lambda verified: verified.module_id, policy=ANY)
    calls = _count_signature_checks(monkeypatch)
    for document in documents[1:]:
        verifier.verify(document, policy=ANY)
    assert calls == []  # the last two are cached
    verifier.verify(documents[0], policy=ANY)
    assert calls == [1]  # the first was evicted, and only it
