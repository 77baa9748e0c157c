"""The test PKI: the genuine Nitro extension profile, determinism, and save/load."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

from attestation.testing.pki import LONG_LIFETIMES, TestPki

T0 = datetime(2025, 6, 1, tzinfo=UTC)
PKI = TestPki.create(42, valid_from=T0)
LEAF, LEAF_KEY = PKI.issue_leaf(
    PKI.default_module_id, not_before=T0 + timedelta(hours=1), not_after=T0 + timedelta(hours=4)
)


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:  # type: ignore[type-arg]
    return cert.extensions.get_extension_for_class(cls)


def oids(cert: x509.Certificate) -> set[str]:
    return {e.oid.dotted_string for e in cert.extensions}


@pytest.mark.parametrize(
    ("level", "pathlen"), [("root", None), ("regional", 2), ("zonal", 1), ("instance", 0)]
)
def test_ca_basic_constraints(level: str, pathlen: int | None) -> None:
    bc = ext(getattr(PKI, level), x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca
    assert bc.value.path_length == pathlen


def test_root_is_self_signed_p384_with_ski_and_no_aki() -> None:
    root = PKI.root
    assert root.subject == root.issuer
    assert "DO NOT TRUST" in root.subject.rfc4514_string()
    root.verify_directly_issued_by(root)
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp384r1"
    assert oids(root) == {"2.5.29.19", "2.5.29.14", "2.5.29.15"}  # BC, SKI, KU


@pytest.mark.parametrize("level", ["regional", "zonal"])
def test_upper_intermediates_key_usage_and_aki(level: str) -> None:
    cert = getattr(PKI, level)
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert (ku.value.digital_signature, ku.value.key_cert_sign, ku.value.crl_sign) == (
        True, True, True,
    )  # fmt: skip
    assert oids(cert) == {"2.5.29.19", "2.5.29.35", "2.5.29.14", "2.5.29.15"}


def test_instance_key_usage_is_key_cert_sign_only() -> None:
    ku = ext(PKI.instance, x509.KeyUsage)
    assert ku.critical
    assert ku.value.key_cert_sign
    assert not ku.value.digital_signature
    assert not ku.value.crl_sign
    assert PKI.instance.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == (
        f"{PKI.instance_id}.us-east-1.aws.nitro-enclaves"
    )


def test_leaf_profile() -> None:
    assert oids(LEAF) == {"2.5.29.19", "2.5.29.15"}  # no AKI, SKI, SAN, EKU
    bc = ext(LEAF, x509.BasicConstraints)
    assert bc.critical
    assert not bc.value.ca
    ku = ext(LEAF, x509.KeyUsage)
    assert not ku.critical
    assert ku.value.digital_signature
    assert ku.value.content_commitment
    assert LEAF.not_valid_after_utc - LEAF.not_valid_before_utc == timedelta(hours=3)
    cn = LEAF.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == f"{PKI.default_module_id}.us-east-1.aws"


def test_chain_links_and_signatures_are_ecdsa_sha384() -> None:
    chain = [PKI.root, PKI.regional, PKI.zonal, PKI.instance, LEAF]
    for parent, child in itertools.pairwise(chain):
        child.verify_directly_issued_by(parent)
        assert child.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA384
        aki = child.extensions.get_extension_for_class
        if child is not LEAF:
            assert aki(x509.AuthorityKeyIdentifier).value.key_identifier == (
                ext(parent, x509.SubjectKeyIdentifier).value.digest
            )


def test_module_id_and_instance_id_have_hardware_shape() -> None:
    prefix, _, enc = PKI.default_module_id.partition("-enc")
    assert prefix == PKI.instance_id
    assert len(PKI.instance_id) == 19
    assert PKI.instance_id.startswith("i-")
    assert len(enc) == 16
    int(enc, 16)


def test_same_seed_same_bytes_other_seed_other_keys() -> None:
    again = TestPki.create(42, valid_from=T0)
    assert again.cabundle == PKI.cabundle
    assert (
        again.issue_leaf(
            PKI.default_module_id,
            not_before=T0 + timedelta(hours=1),
            not_after=T0 + timedelta(hours=4),
        )[0]
        == LEAF
    )
    other = TestPki.create(43, valid_from=T0)
    assert other.root.public_key() != PKI.root.public_key()


def test_cryptography_webpki_verifies_the_chain_with_the_nitro_relaxation() -> None:
    # nitro-attestation.md §6: the minimal EE relaxation that verifies genuine chains.
    agnostic = Criticality.AGNOSTIC
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
        .may_be_present(x509.SubjectAlternativeName, agnostic, None)
    )
    verifier = (
        PolicyBuilder()
        .store(Store([PKI.root]))
        .time(T0 + timedelta(hours=2))
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
        .build_client_verifier()
    )
    chain = verifier.verify(LEAF, [PKI.regional, PKI.zonal, PKI.instance]).chain
    assert len(chain) == 5
    assert chain[-1] == PKI.root


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    PKI.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"root.pem", "chain.pem", "pki.json"}
    assert x509.load_pem_x509_certificates((tmp_path / "chain.pem").read_bytes()) == [
        PKI.regional, PKI.zonal, PKI.instance,
    ]  # fmt: skip
    loaded = TestPki.load(tmp_path)
    assert loaded.cabundle == PKI.cabundle
    assert loaded.leaf_key("m").private_numbers() == PKI.leaf_key("m").private_numbers()


def test_load_detects_pem_that_does_not_match(tmp_path: Path) -> None:
    PKI.save(tmp_path)
    TestPki.create(7, valid_from=T0).save(tmp_path / "other")
    (tmp_path / "root.pem").write_bytes((tmp_path / "other" / "root.pem").read_bytes())
    with pytest.raises(ValueError, match="do not match"):
        TestPki.load(tmp_path)


def test_long_lifetimes_and_naive_times() -> None:
    pki = TestPki.create(1, valid_from=T0, lifetimes=LONG_LIFETIMES)
    assert pki.instance.not_valid_after_utc - T0 == LONG_LIFETIMES.instance
    with pytest.raises(ValueError):
        TestPki.create(1, valid_from=datetime(2025, 1, 1))


def test_repr_has_no_seed_or_keys() -> None:
    text = repr(PKI)
    assert PKI.seed.hex() not in text
    assert "key" not in text.lower()
