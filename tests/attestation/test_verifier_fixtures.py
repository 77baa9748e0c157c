"""The verifier against the committed genuine AWS documents and their invalid variants."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from nitro_test_helpers import doc_time, index, mini_pki, sidecar

from attestation import (
    AttestationError,
    CertificateChainError,
    CertificateExpiredError,
    MalformedDocumentError,
    SignatureError,
    Verifier,
    aws_nitro_root,
    parse_document,
    policy,
)
from attestation._chain import ChainValidator
from attestation.roots import AWS_NITRO_ROOT_G1_SHA256, fingerprint_sha256

ENTRIES = index()
VALID = [e for e in ENTRIES if e["kind"] == "genuine" or e["kind"].startswith("valid")]
GENUINE = [e for e in ENTRIES if e["kind"] == "genuine"]
INVALID = [e for e in ENTRIES if e["kind"].startswith("invalid")]

# The stage fixtures/nitro/README.md names for each invalid sample. The self-signed one fails
# schema before chain ("schema (null cabundle / unprotected), then chain"): its unprotected
# header is null, which the envelope check rejects first.
EXPECTED_ERROR = {
    "invalid-blocky-selfsigned.cose": MalformedDocumentError,
    "invalid-tampered-signature-bitflip.cose": SignatureError,
    "invalid-tampered-payload-pcr0.cose": SignatureError,
    "invalid-resigned-foreign-key.cose": SignatureError,
    "invalid-protected-header-reencoded.cose": SignatureError,
    "invalid-trailing-bytes.cose": MalformedDocumentError,
    "invalid-cose-array-3-elements.cose": MalformedDocumentError,
    "invalid-cose-signature-is-text.cose": MalformedDocumentError,
    "invalid-not-an-array.cose": MalformedDocumentError,
}
BLOCKY_TIME = datetime.fromtimestamp(1725719859545 / 1000, tz=UTC)
NOOP = policy.UnsafeNoOp()


def _ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["file"] for e in entries]


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier()


def _verify(v: Verifier, data: bytes, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", policy.UnsafePolicyWarning)
        return v.verify(data, policy=NOOP, **kw)


def test_every_invalid_fixture_has_an_expected_class() -> None:
    assert set(EXPECTED_ERROR) == set(_ids(INVALID))
    assert len(GENUINE) == 10


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_in_audit_mode_and_at_explicit_time(
    entry: dict[str, Any], fixtures_dir: Path, verifier: Verifier
) -> None:
    data = (fixtures_dir / "nitro" / entry["file"]).read_bytes()
    audit = _verify(verifier, data, at="document")
    explicit = _verify(Verifier(), data, at=doc_time(data))
    assert audit.document == explicit.document
    assert audit.verified_at == audit.timestamp == doc_time(data)
    assert audit.chain[0].public_bytes(Encoding.DER) == audit.document.certificate
    assert fingerprint_sha256(audit.chain[-1]) == AWS_NITRO_ROOT_G1_SHA256
    assert len(audit.chain) == 5


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_fixture_is_expired_now(
    entry: dict[str, Any], fixtures_dir: Path, verifier: Verifier
) -> None:
    data = (fixtures_dir / "nitro" / entry["file"]).read_bytes()
    with pytest.raises(CertificateExpiredError):
        _verify(verifier, data)  # at="now", the default: every 3-hour leaf has long expired
    # Same with a pinned clock, so the outcome does not depend on the machine's clock.
    pinned = Verifier(clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(CertificateExpiredError):
        _verify(pinned, data)


@pytest.mark.parametrize("entry", GENUINE, ids=_ids(GENUINE))
def test_decoded_fields_match_sidecar(entry: dict[str, Any], fixtures_dir: Path) -> None:
    data = (fixtures_dir / "nitro" / entry["file"]).read_bytes()
    side = sidecar(entry["file"])
    result = _verify(Verifier(), data, at="document")
    assert result.module_id == side["module_id"] == entry["module_id"]
    assert result.digest == side["digest"]
    assert result.document.timestamp_ms == side["timestamp_ms"]
    assert result.timestamp.isoformat().replace("+00:00", "Z") == entry["timestamp_iso"]
    assert len(result.pcrs) == side["pcr_count"]
    nonzero = {str(i): v.hex() for i, v in result.pcrs.items() if any(v)}
    assert nonzero == side["nonzero_pcrs"]
    assert sorted(nonzero, key=int) == entry["nonzero_pcrs"]
    for name, value in (
        ("public_key", result.public_key_der),
        ("user_data", result.user_data),
        ("nonce", result.nonce),
    ):
        assert (value is None) == side[name]["is_null"], name
        assert (None if value is None else len(value)) == entry[f"{name}_len"], name
    assert len(result.document.cabundle) == side["cabundle_count"] == 4
    assert result.document.is_debug_mode == side["debug_mode_likely (PCR0,1,2 all zero)"]
    assert parse_document(data) == result.document


@pytest.mark.parametrize("entry", INVALID, ids=_ids(INVALID))
def test_invalid_fixture_fails_with_its_stage_error(
    entry: dict[str, Any], fixtures_dir: Path, verifier: Verifier
) -> None:
    data = (fixtures_dir / "nitro" / entry["file"]).read_bytes()
    with pytest.raises(AttestationError) as info:
        _verify(verifier, data, at=BLOCKY_TIME)
    assert type(info.value) is EXPECTED_ERROR[entry["file"]]


def test_tag18_variant_equals_untagged(fixtures_dir: Path, verifier: Verifier) -> None:
    tagged = (fixtures_dir / "nitro" / "valid-variant-tag18-wrapped.cose").read_bytes()
    plain = (fixtures_dir / "nitro" / "blocky-nitrite-nitro_attestation.cose").read_bytes()
    assert tagged[:2] == b"\xd2\x84" and plain[:1] == b"\x84"
    a = _verify(verifier, tagged, at="document")
    b = _verify(verifier, plain, at="document")
    assert a.document == b.document


def test_self_signed_sample_fails_chain_once_schema_is_repaired(fixtures_dir: Path) -> None:
    # The README's second stage for this sample: its self-signed leaf does not chain to the
    # pinned root. The document cannot be repaired without its key, so check that stage on
    # its leaf directly.
    arr = cbor2.loads((fixtures_dir / "nitro" / "invalid-blocky-selfsigned.cose").read_bytes())
    leaf = cbor2.loads(arr[2])["certificate"]
    with pytest.raises(CertificateChainError) as info:
        ChainValidator([aws_nitro_root()]).validate(leaf, [leaf], BLOCKY_TIME)
    assert type(info.value) is CertificateChainError


def test_genuine_documents_fail_against_other_roots(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "nitro" / "blocky-nitrite-nitro_attestation.cose").read_bytes()
    only_test_root = Verifier(trusted_roots=[mini_pki().root])
    with pytest.raises(CertificateChainError) as info:
        _verify(only_test_root, data, at="document")
    assert type(info.value) is CertificateChainError


def test_extra_root_is_additive(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "nitro" / "blocky-nitrite-nitro_attestation.cose").read_bytes()
    pki = mini_pki()
    both = Verifier(trusted_roots=[aws_nitro_root(), pki.root])
    assert _verify(both, data, at="document").module_id.startswith("i-0a22e5c5f24d22174")
    minted = pki.document()
    assert _verify(both, minted, at=BLOCKY_TIME).chain[-1] == pki.root
    with pytest.raises(CertificateChainError):
        _verify(Verifier(), minted, at=BLOCKY_TIME)  # default: AWS root only


def test_cabundle_root_is_not_trusted_for_being_present() -> None:
    # A document whose cabundle carries its own root must still fail under the default roots.
    pki = mini_pki()
    assert pki.cabundle[0] == pki.root.public_bytes(Encoding.DER)
    with pytest.raises(CertificateChainError):
        _verify(Verifier(), pki.document(), at=BLOCKY_TIME)


def test_pinned_root_fingerprint_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import attestation.roots as roots

    assert fingerprint_sha256(aws_nitro_root()) == AWS_NITRO_ROOT_G1_SHA256
    other = mini_pki().root.public_bytes(Encoding.PEM)

    class _Fake:
        def joinpath(self, *_: str) -> _Fake:
            return self

        def read_bytes(self) -> bytes:
            return other

    roots.aws_nitro_root.cache_clear()
    monkeypatch.setattr(roots.resources, "files", lambda _pkg: _Fake())  # type: ignore[attr-defined]
    try:
        with pytest.raises(CertificateChainError, match="pinned"):
            roots.aws_nitro_root()
    finally:
        monkeypatch.undo()
        roots.aws_nitro_root.cache_clear()
    assert fingerprint_sha256(roots.aws_nitro_root()) == AWS_NITRO_ROOT_G1_SHA256


def test_verify_at_explicit_time_one_hour_later_still_inside_leaf(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "nitro" / "blocky-nitrite-nitro_attestation.cose").read_bytes()
    later = doc_time(data) + timedelta(minutes=30)
    assert _verify(Verifier(), data, at=later).verified_at == later
