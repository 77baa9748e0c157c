"""The enclave-side SDK: attest, call KMS with Recipient, decrypt CiphertextForRecipient.

Runs inside a Nitro Enclave (or, for tests and laptops, on a simulated NSM that must be passed
explicitly). It does what kmstool does, from Python and through boto3, so the same code talks to
AWS KMS and to a local ``enclave-kms serve``::

    from enclave_kms.enclave import Credentials, EnclaveSession, EnvelopeCipher

    session = EnclaveSession(                      # /dev/nsm, or AttestationUnavailableError
        region="us-east-1",
        credentials=Credentials(key_id, secret, token),   # handed in by the parent
    )
    data_key = session.generate_data_key("alias/app")      # via CiphertextForRecipient only
    ...
    data_key.wipe()

    cipher = EnvelopeCipher(session)
    message = cipher.encrypt(b"secret", key_id="alias/app", encryption_context={"app": "x"})
    assert cipher.decrypt(message) == b"secret"

Every failure is an :class:`EnclaveError`. Plaintexts come back in ``bytearray`` objects that
can be overwritten; Python cannot guarantee erasure of the copies botocore and the CMS decoder
make. The kmstool-compatible command line is ``enclave-kms enclave {decrypt,genkey,genrandom}``.
"""

from __future__ import annotations

from enclave_kms.enclave._kms_client import Credentials
from enclave_kms.enclave._nsm import SimulatedNsmWarning, detect_nsm
from enclave_kms.enclave.envelope import EnvelopeCipher, ParsedMessage, parse_message
from enclave_kms.enclave.errors import (
    AttestationUnavailableError,
    ConfigurationError,
    EnclaveError,
    EnvelopeAuthenticationError,
    EnvelopeError,
    EnvelopeFormatError,
    KmsRequestError,
    RecipientDecryptionError,
    UnexpectedPlaintextError,
)
from enclave_kms.enclave.session import (
    DEFAULT_ATTESTATION_MAX_AGE,
    DataKey,
    DataKeyPair,
    DecryptedData,
    EnclaveSession,
)

__all__ = [
    "DEFAULT_ATTESTATION_MAX_AGE",
    "AttestationUnavailableError",
    "ConfigurationError",
    "Credentials",
    "DataKey",
    "DataKeyPair",
    "DecryptedData",
    "EnclaveError",
    "EnclaveSession",
    "EnvelopeAuthenticationError",
    "EnvelopeCipher",
    "EnvelopeError",
    "EnvelopeFormatError",
    "KmsRequestError",
    "ParsedMessage",
    "RecipientDecryptionError",
    "SimulatedNsmWarning",
    "UnexpectedPlaintextError",
    "detect_nsm",
    "parse_message",
]
