"""Asymmetric keys: RSA encryption helpers, GetPublicKey, data key pairs, DeriveSharedSecret.

RSA KMS keys (ENCRYPT_DECRYPT) encrypt with RSAES-OAEP, SHA-1 or SHA-256 with MGF1 of the
same hash (AWS "Asymmetric key specs"); ciphertexts are raw RSA output, so Decrypt needs the
KeyId and EncryptionAlgorithm. ECC NIST keys (KEY_AGREEMENT) do ECDH and return the raw
shared secret (the x-coordinate), as KMS's DeriveSharedSecret does.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from enclave_kms._ciphertext import INVALID_CIPHERTEXT_MESSAGE
from enclave_kms._keymaterial import (
    KEY_SPECS,
    generate_data_key_pair,
    load_private_key,
    public_key_der,
    zero,
)
from enclave_kms._service_core import ServiceCore
from enclave_kms._service_keys import key_id_checks
from enclave_kms._service_recipient import check_recipient_shape, wrap_for
from enclave_kms._service_validation import MODEL_DATA_KEY_PAIR_SPECS, Checks
from enclave_kms.errors import (
    InvalidCiphertextException,
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)
from enclave_kms.model import (
    Caller,
    DeriveSharedSecretRequest,
    DeriveSharedSecretResponse,
    GenerateDataKeyPairRequest,
    GenerateDataKeyPairResponse,
    GenerateDataKeyPairWithoutPlaintextRequest,
    GenerateDataKeyPairWithoutPlaintextResponse,
    GetPublicKeyRequest,
    GetPublicKeyResponse,
    KeyAgreementAlgorithmSpec,
    RecipientInfo,
)
from enclave_kms.store import KeyRecord

__all__ = ["AsymmetricOperations"]

_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RSAES_OAEP_SHA_1": hashes.SHA1,
    "RSAES_OAEP_SHA_256": hashes.SHA256,
}


def _oaep(algorithm: str) -> padding.OAEP:
    h = _OAEP_HASHES[algorithm]()
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


class AsymmetricOperations(ServiceCore):
    """Operations and helpers for asymmetric KMS keys and data key pairs."""

    def _private_key(self, key: KeyRecord) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        loaded = load_private_key(self._material(key.key_id, key.current_version))
        if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise TypeError("unexpected key type in store")
        return loaded

    def _check_rsa_algorithm(self, key: KeyRecord, algorithm: str | None) -> str:
        info = KEY_SPECS[key.key_spec]
        if algorithm is None or algorithm not in info.encryption_algorithms:
            raise InvalidKeyUsageException(
                f"{self._arn(key.key_id)} key usage is ENCRYPT_DECRYPT with key spec "
                f"{key.key_spec}; EncryptionAlgorithm must be one of "
                f"{', '.join(info.encryption_algorithms)}."
            )
        return algorithm

    def _rsa_encrypt(self, key: KeyRecord, plaintext: bytes, algorithm: str) -> bytes:
        private = self._private_key(key)
        assert isinstance(private, rsa.RSAPrivateKey)  # noqa: S101 - RSA specs only
        h = _OAEP_HASHES[algorithm]()
        limit = private.key_size // 8 - 2 * h.digest_size - 2
        if len(plaintext) > limit:
            raise ValidationException(
                f"Plaintext is too long for {key.key_spec} with {algorithm}: at most {limit} bytes."
            )
        return private.public_key().encrypt(plaintext, _oaep(algorithm))

    def _rsa_decrypt(self, key: KeyRecord, ciphertext: bytes, algorithm: str) -> bytes:
        private = self._private_key(key)
        assert isinstance(private, rsa.RSAPrivateKey)  # noqa: S101
        try:
            return private.decrypt(ciphertext, _oaep(algorithm))
        except ValueError:
            raise InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE) from None

    # --- GetPublicKey -----------------------------------------------------------------------

    def get_public_key(self, caller: Caller, request: GetPublicKeyRequest) -> GetPublicKeyResponse:
        """GetPublicKey (DER SubjectPublicKeyInfo) of an asymmetric KMS key.

        Raises:
            UnsupportedOperationException: the key is symmetric (SYMMETRIC_DEFAULT or HMAC).
            DisabledException / KMSInvalidStateException: the key's state.
        """
        with self._operation("GetPublicKey", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.grant_tokens(request.grant_tokens)
            checks.raise_if_any()
            assert request.key_id is not None  # noqa: S101
            key = self._resolve(op, request.key_id, allow_alias=True)
            self._authorize_use(op, key, "GetPublicKey")
            info = KEY_SPECS.get(key.key_spec)
            if info is None or (info.rsa_bits is None and info.curve is None):
                raise UnsupportedOperationException(
                    f"{self._arn(key.key_id)} key spec {key.key_spec} has no public key."
                )
            meta = self._metadata(key)
            return GetPublicKeyResponse(
                key_id=self._arn(key.key_id),
                public_key=public_key_der(self._private_key(key)),
                customer_master_key_spec=key.key_spec,
                key_spec=key.key_spec,
                key_usage=key.key_usage,
                encryption_algorithms=meta.encryption_algorithms,
                signing_algorithms=meta.signing_algorithms,
                key_agreement_algorithms=meta.key_agreement_algorithms,
            )

    # --- data key pairs -----------------------------------------------------------------------

    def _data_key_pair(
        self,
        operation: str,
        caller: Caller,
        *,
        key_id: str | None,
        key_pair_spec: str | None,
        encryption_context: dict[str, str] | None,
        grant_tokens: tuple[str, ...] | None,
        recipient: RecipientInfo | None,
        dry_run: bool | None,
    ) -> tuple[str, bytearray, bytes, bytes, bytes | None]:
        with self._operation(operation, caller) as op:
            checks = Checks()
            key_id_checks(checks, key_id)
            if checks.required(key_pair_spec, "KeyPairSpec"):
                checks.enum(key_pair_spec, "KeyPairSpec", MODEL_DATA_KEY_PAIR_SPECS)
            checks.encryption_context(encryption_context, "EncryptionContext")
            checks.grant_tokens(grant_tokens)
            check_recipient_shape(checks, recipient)
            checks.raise_if_any()
            assert key_id is not None and key_pair_spec is not None  # noqa: S101
            op.note_context(encryption_context)
            key = self._resolve(op, key_id, allow_alias=True)
            self._require_symmetric_encrypt_key(key)
            self._verify_recipient(op, recipient)
            self._authorize_use(
                op,
                key,
                operation,
                encryption_context=encryption_context,
                conditions={
                    "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                    "kms:DataKeyPairSpec": key_pair_spec,
                },
            )
            self._finish_dry_run(op, dry_run)
            private, public = generate_data_key_pair(key_pair_spec)
            sealed = self._seal(key, private, encryption_context)
            cfr = wrap_for(op.recipient, private) if op.recipient is not None else None
            return self._arn(key.key_id), private, public, sealed, cfr

    def _require_symmetric_encrypt_key(self, key: KeyRecord) -> None:
        if key.key_spec != "SYMMETRIC_DEFAULT" or key.key_usage != "ENCRYPT_DECRYPT":
            raise InvalidKeyUsageException(
                f"{self._arn(key.key_id)} key usage is {key.key_usage} with key spec "
                f"{key.key_spec}, which is not valid for this operation."
            )

    def generate_data_key_pair(
        self, caller: Caller, request: GenerateDataKeyPairRequest
    ) -> GenerateDataKeyPairResponse:
        """GenerateDataKeyPair: a key pair, the private key also encrypted under the KMS key.

        With a ``Recipient`` the private key is returned only as ``CiphertextForRecipient``.

        Raises:
            UnsupportedOperationException: SM2, ECC_NIST_EDWARDS25519 or ML_KEM specs.
            InvalidKeyUsageException: the KMS key is not a symmetric encryption key.
        """
        arn, private, public, sealed, cfr = self._data_key_pair(
            "GenerateDataKeyPair",
            caller,
            key_id=request.key_id,
            key_pair_spec=request.key_pair_spec,
            encryption_context=_ctx(request.encryption_context),
            grant_tokens=request.grant_tokens,
            recipient=request.recipient,
            dry_run=request.dry_run,
        )
        try:
            return GenerateDataKeyPairResponse(
                private_key_ciphertext_blob=sealed,
                private_key_plaintext=None if cfr is not None else bytes(private),
                public_key=public,
                key_id=arn,
                key_pair_spec=request.key_pair_spec,
                ciphertext_for_recipient=cfr,
            )
        finally:
            zero(private)

    def generate_data_key_pair_without_plaintext(
        self, caller: Caller, request: GenerateDataKeyPairWithoutPlaintextRequest
    ) -> GenerateDataKeyPairWithoutPlaintextResponse:
        """GenerateDataKeyPairWithoutPlaintext.

        Raises:
            UnsupportedOperationException: SM2, ECC_NIST_EDWARDS25519 or ML_KEM specs.
        """
        arn, private, public, sealed, _ = self._data_key_pair(
            "GenerateDataKeyPairWithoutPlaintext",
            caller,
            key_id=request.key_id,
            key_pair_spec=request.key_pair_spec,
            encryption_context=_ctx(request.encryption_context),
            grant_tokens=request.grant_tokens,
            recipient=None,
            dry_run=request.dry_run,
        )
        zero(private)
        return GenerateDataKeyPairWithoutPlaintextResponse(
            private_key_ciphertext_blob=sealed,
            public_key=public,
            key_id=arn,
            key_pair_spec=request.key_pair_spec,
        )

    # --- DeriveSharedSecret ---------------------------------------------------------------------

    def derive_shared_secret(
        self, caller: Caller, request: DeriveSharedSecretRequest
    ) -> DeriveSharedSecretResponse:
        """DeriveSharedSecret: ECDH between an ECC KEY_AGREEMENT key and a peer public key.

        Raises:
            InvalidKeyUsageException: the key is not a KEY_AGREEMENT key.
            ValidationException: the public key is not a DER SPKI on the key's curve.
        """
        with self._operation("DeriveSharedSecret", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            if checks.required(request.key_agreement_algorithm, "KeyAgreementAlgorithm"):
                checks.enum(
                    request.key_agreement_algorithm,
                    "KeyAgreementAlgorithm",
                    [a.value for a in KeyAgreementAlgorithmSpec],
                )
            if checks.required(request.public_key, "PublicKey"):
                checks.blob(request.public_key, "PublicKey", 1, 8192)
            checks.grant_tokens(request.grant_tokens)
            check_recipient_shape(checks, request.recipient)
            checks.raise_if_any()
            assert request.key_id is not None and request.public_key is not None  # noqa: S101
            key = self._resolve(op, request.key_id, allow_alias=True)
            if key.key_usage != "KEY_AGREEMENT":
                raise InvalidKeyUsageException(
                    f"{self._arn(key.key_id)} key usage is {key.key_usage}, not KEY_AGREEMENT."
                )
            self._verify_recipient(op, request.recipient)
            self._authorize_use(
                op, key, "DeriveSharedSecret", conditions={"kms:KeyAgreementAlgorithm": "ECDH"}
            )
            private = self._private_key(key)
            assert isinstance(private, ec.EllipticCurvePrivateKey)  # noqa: S101
            try:
                peer = serialization.load_der_public_key(request.public_key)
            except (ValueError, TypeError):
                peer = None
            if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != (
                private.curve.name
            ):
                raise ValidationException(
                    f"PublicKey must be a DER SubjectPublicKeyInfo on the curve of {key.key_spec}."
                )
            self._finish_dry_run(op, request.dry_run)
            secret = bytearray(private.exchange(ec.ECDH(), peer))
            try:
                cfr = wrap_for(op.recipient, secret) if op.recipient is not None else None
                return DeriveSharedSecretResponse(
                    key_id=self._arn(key.key_id),
                    shared_secret=None if cfr is not None else bytes(secret),
                    ciphertext_for_recipient=cfr,
                    key_agreement_algorithm="ECDH",
                    key_origin="AWS_KMS",
                )
            finally:
                zero(secret)


def _ctx(ctx: object) -> dict[str, str] | None:
    """Copy an encryption context (validated later) into a plain dict."""
    if ctx is None:
        return None
    if not hasattr(ctx, "items"):
        return ctx  # type: ignore[return-value]  # let Checks.encryption_context reject it
    return dict(ctx.items())
