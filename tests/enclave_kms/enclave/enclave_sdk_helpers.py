"""Helpers shared by the enclave SDK tests (imported by name; not fixtures)."""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import load_der_public_key

from attestation.document import parse_document
from attestation.nsm import Nsm
from enclave_kms.cms import build_ciphertext_for_recipient
from enclave_kms.enclave.session import EnclaveSession


class CountingNsm:
    """An NSM client wrapper that records every attestation request (to test the cache)."""

    def __init__(self, inner: Nsm) -> None:
        self.inner = inner
        self.requests: list[dict[str, bytes | None]] = []

    def get_attestation_doc(
        self,
        *,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
    ) -> bytes:
        self.requests.append({"user_data": user_data, "nonce": nonce, "public_key": public_key})
        return self.inner.get_attestation_doc(
            user_data=user_data, nonce=nonce, public_key=public_key
        )


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session_public_key(session: EnclaveSession) -> RSAPublicKey:
    key = load_der_public_key(session.public_key_der)
    assert isinstance(key, RSAPublicKey)
    return key


def recipient_of(session: EnclaveSession) -> dict[str, object]:
    """The Recipient member the session must send (its cached document)."""
    return {
        "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
        "AttestationDocument": session.attestation_document(),
    }


class FakeKms:
    """An in-process KMS double for unit tests: honours Recipient like KMS does.

    GenerateDataKey and Decrypt answer only through CiphertextForRecipient, encrypted to the
    ``public_key`` of the request's attestation document (not verified here; the server-backed
    tests cover verification). CiphertextBlob is AES-GCM under a master key with the
    encryption context as AAD, so an edited blob or context fails as on KMS.
    """

    KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/fake"

    def __init__(self) -> None:
        from types import SimpleNamespace

        self._master = AESGCM.generate_key(bit_length=256)
        self.meta = SimpleNamespace(endpoint_url="fake://kms")
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    @staticmethod
    def _aad(context: dict[str, str] | None) -> bytes:
        return json.dumps(context or {}, sort_keys=True).encode()

    @staticmethod
    def _recipient_key(params: dict[str, Any]) -> RSAPublicKey:
        recipient = params["Recipient"]
        assert recipient["KeyEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
        spki = parse_document(recipient["AttestationDocument"]).public_key
        assert spki is not None
        key = load_der_public_key(spki)
        assert isinstance(key, RSAPublicKey)
        return key

    def generate_data_key(self, **params: Any) -> dict[str, Any]:
        size = params.get("NumberOfBytes") or (16 if params.get("KeySpec") == "AES_128" else 32)
        data_key = os.urandom(size)
        nonce = os.urandom(12)
        blob = nonce + AESGCM(self._master).encrypt(
            nonce, data_key, self._aad(params.get("EncryptionContext"))
        )
        response: dict[str, Any] = {
            "KeyId": self.KEY_ARN,
            "CiphertextBlob": blob,
            "CiphertextForRecipient": build_ciphertext_for_recipient(
                data_key, self._recipient_key(params)
            ),
        }
        self.calls.append(("GenerateDataKey", params, response))
        return response

    def decrypt(self, **params: Any) -> dict[str, Any]:
        blob = params["CiphertextBlob"]
        try:
            data_key = AESGCM(self._master).decrypt(
                blob[:12], blob[12:], self._aad(params.get("EncryptionContext"))
            )
        except (InvalidTag, ValueError):
            raise ClientError(
                {"Error": {"Code": "InvalidCiphertextException", "Message": ""}}, "Decrypt"
            ) from None
        response: dict[str, Any] = {
            "KeyId": self.KEY_ARN,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
            "CiphertextForRecipient": build_ciphertext_for_recipient(
                data_key, self._recipient_key(params)
            ),
        }
        self.calls.append(("Decrypt", params, response))
        return response

    def generate_random(self, **params: Any) -> dict[str, Any]:
        random = os.urandom(params["NumberOfBytes"])
        response: dict[str, Any] = {
            "CiphertextForRecipient": build_ciphertext_for_recipient(
                random, self._recipient_key(params)
            )
        }
        self.calls.append(("GenerateRandom", params, response))
        return response
