"""Symmetric data-key family: GenerateDataKey(WithoutPlaintext), Encrypt, GenerateRandom
(Decrypt and ReEncrypt: :mod:`enclave_kms._service_decrypt`).

Ciphertext blobs come from ``_ciphertext.seal``: the header names the key (UUID) and the
backing-key version, so Decrypt needs no KeyId and every older version still decrypts after
rotation; the encryption context is bound as AAD. Order of checks, for every operation:
validation, key resolution, key usage, key state, Recipient attestation, key policy, DryRun,
then the work — so DryRun performs every check and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from enclave_kms._keymaterial import zero
from enclave_kms._service_asymmetric import _ctx
from enclave_kms._service_context import OpContext, exact_key_state
from enclave_kms._service_decrypt import SYMMETRIC, DecryptOperations
from enclave_kms._service_keys import key_id_checks
from enclave_kms._service_recipient import check_recipient_shape, wrap_for
from enclave_kms._service_validation import (
    MODEL_DATA_KEY_SPECS,
    MODEL_ENCRYPTION_ALGORITHMS,
    Checks,
)
from enclave_kms.errors import (
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)
from enclave_kms.model import (
    Caller,
    EncryptRequest,
    EncryptResponse,
    GenerateDataKeyRequest,
    GenerateDataKeyResponse,
    GenerateDataKeyWithoutPlaintextRequest,
    GenerateDataKeyWithoutPlaintextResponse,
    GenerateRandomRequest,
    GenerateRandomResponse,
    RecipientInfo,
)
from enclave_kms.store import KeyRecord

__all__ = ["CryptoOperations"]

_KEY_SPEC_BYTES = {"AES_256": 32, "AES_128": 16}
_EITHER = "Please specify either number of bytes or key spec."


def _data_key_checks(
    checks: Checks,
    *,
    key_id: str | None,
    key_spec: str | None,
    number_of_bytes: int | None,
    context: Mapping[str, str] | None,
    grant_tokens: tuple[str, ...] | None,
    recipient: RecipientInfo | None,
) -> None:
    key_id_checks(checks, key_id)
    checks.enum(key_spec, "KeySpec", MODEL_DATA_KEY_SPECS)
    checks.integer(number_of_bytes, "NumberOfBytes", 1, 1024)
    checks.encryption_context(context, "EncryptionContext")
    checks.grant_tokens(grant_tokens)
    check_recipient_shape(checks, recipient)
    checks.raise_if_any()
    # Exactly one of KeySpec / NumberOfBytes (the model marks neither required).
    if (key_spec is None) == (number_of_bytes is None):
        raise ValidationException(_EITHER)


class CryptoOperations(DecryptOperations):
    """Symmetric cryptographic operations (and RSA Encrypt through the helpers)."""

    def _generate_data_key(
        self,
        op: OpContext,
        *,
        key_id: str | None,
        key_spec: str | None,
        number_of_bytes: int | None,
        context: Mapping[str, str] | None,
        grant_tokens: tuple[str, ...] | None,
        recipient: RecipientInfo | None,
        dry_run: bool | None,
    ) -> tuple[KeyRecord, bytearray, bytes, bytes | None]:
        """The key, the data key, its CiphertextBlob and its CiphertextForRecipient (if any).

        The caller owns the data key and must zero it.
        """
        # Filled once the request is checked; owned here so it is zeroed whatever happens.
        data_key = bytearray()

        def prepare(op: OpContext) -> Callable[[OpContext], tuple[KeyRecord, bytes, bytes | None]]:
            checks = Checks()
            _data_key_checks(
                checks,
                key_id=key_id,
                key_spec=key_spec,
                number_of_bytes=number_of_bytes,
                context=context,
                grant_tokens=grant_tokens,
                recipient=recipient,
            )
            assert key_id is not None  # noqa: S101
            op.note_context(context)
            key = self._encryption_key(op, key_id)
            self._require_symmetric_encrypt_key(key)
            size = _KEY_SPEC_BYTES[key_spec] if key_spec is not None else int(number_of_bytes or 0)
            data_key.extend(self._randbytes(size))

            def decide(op: OpContext) -> tuple[KeyRecord, bytes, bytes | None]:
                # Data keys are encrypted with the symmetric algorithm (kms:EncryptionAlgorithm).
                self._authorize_use(
                    op,
                    key,
                    op.operation,
                    encryption_context=context,
                    conditions={"kms:EncryptionAlgorithm": SYMMETRIC},
                )
                self._finish_dry_run(op, dry_run)
                blob = self._seal(key, data_key, context)
                wrapped = wrap_for(op.recipient, data_key) if op.recipient is not None else None
                return key, blob, wrapped

            return decide

        try:
            key, blob, wrapped = self._after_attestation(op, recipient, prepare)
        except BaseException:
            zero(data_key)
            raise
        return key, data_key, blob, wrapped

    @exact_key_state
    def generate_data_key(
        self, caller: Caller, request: GenerateDataKeyRequest
    ) -> GenerateDataKeyResponse:
        """GenerateDataKey: a data key in plaintext (or for a Recipient) and encrypted.

        Raises:
            ValidationException: neither or both of KeySpec and NumberOfBytes, or a bad member.
            InvalidKeyUsageException: the key is not a symmetric encryption key.
            DisabledException / KMSInvalidStateException: the key's state.
            AccessDeniedException: the key policy (or the attestation) refuses.
            DryRunOperationException: every check passed and DryRun was set.
        """
        with self._operation("GenerateDataKey", caller) as op:
            key, data_key, blob, wrapped = self._generate_data_key(
                op,
                key_id=request.key_id,
                key_spec=request.key_spec,
                number_of_bytes=request.number_of_bytes,
                context=_ctx(request.encryption_context),
                grant_tokens=request.grant_tokens,
                recipient=request.recipient,
                dry_run=request.dry_run,
            )
            try:
                if wrapped is not None:
                    return GenerateDataKeyResponse(
                        ciphertext_blob=blob,
                        key_id=self._arn(key.key_id),
                        ciphertext_for_recipient=wrapped,
                    )
                return GenerateDataKeyResponse(
                    ciphertext_blob=blob, plaintext=bytes(data_key), key_id=self._arn(key.key_id)
                )
            finally:
                zero(data_key)

    @exact_key_state
    def generate_data_key_without_plaintext(
        self, caller: Caller, request: GenerateDataKeyWithoutPlaintextRequest
    ) -> GenerateDataKeyWithoutPlaintextResponse:
        """GenerateDataKeyWithoutPlaintext: only the encrypted data key.

        Raises:
            ValidationException: neither or both of KeySpec and NumberOfBytes, or a bad member.
        """
        with self._operation("GenerateDataKeyWithoutPlaintext", caller) as op:
            key, data_key, blob, _ = self._generate_data_key(
                op,
                key_id=request.key_id,
                key_spec=request.key_spec,
                number_of_bytes=request.number_of_bytes,
                context=_ctx(request.encryption_context),
                grant_tokens=request.grant_tokens,
                recipient=None,
                dry_run=request.dry_run,
            )
            zero(data_key)
            return GenerateDataKeyWithoutPlaintextResponse(
                ciphertext_blob=blob, key_id=self._arn(key.key_id)
            )

    # --- Encrypt ----------------------------------------------------------------------------------

    @exact_key_state
    def encrypt(self, caller: Caller, request: EncryptRequest) -> EncryptResponse:
        """Encrypt up to 4096 bytes (symmetric) or an RSA-OAEP block (RSA keys).

        Raises:
            InvalidKeyUsageException: the key or algorithm cannot encrypt.
            ValidationException: a bad member, or an encryption context with an RSA key.
        """
        with self._operation("Encrypt", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            if checks.required(request.plaintext, "Plaintext"):
                checks.blob(request.plaintext, "Plaintext", 1, 4096)
            context = _ctx(request.encryption_context)
            checks.encryption_context(context, "EncryptionContext")
            checks.enum(
                request.encryption_algorithm, "EncryptionAlgorithm", MODEL_ENCRYPTION_ALGORITHMS
            )
            checks.grant_tokens(request.grant_tokens)
            checks.raise_if_any()
            assert request.key_id is not None and request.plaintext is not None  # noqa: S101
            op.note_context(context)
            key = self._encryption_key(op, request.key_id)
            algorithm = request.encryption_algorithm or SYMMETRIC
            if key.key_spec == SYMMETRIC:
                if algorithm != SYMMETRIC:
                    raise InvalidKeyUsageException(
                        f"{self._arn(key.key_id)} supports only SYMMETRIC_DEFAULT."
                    )
            else:
                algorithm = self._check_rsa_algorithm(key, request.encryption_algorithm)
                if context:
                    raise ValidationException(
                        "EncryptionContext is not supported with asymmetric KMS keys."
                    )
            self._authorize_use(
                op,
                key,
                "Encrypt",
                encryption_context=context,
                conditions={"kms:EncryptionAlgorithm": algorithm},
            )
            self._finish_dry_run(op, request.dry_run)
            if key.key_spec == SYMMETRIC:
                blob = self._seal(key, request.plaintext, context)
            else:
                blob = self._rsa_encrypt(key, request.plaintext, algorithm)
            return EncryptResponse(
                ciphertext_blob=blob, key_id=self._arn(key.key_id), encryption_algorithm=algorithm
            )

    # --- GenerateRandom ---------------------------------------------------------------------------

    def generate_random(
        self, caller: Caller, request: GenerateRandomRequest
    ) -> GenerateRandomResponse:
        """GenerateRandom: 1..1024 random bytes (no key, so no key policy applies).

        Raises:
            ValidationException: NumberOfBytes missing or out of range (AWS treats it as
                required although the model does not), or a bad Recipient.
            UnsupportedOperationException: a CustomKeyStoreId.
        """
        with self._operation("GenerateRandom", caller) as op:
            checks = Checks()
            checks.integer(request.number_of_bytes, "NumberOfBytes", 1, 1024)
            checks.string(request.custom_key_store_id, "CustomKeyStoreId", 1, 64)
            check_recipient_shape(checks, request.recipient)
            checks.raise_if_any()
            if request.number_of_bytes is None:
                raise ValidationException(_EITHER)
            if request.custom_key_store_id is not None:
                raise UnsupportedOperationException("Custom key stores are not supported.")
            self._verify_recipient(op, request.recipient)
            data = bytearray(self._randbytes(request.number_of_bytes))
            try:
                if op.recipient is not None:
                    return GenerateRandomResponse(
                        ciphertext_for_recipient=wrap_for(op.recipient, data)
                    )
                return GenerateRandomResponse(plaintext=bytes(data))
            finally:
                zero(data)
