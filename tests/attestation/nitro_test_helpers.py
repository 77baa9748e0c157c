"""Helpers for the verifier tests: fixture access and a tiny Nitro-shaped PKI to re-sign payloads.

Negative documents are built from genuine payloads: decode with cbor2, change one thing,
re-encode, and re-sign with a throwaway P-384 chain (root → instance CA → leaf) that has the
Nitro extension profile. The verifier trusts that root only when a test passes it explicitly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nitro"
BLOCKY = "blocky-nitrite-nitro_attestation.cose"
PROTECTED_ES384 = b"\xa1\x01\x38\x22"
# Inside the blocky leaf's validity, and a time inside the test PKI below.
T0 = datetime(2024, 9, 7, 14, 37, 39, 545000, tzinfo=UTC)


def index() -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / "INDEX.json").read_text()))


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sidecar(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name.replace(".cose", ".json")).read_text()))


def doc_time(data: bytes) -> datetime:
    arr = cbor2.loads(data)
    arr = arr.value if isinstance(arr, cbor2.CBORTag) else arr
    ms = cbor2.loads(arr[2])["timestamp"]
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def sample_and_time(name: str) -> tuple[bytes, datetime]:
    """A fixture's bytes and a time to verify it at: its own, or T0 if it cannot be read.

    A malformed sample fails to decode first, whatever the time.
    """
    data = raw(name)
    try:
        return data, doc_time(data)
    except Exception:
        return data, T0


def genuine_payload(name: str = BLOCKY) -> dict[str, Any]:
    """The decoded payload of a genuine document, as a mutable dict in wire order."""
    arr = cbor2.loads(raw(name))
    return dict(cbor2.loads(arr[2]))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ku(*, ds: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=ds,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class MiniPki:
    """root → instance CA → leaf, P-384, with the extension profile of Nitro chains."""

    root: x509.Certificate
    ca: x509.Certificate
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey

    @property
    def cabundle(self) -> list[bytes]:
        return [c.public_bytes(Encoding.DER) for c in (self.root, self.ca)]

    def document(
        self,
        payload: dict[str, Any] | None = None,
        *,
        protected: bytes = PROTECTED_ES384,
        unprotected: Any = None,
        tag: bool = False,
        payload_bytes: bytes | None = None,
        timestamp: datetime | int | None = None,
    ) -> bytes:
        """Mint a COSE_Sign1 document signed by this PKI's leaf."""
        fields = dict(genuine_payload() if payload is None else payload)
        fields["certificate"] = self.leaf.public_bytes(Encoding.DER)
        fields["cabundle"] = self.cabundle
        if timestamp is not None:
            fields["timestamp"] = (
                timestamp if isinstance(timestamp, int) else int(timestamp.timestamp() * 1000)
            )
        body = cbor2.dumps(fields) if payload_bytes is None else payload_bytes
        return sign(self.leaf_key, body, protected=protected, unprotected=unprotected, tag=tag)


def sign(
    key: ec.EllipticCurvePrivateKey,
    payload: bytes,
    *,
    protected: bytes = PROTECTED_ES384,
    unprotected: Any = None,
    tag: bool = False,
) -> bytes:
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA384())))
    size = (key.curve.key_size + 7) // 8
    sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    arr = [protected, {} if unprotected is None else unprotected, payload, sig]
    return cbor2.dumps(cbor2.CBORTag(18, arr) if tag else arr)


@cache
def mini_pki(
    start: datetime = T0 - timedelta(hours=1),
    leaf_hours: int = 3,
    leaf_curve: type[ec.EllipticCurve] = ec.SECP384R1,
) -> MiniPki:
    """A fresh chain; the leaf is valid [start, start + leaf_hours], the CAs for ten years."""
    root_key = ec.generate_private_key(ec.SECP384R1())
    ca_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(leaf_curve())
    end = start + timedelta(days=3650)

    def build(subject: str, issuer: str, key: Any, signer: Any, nb: datetime, na: datetime) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(nb)
            .not_valid_after(na)
        )

    root = (
        build("test root DO NOT TRUST", "test root DO NOT TRUST", root_key, root_key, start, end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ku(ds=True, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA384())
    )
    ca = (
        build("test instance CA", "test root DO NOT TRUST", ca_key, root_key, start, end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ku(ds=False, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA384())
    )
    leaf = (
        build(
            "i-0123456789abcdef0-enc0123456789abcdef.test.aws",
            "test instance CA",
            leaf_key,
            ca_key,
            start,
            start + timedelta(hours=leaf_hours),
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_ku(ds=True, cert_sign=False), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    return MiniPki(root=root, ca=ca, leaf=leaf, leaf_key=leaf_key)
