"""``EnclaveSession``: KMS calls with ``Recipient``, answered only through CiphertextForRecipient.

The session does what kmstool does (enclave-ecosystem.md §3), from Python and through boto3 so
the same code talks to AWS KMS and to a local enclave-kms server:

1. generate an ephemeral RSA key pair (2048 bits by default, e = 65537);
2. ask the NSM for an attestation document whose ``public_key`` is the DER SPKI of that key
   (cached, and refreshed well before its leaf certificate expires);
3. send ``Recipient = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument"}``
   with GenerateDataKey, Decrypt, GenerateRandom and GenerateDataKeyPair;
4. decrypt ``CiphertextForRecipient`` (CMS EnvelopedData, kms-recipient.md §4) with the private
   key. A response that carries the plaintext member instead is refused.

Plaintexts are returned in ``bytearray`` objects the caller can overwrite. Python cannot
guarantee erasure: immutable ``bytes`` copies exist inside botocore's response parsing and the
CMS decoder, and the garbage collector frees them when it likes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from enclave_kms.enclave._kms_client import Credentials, build_kms_client, call_kms
from enclave_kms.enclave._nsm import detect_nsm
from enclave_kms.enclave._recipient import NsmClient, RecipientKey
from enclave_kms.enclave.errors import RecipientDecryptionError, UnexpectedPlaintextError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

__all__ = [
    "DEFAULT_ATTESTATION_MAX_AGE",
    "Credentials",
    "DataKey",
    "DataKeyPair",
    "DecryptedData",
    "EnclaveSession",
]

# Well under the ~3 h life of the NSM leaf certificate, and short enough that a KMS with a
# freshness check (real KMS does not document one; enclave-kms makes it configurable) accepts it.
DEFAULT_ATTESTATION_MAX_AGE = timedelta(minutes=5)


def _wipe(buffer: bytearray) -> None:
    """Overwrite ``buffer`` with zeros in place (best effort; see the module docstring)."""
    buffer[:] = bytes(len(buffer))


@dataclass(frozen=True)
class DataKey:
    """A data key from GenerateDataKey.

    Attributes:
        key_id: the ARN of the KMS key that encrypted the data key.
        ciphertext_blob: the data key encrypted under the KMS key (store this).
        plaintext: the data key; overwrite it (``wipe()``) when done.
    """

    key_id: str
    ciphertext_blob: bytes
    plaintext: bytearray = field(repr=False)

    def wipe(self) -> None:
        """Overwrite the plaintext data key with zeros."""
        _wipe(self.plaintext)


@dataclass(frozen=True)
class DataKeyPair:
    """An asymmetric data key pair from GenerateDataKeyPair.

    Attributes:
        key_id: the ARN of the KMS key that encrypted the private key.
        key_pair_spec: the spec, for example ``"ECC_NIST_P256"``.
        public_key: the public key, DER SubjectPublicKeyInfo.
        private_key_ciphertext_blob: the private key encrypted under the KMS key.
        private_key: the private key, DER PKCS#8; overwrite it (``wipe()``) when done.
    """

    key_id: str
    key_pair_spec: str
    public_key: bytes
    private_key_ciphertext_blob: bytes
    private_key: bytearray = field(repr=False)

    def wipe(self) -> None:
        """Overwrite the plaintext private key with zeros."""
        _wipe(self.private_key)


@dataclass(frozen=True)
class DecryptedData:
    """The result of Decrypt.

    Attributes:
        key_id: the ARN of the KMS key that decrypted the ciphertext.
        encryption_algorithm: the algorithm KMS used (``SYMMETRIC_DEFAULT`` for symmetric keys).
        plaintext: the plaintext; overwrite it (``wipe()``) when done.
    """

    key_id: str
    encryption_algorithm: str
    plaintext: bytearray = field(repr=False)

    def wipe(self) -> None:
        """Overwrite the plaintext with zeros."""
        _wipe(self.plaintext)


class EnclaveSession:
    """KMS access from inside an enclave, with every plaintext delivered to the enclave only.

    Example::

        session = EnclaveSession(region="us-east-1")      # the real /dev/nsm, or an error
        key = session.generate_data_key("alias/app", key_spec="AES_256")
        ...
        key.wipe()

    Args:
        nsm: the NSM client. ``None`` detects the real ``/dev/nsm`` device and raises
            :class:`AttestationUnavailableError` when there is none; a simulated NSM is used
            only when passed here explicitly, never as a silent fallback.
        kms_client: a boto3 KMS client. When ``None`` one is built from ``region``,
            ``endpoint_url`` and ``credentials`` (or botocore's normal credential chain).
        region: AWS region for a client built here.
        endpoint_url: KMS endpoint for a client built here (a local enclave-kms server, or the
            loopback end of the vsock forwarder).
        credentials: explicit credentials handed in from the parent.
        key_size: RSA modulus size of the ephemeral key, 2048..4096.
        attestation_max_age: how long a cached attestation document is reused.
        clock: monotonic seconds, for the document cache (injectable for tests).
        nonce: optional ``nonce`` to put in every attestation document.
        user_data: optional ``user_data`` to put in every attestation document.

    Raises:
        AttestationUnavailableError: ``nsm`` is ``None`` and there is no NSM device.
        ConfigurationError: an argument is out of range, or botocore rejects the client settings.
    """

    def __init__(
        self,
        *,
        nsm: NsmClient | None = None,
        kms_client: KMSClient | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: Credentials | None = None,
        key_size: int = 2048,
        attestation_max_age: timedelta = DEFAULT_ATTESTATION_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
    ) -> None:
        self._recipient = RecipientKey(
            nsm if nsm is not None else detect_nsm(),
            key_size=key_size,
            max_age=attestation_max_age,
            clock=clock,
            nonce=nonce,
            user_data=user_data,
        )
        self._kms: KMSClient = (
            kms_client
            if kms_client is not None
            else build_kms_client(region=region, endpoint_url=endpoint_url, credentials=credentials)
        )

    def __repr__(self) -> str:
        return (
            f"EnclaveSession(rsa={self._recipient.key_size}, "
            f"endpoint={self._kms.meta.endpoint_url!r})"
        )

    @property
    def public_key_der(self) -> bytes:
        """The DER SubjectPublicKeyInfo of the session's ephemeral RSA key."""
        return self._recipient.public_key_der

    def attestation_document(self) -> bytes:
        """The current attestation document (fetched or refreshed from the NSM as needed).

        Raises:
            AttestationUnavailableError: the NSM failed.
        """
        return self._recipient.attestation_document()

    # --- KMS operations --------------------------------------------------------------------

    def generate_data_key(
        self,
        key_id: str,
        *,
        key_spec: str | None = "AES_256",
        number_of_bytes: int | None = None,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> DataKey:
        """GenerateDataKey with Recipient: the data key arrives only via CiphertextForRecipient.

        Give ``number_of_bytes`` (and ``key_spec=None``) for a length other than AES_256/128.

        Raises:
            AttestationUnavailableError: the NSM failed.
            KmsRequestError: KMS refused the request or could not be reached.
            UnexpectedPlaintextError: KMS returned ``Plaintext`` despite the Recipient.
            RecipientDecryptionError: CiphertextForRecipient is missing or undecryptable.
        """
        params: dict[str, Any] = {"KeyId": key_id}
        if number_of_bytes is not None:
            params["NumberOfBytes"] = number_of_bytes
        elif key_spec is not None:
            params["KeySpec"] = key_spec
        _add_common(params, encryption_context, grant_tokens)
        response, plaintext = self._call(
            "GenerateDataKey", self._kms.generate_data_key, params, "Plaintext"
        )
        return DataKey(
            key_id=str(response.get("KeyId", "")),
            ciphertext_blob=bytes(response.get("CiphertextBlob", b"")),
            plaintext=plaintext,
        )

    def decrypt(
        self,
        ciphertext_blob: bytes,
        *,
        key_id: str | None = None,
        encryption_algorithm: str | None = None,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> DecryptedData:
        """Decrypt with Recipient: the plaintext arrives only via CiphertextForRecipient.

        Raises:
            AttestationUnavailableError: the NSM failed.
            KmsRequestError: KMS refused the request or could not be reached.
            UnexpectedPlaintextError: KMS returned ``Plaintext`` despite the Recipient.
            RecipientDecryptionError: CiphertextForRecipient is missing or undecryptable.
        """
        params: dict[str, Any] = {"CiphertextBlob": ciphertext_blob}
        if key_id is not None:
            params["KeyId"] = key_id
        if encryption_algorithm is not None:
            params["EncryptionAlgorithm"] = encryption_algorithm
        _add_common(params, encryption_context, grant_tokens)
        response, plaintext = self._call("Decrypt", self._kms.decrypt, params, "Plaintext")
        return DecryptedData(
            key_id=str(response.get("KeyId", "")),
            encryption_algorithm=str(response.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT")),
            plaintext=plaintext,
        )

    def generate_random(self, number_of_bytes: int) -> bytearray:
        """GenerateRandom with Recipient (1..1024 bytes), delivered via CiphertextForRecipient.

        Raises:
            AttestationUnavailableError: the NSM failed.
            KmsRequestError: KMS refused the request or could not be reached.
            UnexpectedPlaintextError: KMS returned ``Plaintext`` despite the Recipient.
            RecipientDecryptionError: CiphertextForRecipient is missing or undecryptable.
        """
        params: dict[str, Any] = {"NumberOfBytes": number_of_bytes}
        _, plaintext = self._call("GenerateRandom", self._kms.generate_random, params, "Plaintext")
        return plaintext

    def generate_data_key_pair(
        self,
        key_id: str,
        key_pair_spec: str,
        *,
        encryption_context: Mapping[str, str] | None = None,
        grant_tokens: Sequence[str] | None = None,
    ) -> DataKeyPair:
        """GenerateDataKeyPair with Recipient: the private key arrives via CiphertextForRecipient.

        Raises:
            AttestationUnavailableError: the NSM failed.
            KmsRequestError: KMS refused the request or could not be reached.
            UnexpectedPlaintextError: KMS returned ``PrivateKeyPlaintext`` despite the Recipient.
            RecipientDecryptionError: CiphertextForRecipient is missing or undecryptable.
        """
        params: dict[str, Any] = {"KeyId": key_id, "KeyPairSpec": key_pair_spec}
        _add_common(params, encryption_context, grant_tokens)
        response, private_key = self._call(
            "GenerateDataKeyPair", self._kms.generate_data_key_pair, params, "PrivateKeyPlaintext"
        )
        return DataKeyPair(
            key_id=str(response.get("KeyId", "")),
            key_pair_spec=str(response.get("KeyPairSpec", key_pair_spec)),
            public_key=bytes(response.get("PublicKey", b"")),
            private_key_ciphertext_blob=bytes(response.get("PrivateKeyCiphertextBlob", b"")),
            private_key=private_key,
        )

    def _call(
        self,
        operation: str,
        method: Callable[..., Any],
        params: dict[str, Any],
        plaintext_member: str,
    ) -> tuple[Mapping[str, Any], bytearray]:
        params["Recipient"] = self._recipient.recipient()
        response: Mapping[str, Any] = call_kms(operation, method, params)
        # kms-recipient.md §2: with a Recipient, KMS omits the plaintext member. If it is
        # there, KMS ignored the attestation; the value is never used, whatever it holds.
        if plaintext_member in response:
            raise UnexpectedPlaintextError(
                f"KMS {operation} returned {plaintext_member} although a Recipient was sent; "
                "the endpoint ignores Recipient (misconfigured or hostile), refusing the response"
            )
        wrapped = response.get("CiphertextForRecipient")
        if not isinstance(wrapped, bytes | bytearray) or not wrapped:
            raise RecipientDecryptionError(
                f"KMS {operation} response carries no CiphertextForRecipient"
            )
        return response, self._recipient.decrypt(bytes(wrapped))


def _add_common(
    params: dict[str, Any],
    encryption_context: Mapping[str, str] | None,
    grant_tokens: Sequence[str] | None,
) -> None:
    if encryption_context:
        params["EncryptionContext"] = dict(encryption_context)
    if grant_tokens:
        params["GrantTokens"] = list(grant_tokens)
