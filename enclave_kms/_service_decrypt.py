"""Decrypt and ReEncrypt, and the key lookup every symmetric operation shares.

Decrypt needs no KeyId for symmetric blobs: the blob's header names the key (UUID) and the
backing-key version, so every older version still decrypts after rotation; the header is not
authenticated until the blob opens, so a blob naming no key here is InvalidCiphertext, as on
AWS. Order of checks: validation, key resolution, key usage, key state, Recipient
attestation, key policy, DryRun, then the work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from enclave_kms import _ciphertext
from enclave_kms._ciphertext import INVALID_CIPHERTEXT_MESSAGE
from enclave_kms._service_asymmetric import AsymmetricOperations, _ctx
from enclave_kms._service_context import OpContext, exact_key_state
from enclave_kms._service_keys import key_id_checks
from enclave_kms._service_recipient import check_recipient_shape, wrap_for
from enclave_kms._service_validation import (
    MODEL_DRY_RUN_MODIFIERS,
    MODEL_ENCRYPTION_ALGORITHMS,
    Checks,
)
from enclave_kms.errors import (
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from enclave_kms.model import (
    Caller,
    DecryptRequest,
    DecryptResponse,
    ReEncryptRequest,
    ReEncryptResponse,
)
from enclave_kms.store import KeyRecord, RecordNotFoundError

__all__ = ["SYMMETRIC", "DecryptOperations"]

SYMMETRIC = "SYMMETRIC_DEFAULT"


class DecryptOperations(AsymmetricOperations):
    """Decrypt and ReEncrypt (symmetric blobs, and RSA through the helpers)."""

    def _encryption_key(self, op: OpContext, key_id: str) -> KeyRecord:
        key = self._resolve(op, key_id, allow_alias=True)
        if key.key_usage != "ENCRYPT_DECRYPT":
            raise InvalidKeyUsageException(
                f"{self._arn(key.key_id)} key usage is {key.key_usage}, not ENCRYPT_DECRYPT."
            )
        return key

    # --- Decrypt ----------------------------------------------------------------------------------

    def _decrypt_checks(
        self,
        checks: Checks,
        *,
        blob: bytes | None,
        context: Mapping[str, str] | None,
        key_id: str | None,
        algorithm: str | None,
        blob_member: str,
        context_member: str,
        key_member: str,
        algorithm_member: str,
    ) -> None:
        checks.blob(blob, blob_member, 1, 6144)
        checks.encryption_context(context, context_member)
        checks.string(key_id, key_member, 1, 2048)
        checks.enum(algorithm, algorithm_member, MODEL_ENCRYPTION_ALGORITHMS)

    def _find_decrypt_key(
        self, op: OpContext, blob: bytes | None, key_id: str | None
    ) -> tuple[KeyRecord, int | None]:
        """The key (and symmetric version) that must open ``blob``.

        Raises:
            IncorrectKeyException: ``key_id`` names a different key than the blob.
            InvalidCiphertextException: no KeyId and the blob is not ours.
        """
        if key_id is not None:
            key = self._encryption_key(op, key_id)
            if key.key_spec != SYMMETRIC:
                return key, None
            if blob is None:
                return key, key.current_version
            header = _ciphertext.read_header(blob)
            if header.key_id != key.key_id:
                raise IncorrectKeyException(
                    "The key ID in the request does not identify a CMK that can perform this "
                    "operation."
                )
            return key, header.key_version
        if blob is None:
            raise ValidationException(
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
                "constraint: Member must not be null"
            )
        header = _ciphertext.read_header(blob)
        try:
            key = self._load_key(op, header.key_id)
        except NotFoundException:
            # The header is not authenticated yet: a blob naming no key here is simply not a
            # valid ciphertext (AWS gives the same answer for a tampered blob).
            raise InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE) from None
        if key.key_usage != "ENCRYPT_DECRYPT":
            raise InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE)
        return key, header.key_version

    def _open(
        self,
        key: KeyRecord,
        version: int | None,
        blob: bytes,
        context: Mapping[str, str] | None,
        algorithm: str | None,
    ) -> tuple[bytes, str]:
        if key.key_spec == SYMMETRIC:
            if algorithm not in (None, SYMMETRIC):
                raise InvalidKeyUsageException(
                    f"{self._arn(key.key_id)} supports only SYMMETRIC_DEFAULT."
                )
            assert version is not None  # noqa: S101
            try:
                material = self._material(key.key_id, version)
            except RecordNotFoundError:
                raise InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE) from None
            plaintext = _ciphertext.open_blob(
                blob, backing_key=material, encryption_context=context or {}
            )
            return plaintext, SYMMETRIC
        alg = self._check_rsa_algorithm(key, algorithm)
        if context:
            raise ValidationException(
                "EncryptionContext is not supported with asymmetric KMS keys."
            )
        return self._rsa_decrypt(key, blob, alg), alg

    @exact_key_state
    def decrypt(self, caller: Caller, request: DecryptRequest) -> DecryptResponse:
        """Decrypt; KeyId is optional for symmetric blobs (the header names the key).

        Raises:
            InvalidCiphertextException: a damaged blob or a wrong encryption context.
            IncorrectKeyException: KeyId names another key than the blob's.
            DisabledException / KMSInvalidStateException: the key's state.
            AccessDeniedException: the key policy (or the attestation) refuses.
        """
        with self._operation("Decrypt", caller) as op:
            return self._after_attestation(
                op, request.recipient, lambda op: self._prepare_decrypt(op, request)
            )

    def _prepare_decrypt(
        self, op: OpContext, r: DecryptRequest
    ) -> Callable[[OpContext], DecryptResponse]:
        """Decrypt up to the Recipient's document: the checks and the key; returns the rest."""
        checks = Checks()
        context = _ctx(r.encryption_context)
        self._decrypt_checks(
            checks, blob=r.ciphertext_blob, context=context, key_id=r.key_id,
            algorithm=r.encryption_algorithm, blob_member="CiphertextBlob",
            context_member="EncryptionContext", key_member="KeyId",
            algorithm_member="EncryptionAlgorithm",
        )  # fmt: skip
        checks.grant_tokens(r.grant_tokens)
        check_recipient_shape(checks, r.recipient)
        for m in r.dry_run_modifiers or ():
            checks.enum(m, "DryRunModifiers.member", MODEL_DRY_RUN_MODIFIERS)
        ignore_blob = bool(r.dry_run) and "IGNORE_CIPHERTEXT" in (r.dry_run_modifiers or ())
        if not ignore_blob:
            checks.required(r.ciphertext_blob, "CiphertextBlob")
        checks.raise_if_any()
        op.note_context(context)
        blob = None if ignore_blob else r.ciphertext_blob
        key, version = self._find_decrypt_key(op, blob, r.key_id)

        def decide(op: OpContext) -> DecryptResponse:
            self._authorize_use(
                op,
                key,
                "Decrypt",
                encryption_context=context,
                conditions={"kms:EncryptionAlgorithm": r.encryption_algorithm or SYMMETRIC},
            )
            if blob is None:
                self._finish_dry_run(op, True)
            assert blob is not None  # noqa: S101
            plaintext, algorithm = self._open(key, version, blob, context, r.encryption_algorithm)
            self._finish_dry_run(op, r.dry_run)
            if op.recipient is not None:
                return DecryptResponse(
                    key_id=self._arn(key.key_id),
                    encryption_algorithm=algorithm,
                    ciphertext_for_recipient=wrap_for(op.recipient, plaintext),
                )
            return DecryptResponse(
                key_id=self._arn(key.key_id),
                plaintext=plaintext,
                encryption_algorithm=algorithm,
            )

        return decide

    # --- ReEncrypt --------------------------------------------------------------------------------

    @exact_key_state
    def re_encrypt(self, caller: Caller, request: ReEncryptRequest) -> ReEncryptResponse:
        """ReEncrypt: decrypt under the source key and encrypt under the destination key.

        Authorized as ``kms:ReEncryptFrom`` on the source key and ``kms:ReEncryptTo`` on the
        destination key (AWS's two permissions).

        Raises:
            InvalidCiphertextException / IncorrectKeyException: as for Decrypt.
            DisabledException / KMSInvalidStateException: either key's state.
        """
        with self._operation("ReEncrypt", caller) as op:
            r = request
            checks = Checks()
            src_ctx = _ctx(r.source_encryption_context)
            dst_ctx = _ctx(r.destination_encryption_context)
            self._decrypt_checks(
                checks, blob=r.ciphertext_blob, context=src_ctx, key_id=r.source_key_id,
                algorithm=r.source_encryption_algorithm, blob_member="CiphertextBlob",
                context_member="SourceEncryptionContext", key_member="SourceKeyId",
                algorithm_member="SourceEncryptionAlgorithm",
            )  # fmt: skip
            checks.required(r.ciphertext_blob, "CiphertextBlob")
            key_id_checks(checks, r.destination_key_id, "DestinationKeyId")
            checks.encryption_context(dst_ctx, "DestinationEncryptionContext")
            checks.enum(
                r.destination_encryption_algorithm,
                "DestinationEncryptionAlgorithm",
                MODEL_ENCRYPTION_ALGORITHMS,
            )
            checks.grant_tokens(r.grant_tokens)
            checks.raise_if_any()
            assert r.ciphertext_blob is not None and r.destination_key_id is not None  # noqa: S101
            op.note_context(src_ctx, dst_ctx)
            src, version = self._find_decrypt_key(op, r.ciphertext_blob, r.source_key_id)
            dst = self._encryption_key(op, r.destination_key_id)
            # kms:ReEncryptOnSameKey, offered to both permissions: one key on both sides.
            same_key = "true" if dst.key_id == src.key_id else "false"
            self._authorize_use(
                op,
                src,
                "ReEncryptFrom",
                encryption_context=src_ctx,
                conditions={
                    "kms:EncryptionAlgorithm": r.source_encryption_algorithm or SYMMETRIC,
                    "kms:ReEncryptOnSameKey": same_key,
                },
            )
            if dst.key_spec != SYMMETRIC:
                raise UnsupportedOperationException(
                    "ReEncrypt to an asymmetric key is not supported by this service."
                )
            self._authorize_use(
                op,
                dst,
                "ReEncryptTo",
                encryption_context=dst_ctx,
                conditions={
                    "kms:EncryptionAlgorithm": r.destination_encryption_algorithm or SYMMETRIC,
                    "kms:ReEncryptOnSameKey": same_key,
                },
            )
            plaintext, src_alg = self._open(
                src, version, r.ciphertext_blob, src_ctx, r.source_encryption_algorithm
            )
            self._finish_dry_run(op, r.dry_run)
            blob = self._seal(dst, plaintext, dst_ctx)
            return ReEncryptResponse(
                ciphertext_blob=blob,
                source_key_id=self._arn(src.key_id),
                key_id=self._arn(dst.key_id),
                source_encryption_algorithm=src_alg,
                destination_encryption_algorithm=SYMMETRIC,
            )
