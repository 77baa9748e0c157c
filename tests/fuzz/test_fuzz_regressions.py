"""Inputs the fuzzers found that break a documented contract, kept as regression tests.

Each test asserts the documented behaviour. While a bug is open its test is marked
``xfail(strict=True)``, so it turns into a failure (an unexpected pass) the moment the product
code is fixed; then the mark goes. The inputs live in ``fixtures/fuzz/regressions/<target>/``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from _mutators import Node, encode_tlv, parse_tlv
from _targets_attestation import DOC_TIME, fuzz_pki

from attestation import CertificateChainError, Verifier, aws_nitro_root, policy
from attestation.testing._document import encode_cose_sign1, sign_es384
from attestation.testing.mint import mint_document
from attestation.testing.pki import TestPki
from enclave_kms.cms import CmsFormatError, parse_ciphertext_for_recipient

# Fixed: a certificate part that cryptography parses lazily (subject, name attributes) made
# Verifier.verify raise ValueError from path validation; it is now a CertificateChainError.


@pytest.mark.parametrize(
    "name",
    [
        "valueerror-lazy-certificate-subject.cose",  # ParseError ... location: ["subject"]
        "valueerror-duplicate-name-attributes.cose",  # x509.Name: duplicate attributes
    ],
)
def test_fuzzer_input_value_error_in_path_validation(fixtures_dir: Path, name: str) -> None:
    regression = fixtures_dir / "fuzz" / "regressions" / "attestation"
    data = (regression / name).read_bytes()
    verifier = Verifier([aws_nitro_root(), fuzz_pki().root])
    with pytest.raises(CertificateChainError):
        verifier.verify(data, policy=policy.RejectDebugMode(), at=DOC_TIME + timedelta(minutes=1))


def test_minimal_lazy_certificate_subject() -> None:
    # The minimal form of the fuzzer's input: a minted document whose leaf has an unknown outer
    # signatureAlgorithm (OID 1.2) and a subject O attribute re-tagged UTF8String -> NULL.
    at = datetime(2024, 1, 1, 12, tzinfo=UTC)
    pki = TestPki.create(1, valid_from=datetime(2024, 1, 1, tzinfo=UTC))
    protected, _, payload_bytes, _ = cbor2.loads(mint_document(pki, timestamp=at))
    payload = cbor2.loads(payload_bytes)
    cert = parse_tlv(payload["certificate"])
    subject = cert[0].children[0].children[5]  # tbsCertificate.subject
    subject.children[1].children[0].children[1].ident = b"\x05"  # O value: UTF8String -> NULL
    cert[0].children[1] = Node(b"\x30", children=[Node(b"\x06", b"\x2a")])  # sigAlg OID 1.2
    payload["certificate"] = encode_tlv(cert)
    payload_bytes = cbor2.dumps(payload)
    key = pki.leaf_key(pki.default_module_id)
    signature = sign_es384(key, protected, payload_bytes)
    document = encode_cose_sign1(protected, {}, payload_bytes, signature)
    with pytest.raises(CertificateChainError):
        Verifier([pki.root]).verify(document, policy=policy.RejectDebugMode(), at=at)


def test_cms_refuses_constructed_definite_length_content(fixtures_dir: Path) -> None:
    # Legal BER that openssl reads, but no KMS producer emits it, and AWS's enclave SDK parser
    # refuses it too: it requires the constructed [0] encryptedContent to be indefinite-length
    # (enclave_kms/docs/kms-recipient.md §5). We refuse it with the documented format error.
    data = (fixtures_dir / "fuzz" / "cms" / "constructed-definite-content.ber").read_bytes()
    with pytest.raises(CmsFormatError, match="malformed CMS"):
        parse_ciphertext_for_recipient(data)
