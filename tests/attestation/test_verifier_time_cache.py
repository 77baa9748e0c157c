"""The time model (at=now/document/explicit, skew, max age) and the chain cache."""

from __future__ import annotations

import threading
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from nitro_test_helpers import BLOCKY, T0, genuine_payload, mini_pki, raw

from attestation import (
    CertificateExpiredError,
    StaleDocumentError,
    Verifier,
    policy,
)
from attestation._chain import ChainValidator

GENUINE = raw(BLOCKY)
LEAF = x509.load_der_x509_certificate(genuine_payload()["certificate"])


def _verify(v: Verifier, data: bytes, **kw: Any) -> Any:
    pol = kw.pop("policy", policy.UnsafeNoOp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
        return v.verify(data, policy=pol, **kw)


def test_leaf_not_after_boundary() -> None:
    v = Verifier()
    assert _verify(v, GENUINE, at=LEAF.not_valid_after_utc).verified_at == LEAF.not_valid_after_utc
    with pytest.raises(CertificateExpiredError):
        _verify(v, GENUINE, at=LEAF.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(CertificateExpiredError):
        _verify(Verifier(), GENUINE, at=LEAF.not_valid_before_utc - timedelta(seconds=1))


def test_now_uses_the_injected_clock() -> None:
    inside = T0 + timedelta(minutes=10)
    assert _verify(Verifier(clock=lambda: inside), GENUINE).verified_at == inside
    with pytest.raises(CertificateExpiredError):
        _verify(Verifier(clock=lambda: LEAF.not_valid_after_utc + timedelta(seconds=1)), GENUINE)


def test_bad_time_arguments() -> None:
    v = Verifier()
    with pytest.raises(ValueError, match="aware"):
        _verify(v, GENUINE, at=datetime(2024, 9, 7, 14, 40))
    with pytest.raises(ValueError):
        _verify(v, GENUINE, at="yesterday")
    with pytest.raises(ValueError, match="aware"):
        _verify(Verifier(clock=lambda: datetime(2024, 9, 7)), GENUINE)


def test_non_utc_explicit_time_is_normalised() -> None:
    from datetime import timezone

    plus2 = (T0 + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=2)))
    result = _verify(Verifier(), GENUINE, at=plus2)
    assert result.verified_at == plus2 and result.verified_at.tzinfo == UTC


def test_future_document_beyond_skew_is_stale() -> None:
    pki = mini_pki()
    v = Verifier(trusted_roots=[pki.root])
    ahead = pki.document(timestamp=T0 + timedelta(seconds=61))
    with pytest.raises(StaleDocumentError, match="after the verification time"):
        _verify(v, ahead, at=T0)
    _verify(v, pki.document(timestamp=T0 + timedelta(seconds=59)), at=T0)
    lenient = Verifier(trusted_roots=[pki.root], max_future_skew=timedelta(minutes=5))
    _verify(lenient, ahead, at=T0)
    with pytest.raises(ValueError):
        Verifier(max_future_skew=timedelta(seconds=-1))


def test_max_age() -> None:
    pki = mini_pki()
    v = Verifier(trusted_roots=[pki.root])
    doc = pki.document(timestamp=T0)
    later = T0 + timedelta(minutes=5)
    with pytest.raises(StaleDocumentError, match="old"):
        _verify(v, doc, at=later, policy=policy.MaxAge(timedelta(minutes=4)))
    _verify(v, doc, at=later, policy=policy.MaxAge(timedelta(minutes=6)))
    # Audit mode: age is zero by construction.
    _verify(v, doc, at="document", policy=policy.MaxAge(timedelta(seconds=1)))


def test_seconds_valued_timestamp_reads_as_1970_and_fails() -> None:
    pki = mini_pki()
    v = Verifier(trusted_roots=[pki.root])
    seconds = pki.document(timestamp=int(T0.timestamp()))  # seconds where ms belong
    with pytest.raises(CertificateExpiredError):
        _verify(v, seconds, at="document")  # 1970: before every notBefore
    with pytest.raises(StaleDocumentError):
        _verify(v, seconds, at=T0, policy=policy.MaxAge(timedelta(days=1)))


# ---- cache -------------------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    calls: list[datetime] = []
    original = ChainValidator._validate

    def spy(self: ChainValidator, leaf: bytes, bundle: Any, at: datetime) -> Any:
        calls.append(at)
        return original(self, leaf, bundle, at)

    monkeypatch.setattr(ChainValidator, "_validate", spy)
    return calls


def test_cache_hit_inside_window(counted: list[datetime]) -> None:
    v = Verifier()
    _verify(v, GENUINE, at=T0)
    _verify(v, GENUINE, at=T0 + timedelta(minutes=30))
    _verify(v, raw("valid-variant-tag18-wrapped.cose"), at=T0)  # same certificates
    assert len(counted) == 1


def test_cache_not_reused_outside_window(counted: list[datetime]) -> None:
    v = Verifier()
    _verify(v, GENUINE, at=T0)
    with pytest.raises(CertificateExpiredError):
        _verify(v, GENUINE, at=LEAF.not_valid_after_utc + timedelta(seconds=1))
    assert len(counted) == 2
    _verify(v, GENUINE, at=T0)  # the expired attempt did not poison the entry
    assert len(counted) == 2


def test_different_cabundle_is_not_a_hit(counted: list[datetime]) -> None:
    pki = mini_pki()
    validator = ChainValidator([pki.root])
    leaf = pki.leaf.public_bytes(Encoding.DER)
    validator.validate(leaf, pki.cabundle, T0)
    validator.validate(leaf, pki.cabundle[::-1], T0)  # same certificates, another bundle
    validator.validate(leaf, [*pki.cabundle, pki.cabundle[0]], T0)
    validator.validate(leaf, pki.cabundle, T0)  # hit
    assert len(counted) == 3


def test_cache_is_per_verifier_and_clearable(counted: list[datetime]) -> None:
    a, b = Verifier(), Verifier()
    _verify(a, GENUINE, at=T0)
    _verify(b, GENUINE, at=T0)
    assert len(counted) == 2
    a.clear_cache()
    _verify(a, GENUINE, at=T0)
    assert len(counted) == 3
    none = Verifier(cache_size=0)
    _verify(none, GENUINE, at=T0)
    _verify(none, GENUINE, at=T0)
    assert len(counted) == 5


def test_cache_is_bounded(counted: list[datetime]) -> None:
    validator = ChainValidator([mini_pki().root], cache_size=1)
    pki = mini_pki()
    leaf, bundle = pki.leaf.public_bytes(Encoding.DER), pki.cabundle
    validator.validate(leaf, bundle, T0)
    validator.validate(leaf, bundle[::-1], T0)  # evicts the first
    validator.validate(leaf, bundle, T0)
    assert len(counted) == 3


def test_concurrent_verification() -> None:
    v = Verifier()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                # (not UnsafeNoOp: warnings.catch_warnings is not thread-safe)
                v.verify(GENUINE, policy=policy.RejectDebugMode(), at=T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_timestamp_outside_the_leaf_validity_is_stale() -> None:
    # A seconds-valued timestamp reads as 1970: the chain is valid now, the document time is not.
    from attestation.testing.mint import Variant, mint_document
    from attestation.testing.pki import TestPki

    now = datetime.now(UTC)
    pki = TestPki.create(3, valid_from=now - timedelta(hours=1))
    document = mint_document(pki, timestamp=now, variant=Variant.TIMESTAMP_SECONDS)
    with pytest.raises(StaleDocumentError, match="outside its signing certificate"):
        Verifier([pki.root]).verify(document, policy=policy.RejectDebugMode(), at=now)
