"""Verify AWS Nitro Enclaves attestation documents.

A pure library: it takes bytes and returns a verified, typed document, or raises a precise
:class:`attestation.errors.AttestationError`. It knows nothing of KMS, HTTP or storage.

Example::

    from datetime import timedelta
    from attestation import Verifier, policy

    verifier = Verifier()  # trusts the pinned AWS Nitro Enclaves root G1 only
    result = verifier.verify(
        document_bytes,
        policy=policy.AllOf([
            policy.RejectDebugMode(),
            policy.ImageMeasurement(pcr0="e72a46ca...9fe86a"),
            policy.Nonce(my_nonce),
            policy.MaxAge(timedelta(minutes=5)),
        ]),
    )  # at="now" by default; at="document" is audit mode for stored documents
    result.pcrs[0], result.public_key, result.user_data

``verify`` returns a frozen :class:`VerifiedAttestation` or raises; it never returns a bool.
:func:`parse_document` decodes without verifying, for display only.
"""

from __future__ import annotations

from . import policy
from .document import AttestationDocument, parse_document
from .errors import (
    AttestationError,
    CertificateChainError,
    CertificateExpiredError,
    MalformedDocumentError,
    MeasurementMismatchError,
    PolicyError,
    SignatureError,
    StaleDocumentError,
    UnsupportedAlgorithmError,
    VerificationError,
)
from .roots import aws_nitro_root
from .verifier import VerifiedAttestation, Verifier

__all__ = [
    "AttestationDocument",
    "AttestationError",
    "CertificateChainError",
    "CertificateExpiredError",
    "MalformedDocumentError",
    "MeasurementMismatchError",
    "PolicyError",
    "SignatureError",
    "StaleDocumentError",
    "UnsupportedAlgorithmError",
    "VerificationError",
    "VerifiedAttestation",
    "Verifier",
    "aws_nitro_root",
    "parse_document",
    "policy",
]
