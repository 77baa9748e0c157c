"""Every minted valid document verifies (project verifier and pycose); every variant is rejected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from pycose.keys import EC2Key
from pycose.keys.curves import P384
from pycose.messages import Sign1Message

from attestation import CertificateChainError, CertificateExpiredError, Verifier, policy
from attestation.testing.mint import VARIANTS, Variant, mint_document
from attestation.testing.pki import TestPki

TS = datetime(2025, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
PKI = TestPki.create(2024, valid_from=datetime(2025, 2, 3, tzinfo=UTC))
MINTED = sorted((Path(__file__).resolve().parents[3] / "fixtures" / "minted").glob("*.json"))
SIDECARS = [p for p in MINTED if p.name not in ("INDEX.json", "pki.json")]


# UnsafeNoOp warns on every use, by design; these tests check authenticity only.
pytestmark = pytest.mark.filterwarnings("ignore::attestation.policy.UnsafePolicyWarning")


def noop() -> policy.UnsafeNoOp:
    return policy.UnsafeNoOp()


def pycose_verify(document: bytes) -> bool:
    """Independent COSE check: pycose with the leaf's key (nitro-attestation.md §7 pitfalls)."""
    decoded = cbor2.loads(document)
    arr = decoded.value if isinstance(decoded, cbor2.CBORTag) else decoded
    leaf = x509.load_der_x509_certificate(cbor2.loads(arr[2])["certificate"])
    numbers = leaf.public_key().public_numbers()  # type: ignore[union-attr]
    # cbor2 6 decodes the contents of tag 18 as a tuple holding a frozendict; pycose 1.1 wants a
    # list holding a dict.
    message = Sign1Message.from_cose_obj([arr[0], dict(arr[1]), arr[2], arr[3]], True)
    message.key = EC2Key(crv=P384, x=numbers.x.to_bytes(48, "big"), y=numbers.y.to_bytes(48, "big"))
    return bool(message.verify_signature())


def at_for(spec_verify_at: str, ts: datetime) -> datetime | str:
    return ts if spec_verify_at == "timestamp" else "document"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"debug": True},
        {"public_key": b"\x30" * 91, "user_data": b"u", "nonce": b"n"},
        {"public_key": b"k" * 1024, "user_data": b"u" * 1024, "nonce": b"n" * 1024},
        {"public_key": b""},
        {"pcrs": {0: b"\x0a" * 48, 16: b"\x0b" * 48, 31: b"\x0c" * 48}},
    ],
)
def test_valid_documents_verify_with_the_project_verifier_and_pycose(kwargs: dict) -> None:  # type: ignore[type-arg]
    document = mint_document(PKI, timestamp=TS, **kwargs)
    result = Verifier(trusted_roots=[PKI.root]).verify(document, policy=noop(), at=TS)
    assert result.module_id == PKI.default_module_id
    assert result.timestamp == TS
    assert result.user_data == kwargs.get("user_data")
    assert result.nonce == kwargs.get("nonce")
    assert pycose_verify(document)


def test_audit_mode_and_expiry_at_now() -> None:
    document = mint_document(PKI, timestamp=TS)
    verifier = Verifier(trusted_roots=[PKI.root])
    assert verifier.verify(document, policy=noop(), at="document").timestamp == TS
    with pytest.raises(CertificateExpiredError):
        verifier.verify(document, policy=noop(), at="now")


def test_the_default_verifier_does_not_trust_the_test_root() -> None:
    with pytest.raises(CertificateChainError):
        Verifier().verify(mint_document(PKI, timestamp=TS), policy=noop(), at=TS)


def test_every_variant_has_a_spec() -> None:
    assert set(VARIANTS) == set(Variant)
    assert [v for v in Variant if VARIANTS[v].expected_error is None] == [Variant.TAG18_WRAPPED]


@pytest.mark.parametrize("variant", list(Variant), ids=lambda v: v.value)
def test_each_variant_gets_its_stated_verdict(variant: Variant) -> None:
    spec = VARIANTS[variant]
    document = mint_document(PKI, timestamp=TS, nonce=b"n", variant=variant)
    verifier = Verifier(trusted_roots=[PKI.root])
    at = at_for(spec.verify_at, TS)
    if spec.expected_error is None:
        assert verifier.verify(document, policy=noop(), at=at).nonce == b"n"
        assert pycose_verify(document)
        return
    with pytest.raises(spec.expected_error) as info:
        verifier.verify(document, policy=noop(), at=at)
    if spec.expected_error is CertificateChainError:
        assert not isinstance(info.value, CertificateExpiredError)


@pytest.mark.parametrize(
    "variant", [Variant.BAD_SIGNATURE, Variant.FOREIGN_KEY, Variant.TAMPERED_PAYLOAD]
)
def test_pycose_also_rejects_signature_variants(variant: Variant) -> None:
    assert not pycose_verify(mint_document(PKI, timestamp=TS, variant=variant))


@pytest.mark.parametrize("sidecar", SIDECARS, ids=lambda p: p.stem)
def test_committed_fixture_verdicts(sidecar: Path) -> None:
    meta = json.loads(sidecar.read_text())
    directory = sidecar.parent
    root = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
    document = (directory / meta["file"]).read_bytes()
    at = meta["verify_at"]
    at = at if at == "document" else datetime.fromisoformat(at.replace("Z", "+00:00"))
    verifier = Verifier(trusted_roots=[root])
    if meta["expected"] == "valid":
        assert meta["error"] is None
        verifier.verify(document, policy=noop(), at=at)
        assert pycose_verify(document)
    else:
        import attestation.errors as errors

        with pytest.raises(getattr(errors, meta["error"])):
            verifier.verify(document, policy=noop(), at=at)


def test_fixture_catalogue_covers_every_variant() -> None:
    names = {p.stem for p in SIDECARS}
    for v in Variant:
        prefix = "valid-" if VARIANTS[v].expected_error is None else "invalid-"
        assert prefix + v.value in names
    assert {"valid-prod", "valid-debug", "valid-public-key", "valid-max-optionals"} <= names
