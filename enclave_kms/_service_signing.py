"""Sign and Verify (SIGN_VERIFY keys), GenerateMac and VerifyMac (HMAC keys).

The schemes are AWS KMS's ("Asymmetric key specs", "HMAC keys in AWS KMS"):

* ``RSASSA_PSS_SHA_*``: RSASSA-PSS (PKCS #1 v2.2 §8.1) with MGF1 of the same hash and a salt
  as long as the digest (AWS: "a 256-bit salt" for SHA-256, and so on);
* ``RSASSA_PKCS1_V1_5_SHA_*``: RSASSA-PKCS1-v1_5 (§8.2);
* ``ECDSA_SHA_*``: ECDSA, the signature DER-encoded as ``ECDSA-Sig-Value`` (RFC 3279), which
  is what KMS returns and what openssl and most libraries verify;
* ``HMAC_SHA_*``: HMAC (RFC 2104) with the key's random material.

``MessageType=DIGEST`` skips the hash step, so the message must be exactly one digest long.
Verify answers a signature that does not verify with ``KMSInvalidSignatureException`` and
VerifyMac a MAC that does not match with ``KMSInvalidMacException``; AWS never returns
``SignatureValid=false`` or ``MacValid=false``. MACs are compared in constant time.

Order of checks, as for the other cryptographic operations: validation, key resolution, key
usage and algorithm, key state, key policy (with ``kms:SigningAlgorithm`` and
``kms:MessageType``, or ``kms:MacAlgorithm``), DryRun, then the work. The message, signature
and MAC reach neither the audit record nor any error message.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from enclave_kms._keymaterial import KEY_SPECS
from enclave_kms._service_asymmetric import AsymmetricOperations
from enclave_kms._service_context import OpContext, exact_key_state
from enclave_kms._service_keys import key_id_checks
from enclave_kms._service_validation import (
    MODEL_MAC_ALGORITHMS,
    MODEL_MESSAGE_TYPES,
    MODEL_SIGNING_ALGORITHMS,
    Checks,
)
from enclave_kms.errors import (
    InvalidKeyUsageException,
    KMSInvalidMacException,
    KMSInvalidSignatureException,
    ValidationException,
)
from enclave_kms.model import (
    Caller,
    GenerateMacRequest,
    GenerateMacResponse,
    SignRequest,
    SignResponse,
    VerifyMacRequest,
    VerifyMacResponse,
    VerifyRequest,
    VerifyResponse,
)
from enclave_kms.store import KeyRecord

__all__ = ["SigningOperations"]

MAX_MESSAGE_BYTES = 4096
MAX_SIGNATURE_BYTES = 6144  # CiphertextType in the model, for Signature and Mac alike
_INVALID_SIGNATURE = "The signature does not verify for this message, KMS key and algorithm."
_INVALID_MAC = "The MAC does not match this message, KMS key and MAC algorithm."

# Every algorithm name this service implements ends in its hash.
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_224": hashes.SHA224,
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    return _HASHES[algorithm[-7:]]()


def _prepared(algorithm: str, digest: bool) -> hashes.HashAlgorithm | utils.Prehashed:
    h = _hash(algorithm)
    return utils.Prehashed(h) if digest else h


def _rsa_padding(algorithm: str) -> padding.AsymmetricPadding:
    if algorithm.startswith("RSASSA_PSS_"):
        h = _hash(algorithm)
        return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    return padding.PKCS1v15()


def _sign(
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    algorithm: str,
    message: bytes,
    digest: bool,
) -> bytes:
    chosen = _prepared(algorithm, digest)
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(message, _rsa_padding(algorithm), chosen)
    return private.sign(message, ec.ECDSA(chosen))


def _verify(
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    algorithm: str,
    message: bytes,
    signature: bytes,
    digest: bool,
) -> None:
    chosen = _prepared(algorithm, digest)
    try:
        if isinstance(private, rsa.RSAPrivateKey):
            private.public_key().verify(signature, message, _rsa_padding(algorithm), chosen)
        else:
            private.public_key().verify(signature, message, ec.ECDSA(chosen))
    except (InvalidSignature, ValueError):
        # ValueError: a signature that is not even well-formed (bad DER, wrong length).
        raise KMSInvalidSignatureException(_INVALID_SIGNATURE) from None


def _message_checks(checks: Checks, message: bytes | None) -> None:
    if checks.required(message, "Message"):
        checks.blob(message, "Message", 1, MAX_MESSAGE_BYTES)


class SigningOperations(AsymmetricOperations):
    """Sign, Verify, GenerateMac and VerifyMac."""

    # --- Sign / Verify ----------------------------------------------------------------------------

    def _signing_checks(
        self,
        checks: Checks,
        *,
        key_id: str | None,
        message: bytes | None,
        message_type: str | None,
        algorithm: str | None,
        grant_tokens: tuple[str, ...] | None,
    ) -> None:
        key_id_checks(checks, key_id)
        _message_checks(checks, message)
        checks.enum(message_type, "MessageType", MODEL_MESSAGE_TYPES)
        if checks.required(algorithm, "SigningAlgorithm"):
            checks.enum(algorithm, "SigningAlgorithm", MODEL_SIGNING_ALGORITHMS)
        checks.grant_tokens(grant_tokens)

    def _signing_key(
        self,
        op: OpContext,
        *,
        key_id: str,
        message: bytes,
        message_type: str,
        algorithm: str,
        dry_run: bool | None,
    ) -> KeyRecord:
        """Resolve, check usage, algorithm, message type, state and policy; honour DryRun.

        Raises:
            InvalidKeyUsageException: not a SIGN_VERIFY key, or not one of its algorithms.
            ValidationException: EXTERNAL_MU, or a DIGEST that is not one digest long.
        """
        key = self._resolve(op, key_id, allow_alias=True)
        arn = self._arn(key.key_id)
        if key.key_usage != "SIGN_VERIFY":
            raise InvalidKeyUsageException(f"{arn} key usage is {key.key_usage}, not SIGN_VERIFY.")
        info = KEY_SPECS.get(key.key_spec)
        if info is None or algorithm not in info.signing_algorithms:
            raise InvalidKeyUsageException(
                f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
            )
        # EXTERNAL_MU is ML-DSA's pre-computed representative (FIPS 204 §6.2); AWS refuses a
        # message type a key spec cannot use with ValidationException ("Message type DIGEST is
        # incompatible with key spec ML_DSA_44."), and no key here is an ML-DSA key.
        if message_type == "EXTERNAL_MU":
            raise ValidationException(
                f"Message type EXTERNAL_MU is incompatible with key spec {key.key_spec}."
            )
        if message_type == "DIGEST" and len(message) != _hash(algorithm).digest_size:
            raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
        self._authorize_use(
            op,
            key,
            op.operation,
            conditions={"kms:SigningAlgorithm": algorithm, "kms:MessageType": message_type},
        )
        self._finish_dry_run(op, dry_run)
        return key

    @exact_key_state
    def sign(self, caller: Caller, request: SignRequest) -> SignResponse:
        """Sign a message (or its digest) with the private key of a SIGN_VERIFY key.

        Raises:
            ValidationException: a bad member, EXTERNAL_MU, or a DIGEST of the wrong length.
            InvalidKeyUsageException: not a SIGN_VERIFY key, or an algorithm it does not offer.
            DisabledException / KMSInvalidStateException: the key's state.
            AccessDeniedException: the key policy does not allow ``kms:Sign``.
            DryRunOperationException: every check passed and DryRun was set.
        """
        r = request
        with self._operation("Sign", caller) as op:
            checks = Checks()
            self._signing_checks(
                checks,
                key_id=r.key_id,
                message=r.message,
                message_type=r.message_type,
                algorithm=r.signing_algorithm,
                grant_tokens=r.grant_tokens,
            )
            checks.raise_if_any()
            assert r.key_id and r.message is not None and r.signing_algorithm  # noqa: S101
            message_type = r.message_type or "RAW"
            key = self._signing_key(
                op,
                key_id=r.key_id,
                message=r.message,
                message_type=message_type,
                algorithm=r.signing_algorithm,
                dry_run=r.dry_run,
            )
            signature = _sign(
                self._private_key(key), r.signing_algorithm, r.message, message_type == "DIGEST"
            )
            return SignResponse(
                key_id=self._arn(key.key_id),
                signature=signature,
                signing_algorithm=r.signing_algorithm,
            )

    @exact_key_state
    def verify(self, caller: Caller, request: VerifyRequest) -> VerifyResponse:
        """Verify a signature with the public key of a SIGN_VERIFY key.

        Raises:
            KMSInvalidSignatureException: the signature does not verify (AWS never answers
                ``SignatureValid=false``).
            ValidationException: a bad member, EXTERNAL_MU, or a DIGEST of the wrong length.
            InvalidKeyUsageException: not a SIGN_VERIFY key, or an algorithm it does not offer.
            DisabledException / KMSInvalidStateException: the key's state.
            AccessDeniedException: the key policy does not allow ``kms:Verify``.
            DryRunOperationException: every check passed and DryRun was set.
        """
        r = request
        with self._operation("Verify", caller) as op:
            checks = Checks()
            self._signing_checks(
                checks,
                key_id=r.key_id,
                message=r.message,
                message_type=r.message_type,
                algorithm=r.signing_algorithm,
                grant_tokens=r.grant_tokens,
            )
            if checks.required(r.signature, "Signature"):
                checks.blob(r.signature, "Signature", 1, MAX_SIGNATURE_BYTES)
            checks.raise_if_any()
            assert r.key_id and r.message is not None and r.signing_algorithm  # noqa: S101
            assert r.signature is not None  # noqa: S101
            message_type = r.message_type or "RAW"
            key = self._signing_key(
                op,
                key_id=r.key_id,
                message=r.message,
                message_type=message_type,
                algorithm=r.signing_algorithm,
                dry_run=r.dry_run,
            )
            _verify(
                self._private_key(key),
                r.signing_algorithm,
                r.message,
                r.signature,
                message_type == "DIGEST",
            )
            return VerifyResponse(
                key_id=self._arn(key.key_id),
                signature_valid=True,
                signing_algorithm=r.signing_algorithm,
            )

    # --- GenerateMac / VerifyMac ------------------------------------------------------------------

    def _mac_key(
        self, op: OpContext, *, key_id: str, algorithm: str, dry_run: bool | None
    ) -> KeyRecord:
        """Resolve, check usage, algorithm, state and policy; honour DryRun.

        Raises:
            InvalidKeyUsageException: not an HMAC key, or not its MAC algorithm.
        """
        key = self._resolve(op, key_id, allow_alias=True)
        arn = self._arn(key.key_id)
        if key.key_usage != "GENERATE_VERIFY_MAC":
            raise InvalidKeyUsageException(
                f"{arn} key usage is {key.key_usage}, not GENERATE_VERIFY_MAC."
            )
        info = KEY_SPECS.get(key.key_spec)
        if info is None or algorithm not in info.mac_algorithms:
            raise InvalidKeyUsageException(
                f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
            )
        self._authorize_use(op, key, op.operation, conditions={"kms:MacAlgorithm": algorithm})
        self._finish_dry_run(op, dry_run)
        return key

    def _hmac(self, key: KeyRecord, algorithm: str, message: bytes) -> crypto_hmac.HMAC:
        h = crypto_hmac.HMAC(self._material(key.key_id, key.current_version), _hash(algorithm))
        h.update(message)
        return h

    @staticmethod
    def _mac_checks(
        checks: Checks,
        *,
        key_id: str | None,
        message: bytes | None,
        algorithm: str | None,
        grant_tokens: tuple[str, ...] | None,
    ) -> None:
        _message_checks(checks, message)
        key_id_checks(checks, key_id)
        if checks.required(algorithm, "MacAlgorithm"):
            checks.enum(algorithm, "MacAlgorithm", MODEL_MAC_ALGORITHMS)
        checks.grant_tokens(grant_tokens)

    @exact_key_state
    def generate_mac(self, caller: Caller, request: GenerateMacRequest) -> GenerateMacResponse:
        """GenerateMac: the HMAC of a message under an HMAC KMS key.

        Raises:
            ValidationException: a bad member.
            InvalidKeyUsageException: not an HMAC key, or not its MAC algorithm.
            DisabledException / KMSInvalidStateException: the key's state.
            AccessDeniedException: the key policy does not allow ``kms:GenerateMac``.
            DryRunOperationException: every check passed and DryRun was set.
        """
        r = request
        with self._operation("GenerateMac", caller) as op:
            checks = Checks()
            self._mac_checks(
                checks,
                key_id=r.key_id,
                message=r.message,
                algorithm=r.mac_algorithm,
                grant_tokens=r.grant_tokens,
            )
            checks.raise_if_any()
            assert r.key_id and r.message is not None and r.mac_algorithm  # noqa: S101
            key = self._mac_key(op, key_id=r.key_id, algorithm=r.mac_algorithm, dry_run=r.dry_run)
            mac = self._hmac(key, r.mac_algorithm, r.message).finalize()
            return GenerateMacResponse(
                mac=mac, mac_algorithm=r.mac_algorithm, key_id=self._arn(key.key_id)
            )

    @exact_key_state
    def verify_mac(self, caller: Caller, request: VerifyMacRequest) -> VerifyMacResponse:
        """VerifyMac: check a MAC in constant time.

        Raises:
            KMSInvalidMacException: the MAC does not match (AWS never answers
                ``MacValid=false``).
            ValidationException: a bad member.
            InvalidKeyUsageException: not an HMAC key, or not its MAC algorithm.
            DisabledException / KMSInvalidStateException: the key's state.
            AccessDeniedException: the key policy does not allow ``kms:VerifyMac``.
            DryRunOperationException: every check passed and DryRun was set.
        """
        r = request
        with self._operation("VerifyMac", caller) as op:
            checks = Checks()
            self._mac_checks(
                checks,
                key_id=r.key_id,
                message=r.message,
                algorithm=r.mac_algorithm,
                grant_tokens=r.grant_tokens,
            )
            if checks.required(r.mac, "Mac"):
                checks.blob(r.mac, "Mac", 1, MAX_SIGNATURE_BYTES)
            checks.raise_if_any()
            assert r.key_id and r.message is not None and r.mac_algorithm  # noqa: S101
            assert r.mac is not None  # noqa: S101
            key = self._mac_key(op, key_id=r.key_id, algorithm=r.mac_algorithm, dry_run=r.dry_run)
            try:
                # HMAC.verify compares in constant time (and refuses a MAC of another length).
                self._hmac(key, r.mac_algorithm, r.message).verify(r.mac)
            except InvalidSignature:
                raise KMSInvalidMacException(_INVALID_MAC) from None
            return VerifyMacResponse(
                key_id=self._arn(key.key_id), mac_valid=True, mac_algorithm=r.mac_algorithm
            )
