"""Exceptions raised by the attestation library.

Every failure is an :class:`AttestationError`. The subclasses name the verification stage that
failed, so a caller can tell "these bytes are not an attestation document" from "this document was
not signed by the trusted PKI" from "this genuine document does not satisfy my policy":

    AttestationError
    ├── MalformedDocumentError          the bytes are not a well-formed document (decode, schema)
    │   └── UnsupportedAlgorithmError   a COSE message whose algorithm is not ES384
    └── VerificationError               well-formed, but not authentic or not acceptable
        ├── SignatureError              the COSE_Sign1 signature does not verify
        ├── CertificateChainError       the certificates do not chain to a trusted root
        │   └── CertificateExpiredError a certificate is not valid at the verification time
        ├── StaleDocumentError          the document is older than allowed, or from the future
        └── PolicyError                 a policy (PCRs, nonce, key, ...) rejected the document
            └── MeasurementMismatchError  a PCR differs from the expected value

Messages never contain secret material; they may contain public values such as PCRs.
"""

from __future__ import annotations

__all__ = [
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
]


class AttestationError(Exception):
    """Root of every error raised by the attestation library."""


class MalformedDocumentError(AttestationError):
    """The input is not a well-formed COSE_Sign1 attestation document.

    Attributes:
        field: the field or structure that is at fault (for example ``"payload.pcrs"``), if known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class UnsupportedAlgorithmError(MalformedDocumentError):
    """The COSE protected header names an algorithm other than ES384."""


class VerificationError(AttestationError):
    """A well-formed document failed an authenticity or acceptance check."""


class SignatureError(VerificationError):
    """The COSE_Sign1 signature does not verify under the leaf certificate's key."""


class CertificateChainError(VerificationError):
    """The leaf certificate does not chain to a trusted root at the verification time."""


class CertificateExpiredError(CertificateChainError):
    """A certificate in the chain is not valid at the verification time."""


class StaleDocumentError(VerificationError):
    """The document's timestamp is older than the allowed age, or too far in the future."""


class PolicyError(VerificationError):
    """A verification policy rejected an authentic document."""


class MeasurementMismatchError(PolicyError):
    """A PCR does not have the expected value.

    Attributes:
        index: the PCR index.
        expected: the expected value(s), lowercase hex.
        actual: the value in the document, lowercase hex, or ``None`` if the PCR is absent.
    """

    def __init__(self, *, index: int, expected: str | tuple[str, ...], actual: str | None) -> None:
        shown = expected if isinstance(expected, str) else " or ".join(expected)
        super().__init__(f"PCR{index} is {actual or 'absent'}, expected {shown}")
        self.index = index
        self.expected = expected
        self.actual = actual
