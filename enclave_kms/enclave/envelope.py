"""Envelope encryption of application data with a KMS data key delivered to the enclave.

:meth:`EnvelopeCipher.encrypt` asks KMS (through an :class:`EnclaveSession`, so with
``Recipient``) for a fresh AES-256 data key, encrypts the data with AES-256-GCM and returns a
self-describing message: a versioned header, the data key's CiphertextBlob, the encryption
context, a 12-byte nonce and the ciphertext, with the header and context as AAD (the layout is
in ``_envelope_format``). :meth:`EnvelopeCipher.decrypt` sends the CiphertextBlob back to KMS
Decrypt, again with ``Recipient``, so only an enclave that the key policy admits can read the
message.

Key hygiene: the data key is held in a ``bytearray`` and overwritten as soon as the AES-GCM
operation is done, on success and on failure. Python cannot guarantee erasure: botocore's
response parsing, the CMS decoder and the AES binding hold immutable ``bytes`` copies that the
garbage collector frees when it likes.

Example::

    cipher = EnvelopeCipher(session)
    message = cipher.encrypt(b"secret", key_id="alias/app", encryption_context={"app": "x"})
    assert cipher.decrypt(message) == b"secret"
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave_kms.enclave._envelope_format import (
    NONCE_SIZE,
    ParsedMessage,
    encode_header,
    parse_message,
)
from enclave_kms.enclave.errors import (
    ConfigurationError,
    EnvelopeAuthenticationError,
    EnvelopeFormatError,
)
from enclave_kms.enclave.session import EnclaveSession

__all__ = ["EnvelopeCipher", "ParsedMessage", "parse_message"]

_DATA_KEY_SIZE = 32  # AES-256
# cryptography's AESGCM refuses inputs of 2**31 bytes or more.
_MAX_PLAINTEXT = 2**31 - 1 - 16


def _wipe(buffer: bytearray) -> None:
    buffer[:] = bytes(len(buffer))


class EnvelopeCipher:
    """Envelope encryption bound to an :class:`EnclaveSession`.

    Args:
        session: the session used for GenerateDataKey and Decrypt (both with Recipient).
        randbytes: source of the 12-byte nonce (a fresh data key per message means a nonce
            can never repeat under one key; the parameter is for tests).
    """

    def __init__(
        self, session: EnclaveSession, *, randbytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        self._session = session
        self._randbytes = randbytes

    def __repr__(self) -> str:
        return f"EnvelopeCipher({self._session!r})"

    def encrypt(
        self,
        plaintext: bytes,
        *,
        key_id: str,
        encryption_context: Mapping[str, str] | None = None,
    ) -> bytes:
        """Encrypt ``plaintext`` under a fresh data key from KMS key ``key_id``.

        Args:
            plaintext: the data to encrypt.
            key_id: the KMS key (id, ARN or alias) that encrypts the data key.
            encryption_context: non-secret strings bound to the message; KMS requires the same
                context for Decrypt, and the message carries it in its authenticated header.

        Returns:
            The envelope message.

        Raises:
            ConfigurationError: the plaintext or context does not fit the format.
            AttestationUnavailableError: the NSM failed.
            KmsRequestError: KMS refused GenerateDataKey or could not be reached.
            UnexpectedPlaintextError: KMS returned the data key in the clear.
            RecipientDecryptionError: the data key could not be recovered.
        """
        if len(plaintext) > _MAX_PLAINTEXT:
            raise ConfigurationError("plaintext is too large for one envelope message")
        context = dict(encryption_context or {})
        data_key = self._session.generate_data_key(
            key_id, key_spec="AES_256", encryption_context=context
        )
        try:
            if len(data_key.plaintext) != _DATA_KEY_SIZE:
                raise ConfigurationError("KMS returned a data key that is not 32 bytes")
            header = encode_header(data_key.ciphertext_blob, context)
            nonce = bytes(self._randbytes(NONCE_SIZE))
            if len(nonce) != NONCE_SIZE:
                raise ConfigurationError("randbytes returned the wrong number of bytes")
            ciphertext = AESGCM(data_key.plaintext).encrypt(nonce, bytes(plaintext), header)
        finally:
            data_key.wipe()
        return header + nonce + ciphertext

    def decrypt(self, message: bytes, *, key_id: str | None = None) -> bytes:
        """Decrypt an envelope message; nothing is returned unless the whole message verifies.

        Args:
            message: the bytes from :meth:`encrypt`.
            key_id: if given, KMS refuses to decrypt the data key under any other KMS key.

        Returns:
            The plaintext.

        Raises:
            EnvelopeFormatError: the message is truncated or malformed (checked before any
                KMS call).
            EnvelopeAuthenticationError: the AES-GCM tag does not verify (the message was
                modified).
            AttestationUnavailableError: the NSM failed.
            KmsRequestError: KMS refused Decrypt (for example ``InvalidCiphertextException``
                for an edited CiphertextBlob or context, or ``AccessDeniedException``).
            UnexpectedPlaintextError: KMS returned the data key in the clear.
            RecipientDecryptionError: the data key could not be recovered.
        """
        parsed = parse_message(message)
        decrypted = self._session.decrypt(
            parsed.ciphertext_blob,
            key_id=key_id,
            encryption_context=dict(parsed.encryption_context),
        )
        try:
            if len(decrypted.plaintext) != _DATA_KEY_SIZE:
                raise EnvelopeFormatError("the CiphertextBlob does not hold a 32-byte data key")
            aead = AESGCM(decrypted.plaintext)
            return aead.decrypt(parsed.nonce, parsed.ciphertext, parsed.header)
        except InvalidTag:
            raise EnvelopeAuthenticationError(
                "envelope authentication failed: the message was modified"
            ) from None
        finally:
            decrypted.wipe()
