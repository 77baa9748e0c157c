"""The session's ephemeral RSA key pair and its cached attestation document.

kmstool generates one RSA key per client and asks the NSM for a document whose ``public_key``
is the DER SubjectPublicKeyInfo of that key (enclave-ecosystem.md §3). KMS encrypts
``CiphertextForRecipient`` to that key, so the private half never leaves this object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_kms import cms
from enclave_kms.enclave.errors import (
    AttestationUnavailableError,
    ConfigurationError,
    RecipientDecryptionError,
)

__all__ = ["KEY_ENCRYPTION_ALGORITHM", "NsmClient", "RecipientKey"]

# The only KeyEncryptionMechanism in the KMS model (kms-recipient.md §3).
KEY_ENCRYPTION_ALGORITHM = "RSAES_OAEP_SHA_256"

# kmstool (source/attestation.c) uses e = 65537 and can make 2048, 3072 or 4096-bit keys; KMS
# documents only 2048 (kms-recipient.md §7), so 2048 is the default.
_PUBLIC_EXPONENT = 65537
MIN_KEY_SIZE = 2048
MAX_KEY_SIZE = 4096

# The NSM leaf certificate lives about 3 hours; a document is refreshed long before that.
_LEAF_LIFETIME = timedelta(hours=3)


class NsmClient(Protocol):
    """What the session needs from an NSM client (``attestation.nsm.Nsm`` satisfies it)."""

    def get_attestation_doc(
        self,
        *,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
    ) -> bytes:
        """Return a COSE_Sign1 attestation document carrying the given fields."""
        ...


def check_key_size(key_size: int) -> int:
    """Return ``key_size`` if kmstool and KMS accept it, else raise ConfigurationError."""
    if (
        isinstance(key_size, bool)
        or not isinstance(key_size, int)
        or not MIN_KEY_SIZE <= key_size <= MAX_KEY_SIZE
        or key_size % 8
    ):
        raise ConfigurationError(
            f"RSA key size must be a multiple of 8 in {MIN_KEY_SIZE}..{MAX_KEY_SIZE}"
        )
    return key_size


def check_max_age(max_age: timedelta) -> timedelta:
    """Return ``max_age`` if it is positive and well under the leaf lifetime."""
    if not isinstance(max_age, timedelta) or not (timedelta(0) < max_age <= _LEAF_LIFETIME / 2):
        raise ConfigurationError("attestation max age must be > 0 and at most 90 minutes")
    return max_age


class RecipientKey:
    """An ephemeral RSA key pair plus the attestation document that binds it to this enclave.

    The private key is never exposed: callers hand in ``CiphertextForRecipient`` and get the
    plaintext back. The document is cached and replaced once it is ``max_age`` old, measured
    with ``clock`` (monotonic seconds), so KMS never sees a document near the end of its
    leaf certificate's life.
    """

    __slots__ = (
        "_clock",
        "_document",
        "_fetched_at",
        "_lock",
        "_max_age",
        "_nonce",
        "_nsm",
        "_private_key",
        "_user_data",
        "public_key_der",
    )

    def __init__(
        self,
        nsm: NsmClient,
        *,
        key_size: int,
        max_age: timedelta,
        clock: Callable[[], float],
        nonce: bytes | None,
        user_data: bytes | None,
    ) -> None:
        self._nsm = nsm
        self._max_age = check_max_age(max_age).total_seconds()
        self._clock = clock
        self._nonce = nonce
        self._user_data = user_data
        self._private_key = rsa.generate_private_key(
            public_exponent=_PUBLIC_EXPONENT, key_size=check_key_size(key_size)
        )
        self.public_key_der: bytes = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._document: bytes | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RecipientKey(rsa={self._private_key.key_size})"

    @property
    def key_size(self) -> int:
        """The RSA modulus size in bits."""
        return self._private_key.key_size

    def attestation_document(self) -> bytes:
        """Return a document for this key, fetching a fresh one when the cached one is too old.

        Raises:
            AttestationUnavailableError: the NSM failed or returned something that is not bytes.
        """
        with self._lock:
            now = self._clock()
            if self._document is None or now - self._fetched_at >= self._max_age:
                self._document = self._fetch()
                self._fetched_at = now
            return self._document

    def _fetch(self) -> bytes:
        try:
            document = self._nsm.get_attestation_doc(
                user_data=self._user_data, nonce=self._nonce, public_key=self.public_key_der
            )
        except AttestationUnavailableError:
            raise
        except Exception as exc:
            # The NSM client is pluggable (device, simulated, remote); whatever its transport
            # raises (NsmError, OSError, a CBOR error), the caller only learns that attestation
            # is unavailable, with the cause chained for debugging.
            raise AttestationUnavailableError(f"the NSM did not attest: {exc}") from exc
        if not isinstance(document, bytes | bytearray) or not document:
            raise AttestationUnavailableError("the NSM returned no attestation document")
        return bytes(document)

    def recipient(self) -> dict[str, object]:
        """The ``Recipient`` request member, as kmstool sends it (kms-recipient.md §2)."""
        return {
            "KeyEncryptionAlgorithm": KEY_ENCRYPTION_ALGORITHM,
            "AttestationDocument": self.attestation_document(),
        }

    def decrypt(self, ciphertext_for_recipient: bytes) -> bytearray:
        """Decrypt a ``CiphertextForRecipient`` CMS message addressed to this key.

        Raises:
            RecipientDecryptionError: the message is malformed or was not encrypted to this key.
        """
        try:
            plaintext = cms.decrypt_ciphertext_for_recipient(
                ciphertext_for_recipient, self._private_key
            )
        except cms.CmsError as exc:
            raise RecipientDecryptionError(f"cannot decrypt CiphertextForRecipient: {exc}") from exc
        # The CMS layer returns immutable bytes; this copy is the one the SDK can overwrite.
        return bytearray(plaintext)
