"""Exceptions raised by the enclave SDK.

Every failure the SDK reports is an :class:`EnclaveError`; no NSM, botocore, CMS or
``cryptography`` exception escapes. The subclasses say where the failure happened:

    EnclaveError
    ├── ConfigurationError          the caller asked for something the SDK refuses (key size, ...)
    ├── AttestationUnavailableError the NSM could not be reached or refused to attest
    ├── KmsRequestError             KMS answered with an error, or could not be reached
    ├── UnexpectedPlaintextError    KMS returned plaintext although a Recipient was sent
    ├── RecipientDecryptionError    CiphertextForRecipient is missing, malformed or undecryptable
    └── EnvelopeError               an envelope message is malformed or fails authentication
        ├── EnvelopeFormatError         truncated, unknown version, trailing bytes, ...
        └── EnvelopeAuthenticationError the AES-GCM tag does not verify (tampering, wrong key)

Messages never contain key material, plaintexts or credentials.
"""

from __future__ import annotations

__all__ = [
    "AttestationUnavailableError",
    "ConfigurationError",
    "EnclaveError",
    "EnvelopeAuthenticationError",
    "EnvelopeError",
    "EnvelopeFormatError",
    "KmsRequestError",
    "RecipientDecryptionError",
    "UnexpectedPlaintextError",
]


class EnclaveError(Exception):
    """Root of every error raised by the enclave SDK."""


class ConfigurationError(EnclaveError):
    """An argument is outside what the SDK accepts (for example an RSA size below 2048)."""


class AttestationUnavailableError(EnclaveError):
    """No attestation document could be obtained: no NSM device, or the NSM returned an error."""


class KmsRequestError(EnclaveError):
    """A KMS call failed.

    Attributes:
        operation: the KMS operation name (for example ``"Decrypt"``).
        code: the AWS error code (``"AccessDeniedException"``, ...), or ``None`` when no answer
            came back from KMS (connection refused, timeout, missing credentials, ...).
        aws_message: the message KMS sent with the error, or the client-side reason.
    """

    def __init__(self, operation: str, code: str | None, aws_message: str) -> None:
        shown = code or "no response from KMS"
        super().__init__(f"KMS {operation} failed: {shown}: {aws_message}")
        self.operation = operation
        self.code = code
        self.aws_message = aws_message


class UnexpectedPlaintextError(EnclaveError):
    """KMS answered a request that carried a Recipient with a plaintext field.

    A KMS that honours ``Recipient`` omits the plaintext (kms-recipient.md §2). One that returns
    it anyway ignored the attestation (a misconfigured emulator) or is hostile; the SDK never
    uses such a value.
    """


class RecipientDecryptionError(EnclaveError):
    """``CiphertextForRecipient`` is absent, not a valid CMS message, or not for this session."""


class EnvelopeError(EnclaveError):
    """An envelope-encrypted message could not be decrypted."""


class EnvelopeFormatError(EnvelopeError):
    """The message is not a well-formed envelope (truncated, unknown version, trailing bytes)."""


class EnvelopeAuthenticationError(EnvelopeError):
    """The AES-GCM authentication failed: the message was modified or the key is wrong."""
