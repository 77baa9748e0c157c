"""A deterministic test PKI shaped like the AWS Nitro chain. DO NOT TRUST it outside tests.

Root → regional → zonal → instance → leaf, all EC P-384 with ecdsa-with-SHA384, and the
extension profile of genuine chains (nitro-attestation.md §4):

========  =======================  ==========================  ================================
level     basicConstraints (crit)  keyUsage                    other
========  =======================  ==========================  ================================
root      CA, no pathlen           crit: dS, keyCertSign, cRL  SKI, no AKI
regional  CA, pathlen 2            crit: dS, keyCertSign, cRL  AKI, SKI
zonal     CA, pathlen 1            crit: dS, keyCertSign, cRL  AKI, SKI
instance  CA, pathlen 0            crit: keyCertSign only      AKI, SKI (as on 2024-09+ chains)
leaf      CA:false                 non-crit: dS, nonRepudiat.  nothing else (no AKI/SKI/SAN/EKU)
========  =======================  ==========================  ================================

CRL distribution points are omitted (AWS says it does not use CRLs). Every key derives from the
seed (HKDF-SHA384 → scalar mod n), certificates use RFC 6979 deterministic ECDSA, and serials and
dates are fixed by the inputs, so one seed and one ``valid_from`` always give the same bytes.
The private keys are test keys derived from a seed that is not secret: never trust this root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

__all__ = [
    "DEFAULT_SEED",
    "GENUINE_LIFETIMES",
    "LONG_LIFETIMES",
    "CaLifetimes",
    "TestPki",
    "derive_p384_key",
    "seed_bytes",
]

DEFAULT_SEED = 0x4E17_0000
# Order of the P-384 group (SEC 2, §2.5.1).
_P384_N = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
    "581a0db248b0a77aecec196accc52973",
    16,
)
_SALT = b"enclave-kms test PKI DO NOT TRUST"


@dataclass(frozen=True)
class CaLifetimes:
    """Validity of each CA level, counted from the PKI's ``valid_from``."""

    root: timedelta = timedelta(days=365 * 30)
    regional: timedelta = timedelta(days=20, hours=1)
    zonal: timedelta = timedelta(days=6)
    instance: timedelta = timedelta(hours=24)


# Lifetimes seen on genuine chains (nitro-attestation.md §4).
GENUINE_LIFETIMES = CaLifetimes()
# Every CA valid for 30 years: for PKIs kept on disk and reused (the ``mint`` CLI).
LONG_LIFETIMES = CaLifetimes(
    regional=timedelta(days=365 * 30),
    zonal=timedelta(days=365 * 30),
    instance=timedelta(days=365 * 30),
)


def seed_bytes(seed: int | bytes) -> bytes:
    """The canonical byte form of a seed (an integer is big-endian, at least 8 bytes).

    Raises:
        ValueError: a negative integer.
    """
    if isinstance(seed, bytes):
        return seed
    if seed < 0:
        raise ValueError("seed must be a non-negative integer or bytes")
    return seed.to_bytes(max(8, (seed.bit_length() + 7) // 8), "big")


def _hkdf(seed: bytes, label: str, length: int) -> bytes:
    return HKDF(hashes.SHA384(), length, _SALT, label.encode()).derive(seed)


def derive_p384_key(seed: int | bytes, label: str) -> ec.EllipticCurvePrivateKey:
    """Derive a P-384 private key from ``seed`` and ``label`` (HKDF-SHA384, reduced mod n).

    64 bytes of HKDF output reduced mod the 384-bit group order has negligible bias.
    """
    k = int.from_bytes(_hkdf(seed_bytes(seed), f"key:{label}", 64), "big") % (_P384_N - 1) + 1
    return ec.derive_private_key(k, ec.SECP384R1())


def _serial(seed: bytes, label: str) -> int:
    # A positive 127-bit serial (RFC 5280 §4.1.2.2 allows up to 20 octets).
    return (int.from_bytes(_hkdf(seed, f"serial:{label}", 16), "big") >> 1) | 1


def _name(cn: str) -> x509.Name:
    # Same RDN shape as AWS's certificates, with an organisation that says what this is.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "enclave-kms test PKI"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "DO NOT TRUST"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_INSTANCE_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,  # nonRepudiation
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    # RFC 6979 nonces make the signature, and so the DER, a function of the inputs.
    return builder.sign(key, hashes.SHA384(), ecdsa_deterministic=True)


@dataclass(frozen=True)
class TestPki:
    """A seeded root, regional, zonal and instance CA that issues Nitro-shaped leaves.

    Build one with :meth:`create`; reuse one on disk with :meth:`save` / :meth:`load`.
    """

    __test__ = False  # not a pytest test class, despite the name

    seed: bytes = field(repr=False)
    region: str
    instance_id: str
    valid_from: datetime
    lifetimes: CaLifetimes
    root: x509.Certificate = field(repr=False)
    regional: x509.Certificate = field(repr=False)
    zonal: x509.Certificate = field(repr=False)
    instance: x509.Certificate = field(repr=False)
    _instance_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def create(
        cls,
        seed: int | bytes = DEFAULT_SEED,
        *,
        valid_from: datetime,
        region: str = "us-east-1",
        lifetimes: CaLifetimes = GENUINE_LIFETIMES,
    ) -> TestPki:
        """Derive the CA chain from ``seed``.

        Args:
            seed: any integer or bytes; the same seed gives the same keys.
            valid_from: notBefore of every CA certificate (truncated to whole seconds).
            region: the AWS region named in the certificate subjects.
            lifetimes: validity of each CA level.

        Raises:
            ValueError: a negative seed or a naive ``valid_from``.
        """
        if valid_from.tzinfo is None:
            raise ValueError("valid_from must be timezone-aware")
        sb = seed_bytes(seed)
        start = valid_from.astimezone(UTC).replace(microsecond=0)
        instance_id = "i-" + _hkdf(sb, "instance-id", 9).hex()[:17]
        keys = {lvl: derive_p384_key(sb, lvl) for lvl in ("root", "regional", "zonal", "instance")}
        tag = _hkdf(sb, "ca-names", 16).hex()
        root_name = _name("enclave-kms test root DO NOT TRUST")
        root = _sign(
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(keys["root"].public_key())
            .serial_number(_serial(sb, "root"))
            .not_valid_before(start)
            .not_valid_after(start + lifetimes.root)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(keys["root"].public_key()),
                critical=False,
            )
            .add_extension(_CA_USAGE, critical=True),
            keys["root"],
        )
        levels = (
            ("regional", f"{tag[:16]}.{region}.aws.nitro-enclaves", 2, lifetimes.regional),
            ("zonal", f"{tag[16:]}.zonal.{region}.aws.nitro-enclaves", 1, lifetimes.zonal),
            ("instance", f"{instance_id}.{region}.aws.nitro-enclaves", 0, lifetimes.instance),
        )
        certs = {"root": root}
        parent = "root"
        for level, cn, pathlen, lifetime in levels:
            certs[level] = _issue_ca(
                certs[parent], keys[parent], keys[level], cn, pathlen, start, lifetime, sb, level
            )
            parent = level
        return cls(
            seed=sb,
            region=region,
            instance_id=instance_id,
            valid_from=start,
            lifetimes=lifetimes,
            root=root,
            regional=certs["regional"],
            zonal=certs["zonal"],
            instance=certs["instance"],
            _instance_key=keys["instance"],
        )

    @property
    def cabundle(self) -> list[bytes]:
        """DER certificates in document order, root first: ``[root, regional, zonal, instance]``."""
        return [
            c.public_bytes(serialization.Encoding.DER)
            for c in (self.root, self.regional, self.zonal, self.instance)
        ]

    @property
    def default_module_id(self) -> str:
        """A module id of the hardware shape ``i-<17 hex>-enc<16 hex>``, fixed by the seed."""
        return f"{self.instance_id}-enc{_hkdf(self.seed, 'enclave-id', 8).hex()}"

    def leaf_key(self, module_id: str) -> ec.EllipticCurvePrivateKey:
        """The enclave's signing key for ``module_id`` (derived from the seed)."""
        return derive_p384_key(self.seed, f"leaf:{module_id}")

    def issue_leaf(
        self, module_id: str, *, not_before: datetime, not_after: datetime
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """Issue the per-enclave signing certificate, CN ``<module_id>.<region>.aws``.

        Raises:
            ValueError: naive datetimes.
        """
        if not_before.tzinfo is None or not_after.tzinfo is None:
            raise ValueError("leaf validity must be timezone-aware")
        key = self.leaf_key(module_id)
        nb = not_before.astimezone(UTC).replace(microsecond=0)
        na = not_after.astimezone(UTC).replace(microsecond=0)
        cert = _sign(
            x509.CertificateBuilder()
            .subject_name(_name(f"{module_id}.{self.region}.aws"))
            .issuer_name(self.instance.subject)
            .public_key(key.public_key())
            .serial_number(_serial(self.seed, f"leaf:{module_id}:{int(nb.timestamp())}"))
            .not_valid_before(nb)
            .not_valid_after(na)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_LEAF_USAGE, critical=False),
            self._instance_key,
        )
        return cert, key

    def save(self, directory: str | Path) -> None:
        """Write ``root.pem``, ``chain.pem`` (regional, zonal, instance) and ``pki.json``.

        ``pki.json`` holds the seed and parameters, from which :meth:`load` re-derives the keys.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "root.pem").write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        (d / "chain.pem").write_bytes(self._chain_pem())
        (d / "pki.json").write_text(json.dumps(self._params(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> TestPki:
        """Re-derive a PKI written by :meth:`save` and check it matches the PEM files.

        Raises:
            FileNotFoundError: a file is missing.
            ValueError: the PEM files do not match the parameters in ``pki.json``.
        """
        d = Path(directory)
        params = json.loads((d / "pki.json").read_text())
        lt = params["lifetimes_seconds"]
        pki = cls.create(
            bytes.fromhex(params["seed"]),
            valid_from=datetime.fromisoformat(params["valid_from"]),
            region=params["region"],
            lifetimes=CaLifetimes(**{k: timedelta(seconds=v) for k, v in lt.items()}),
        )
        root_pem = pki.root.public_bytes(serialization.Encoding.PEM)
        if (d / "root.pem").read_bytes() != root_pem or (d / "chain.pem").read_bytes() != (
            pki._chain_pem()
        ):
            raise ValueError(f"{d}: root.pem/chain.pem do not match pki.json")
        return pki

    def _chain_pem(self) -> bytes:
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in (self.regional, self.zonal, self.instance)
        )

    def _params(self) -> dict[str, object]:
        return {
            "warning": "enclave-kms test PKI: DO NOT TRUST; keys derive from this public seed",
            "seed": self.seed.hex(),
            "region": self.region,
            "valid_from": self.valid_from.isoformat(),
            "lifetimes_seconds": {
                k: int(getattr(self.lifetimes, k).total_seconds())
                for k in ("root", "regional", "zonal", "instance")
            },
        }


def _issue_ca(
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    cn: str,
    pathlen: int,
    start: datetime,
    lifetime: timedelta,
    seed: bytes,
    label: str,
) -> x509.Certificate:
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return _sign(
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(_serial(seed, label))
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_INSTANCE_USAGE if pathlen == 0 else _CA_USAGE, critical=True),
        issuer_key,
    )
