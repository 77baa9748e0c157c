"""AWS KMS errors, one class per AWS error name.

Each class carries the AWS ``__type`` it is sent as and the HTTP status AWS answers with. The
domain raises these; the server maps them to the wire in one place (``{"__type", "message"}``).

Status codes: the KMS model marks only ``KMSInternalException`` and ``DependencyTimeoutException``
as server faults (5xx); every other error, modelled or AWS-wide, is a client error answered
with 400 (kms-recipient.md §1).

Messages follow AWS's style, name the field and the reason for validation errors, and never
contain plaintexts, key material or the reason a policy denied a request (that goes to the audit
record only).
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedException",
    "AlreadyExistsException",
    "ConflictException",
    "DependencyTimeoutException",
    "DisabledException",
    "DryRunOperationException",
    "IncompleteSignatureException",
    "IncorrectKeyException",
    "InvalidAliasNameException",
    "InvalidArnException",
    "InvalidCiphertextException",
    "InvalidGrantTokenException",
    "InvalidKeyUsageException",
    "InvalidMarkerException",
    "InvalidSignatureException",
    "KMSInternalException",
    "KMSInvalidMacException",
    "KMSInvalidSignatureException",
    "KMSInvalidStateException",
    "KeyUnavailableException",
    "KmsError",
    "LimitExceededException",
    "MalformedPolicyDocumentException",
    "MissingAuthenticationTokenException",
    "NotFoundException",
    "RequestEntityTooLargeException",
    "RequestTimeoutException",
    "SerializationException",
    "TagException",
    "ThrottlingException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "UnsupportedOperationException",
    "ValidationException",
    "error_class_for",
]


class KmsError(Exception):
    """Root of every error the KMS service raises; carries the AWS wire name and status.

    Attributes:
        aws_type: the ``__type`` sent on the wire (the class name unless overridden).
        http_status: the HTTP status code AWS answers with.
        message: the client-facing message.
    """

    aws_type: str = "KmsError"
    http_status: int = 400

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "aws_type" not in cls.__dict__:
            cls.aws_type = cls.__name__

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# --- modelled KMS errors (botocore kms service model) -------------------------------------------


class AlreadyExistsException(KmsError):
    """The resource (for example an alias name) already exists."""


class ConflictException(KmsError):
    """The request conflicts with the current state of the resource."""


class DependencyTimeoutException(KmsError):
    """A dependency (for example the store) did not answer in time."""

    http_status = 503


class DisabledException(KmsError):
    """The KMS key is disabled."""


class DryRunOperationException(KmsError):
    """Every check passed; the request was a dry run and did nothing."""


class IncorrectKeyException(KmsError):
    """The ciphertext was not produced under the KMS key named in the request."""


class InvalidAliasNameException(KmsError):
    """The alias name is not valid (format, or the reserved ``alias/aws/`` prefix)."""


class InvalidArnException(KmsError):
    """An ARN in the request is not valid."""


class InvalidCiphertextException(KmsError):
    """The ciphertext, or its encryption context, is not valid."""


class InvalidGrantTokenException(KmsError):
    """A grant token is not valid."""


class InvalidKeyUsageException(KmsError):
    """The key's usage or spec does not allow the requested operation."""


class InvalidMarkerException(KmsError):
    """The pagination marker is not valid."""


class KMSInternalException(KmsError):
    """An internal error; the only modelled server fault besides DependencyTimeout."""

    http_status = 500


class KMSInvalidMacException(KmsError):
    """VerifyMac: the MAC does not match the message, HMAC key and MAC algorithm."""


class KMSInvalidSignatureException(KmsError):
    """Verify: the signature does not verify for the message, key and signing algorithm.

    Not to be confused with :class:`InvalidSignatureException`, the SigV4 request-signature
    error: AWS answers a bad KMS signature with this one, never ``SignatureValid=false``.
    """


class KMSInvalidStateException(KmsError):
    """The key's state (for example PendingDeletion) does not allow the operation."""


class KeyUnavailableException(KmsError):
    """The key material is not available."""

    http_status = 500


class LimitExceededException(KmsError):
    """A quota was exceeded."""


class MalformedPolicyDocumentException(KmsError):
    """The key policy is not valid JSON or not a valid policy."""


class NotFoundException(KmsError):
    """The key, alias or other resource does not exist."""


class TagException(KmsError):
    """A tag is not valid."""


class UnsupportedOperationException(KmsError):
    """The operation, or the requested spec, is not supported."""


# --- AWS-wide errors (not in the KMS model, but sent by AWS) ------------------------------------


class AccessDeniedException(KmsError):
    """The principal is not allowed to perform the operation (policy or attestation conditions)."""


class ValidationException(KmsError):
    """A parameter violates a constraint (length, range, enum, required)."""


class SerializationException(KmsError):
    """The request body is not valid JSON, or a member has the wrong JSON type."""


class UnknownOperationException(KmsError):
    """The ``X-Amz-Target`` does not name a KMS operation."""


class ThrottlingException(KmsError):
    """Too many requests."""


class IncompleteSignatureException(KmsError):
    """The request's SigV4 authorization is incomplete or malformed."""


class InvalidSignatureException(KmsError):
    """The SigV4 signature does not match, or the request time is outside the allowed window."""


class MissingAuthenticationTokenException(KmsError):
    """The request carries no authentication at all."""


class UnrecognizedClientException(KmsError):
    """The access key id is not known."""


class RequestTimeoutException(KmsError):
    """The request body did not arrive in time (a slow or stalled client)."""

    http_status = 408


class RequestEntityTooLargeException(KmsError):
    """The request body exceeds the size limit."""

    http_status = 413


def error_class_for(aws_type: str) -> type[KmsError] | None:
    """Return the exception class for an AWS error name, or ``None`` if it is not one of ours."""
    found = globals().get(aws_type)
    if isinstance(found, type) and issubclass(found, KmsError):
        return found
    return None
