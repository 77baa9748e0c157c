"""Trust anchors: the AWS Nitro Enclaves root G1, shipped as package data and pinned in code.

nitro-attestation.md §4 and §8.8: the root is pinned by the SHA-256 of its DER, checked every time
the package data is loaded, so a modified installation cannot swap the anchor silently. Any
other root (another partition, a test PKI) is trusted only when a caller passes it explicitly.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import CertificateChainError

__all__ = ["AWS_NITRO_ROOT_G1_SHA256", "aws_nitro_root", "fingerprint_sha256", "load_pem_root"]

#: SHA-256 of the DER of ``CN=aws.nitro-enclaves`` (serial f93175681b90afe11d46ccb4e4e7f856),
#: from AWS_NitroEnclaves_Root-G1.zip (zip SHA-256 8cf60e2b…faff7c).
AWS_NITRO_ROOT_G1_SHA256: Final = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

_PACKAGE_FILE: Final = "aws_nitro_enclaves_root_g1.pem"


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """The lowercase hex SHA-256 of a certificate's DER encoding."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@cache
def aws_nitro_root() -> x509.Certificate:
    """The AWS Nitro Enclaves root G1 (commercial partitions), checked against its pin.

    Returns:
        The parsed root certificate (the same object on every call).

    Raises:
        CertificateChainError: the packaged file does not match the pinned fingerprint.
    """
    pem = resources.files("attestation").joinpath("data", _PACKAGE_FILE).read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    if fingerprint_sha256(cert) != AWS_NITRO_ROOT_G1_SHA256:
        raise CertificateChainError(
            "packaged AWS Nitro root does not match the pinned SHA-256 fingerprint"
        )
    return cert


def load_pem_root(pem: bytes) -> x509.Certificate:
    """Parse one PEM certificate to pass as an *explicit* extra trust anchor (test PKIs).

    Args:
        pem: a PEM-encoded certificate.

    Returns:
        The parsed certificate.

    Raises:
        CertificateChainError: the data is not a PEM certificate.
    """
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateChainError(f"not a PEM certificate: {exc}") from None
