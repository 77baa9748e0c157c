"""Verify a Nitro attestation document end to end: envelope, schema, chain, signature, policy.

The numbered steps in :meth:`Verifier.verify` are those of nitro-attestation.md §5 (the AWS doc's
own procedure, corrected for what real hardware emits).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from ._chain import ChainValidator, ValidatedChain
from ._cose import Sign1, decode_sign1, verify_es384
from ._doccache import SignedDocumentCache
from ._helper_thread import helper_if_alone
from .document import AttestationDocument, check_size
from .errors import AttestationError, StaleDocumentError
from .roots import aws_nitro_root

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["DEFAULT_MAX_FUTURE_SKEW", "At", "Clock", "VerifiedAttestation", "Verifier"]

_SPKI_CACHE_SIZE: Final = 256

#: A source of the current time; must return an aware datetime.
Clock = Callable[[], datetime]
#: When to verify: ``"now"`` (the verifier's clock), ``"document"`` (audit mode) or an instant.
At = datetime | Literal["now", "document"]

#: How far a document's timestamp may lie ahead of the verification time. The timestamp comes
#: from the Nitro hypervisor's clock and the verifier's clock may drift a little; more than this
#: means a wrong clock or a replayed future-dated document (nitro-attestation.md §8.2).
DEFAULT_MAX_FUTURE_SKEW: Final = timedelta(seconds=60)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    """An authentic attestation document that satisfied the caller's policy.

    Only :meth:`Verifier.verify` should create these: holding one means every check passed.

    Attributes:
        document: the decoded payload.
        chain: the validated certificate path, leaf first, trust anchor last.
        verified_at: the instant at which the chain was validated (aware UTC).
        public_key: ``document.public_key`` parsed as a DER SubjectPublicKeyInfo, or ``None``
            when the field is absent or is not exactly one SPKI (the NSM does not check it).
    """

    document: AttestationDocument
    chain: tuple[x509.Certificate, ...]
    verified_at: datetime
    public_key: PublicKeyTypes | None

    @property
    def module_id(self) -> str:
        """The enclave's module id."""
        return self.document.module_id

    @property
    def digest(self) -> str:
        """The PCR digest algorithm name (``"SHA384"`` on hardware)."""
        return self.document.digest

    @property
    def timestamp(self) -> datetime:
        """The document's creation time (aware UTC)."""
        return self.document.timestamp

    @property
    def pcrs(self) -> Mapping[int, bytes]:
        """PCR index → value, read-only."""
        return self.document.pcrs

    @property
    def public_key_der(self) -> bytes | None:
        """The raw ``public_key`` field (DER when :attr:`public_key` is not ``None``)."""
        return self.document.public_key

    @property
    def user_data(self) -> bytes | None:
        """The ``user_data`` field."""
        return self.document.user_data

    @property
    def nonce(self) -> bytes | None:
        """The ``nonce`` field (check it with :class:`attestation.policy.Nonce`)."""
        return self.document.nonce


class Verifier:
    """Verifies Nitro attestation documents against pinned trust anchors.

    Thread-safe. Chain validations are cached per instance (see ``cache_size``), so reuse one
    Verifier: the steady-state cost is then about one ECDSA P-384 verification per new
    document. Documents seen before (enclave SDKs reuse theirs for minutes) skip decoding and
    the signature check (see ``document_cache_size``); the chain's validity at the verification
    time, the freshness check and the policy are applied on every call.

    Args:
        trusted_roots: trust anchors. Default: the AWS Nitro Enclaves root G1 only. Other roots
            (a test PKI, another partition) must be passed explicitly, together with
            :func:`attestation.aws_nitro_root` if that should stay trusted.
        clock: the time source for ``at="now"``; returns an aware datetime.
        max_future_skew: how far ahead of the verification time a document may be dated.
        cache_size: the number of validated chains to keep (0 disables the cache).
        document_cache_size: the number of signature-verified documents to keep, served only
            for byte-identical input (0 disables the cache).
        parallel: on a chain-cache miss, validate the chain on a process-wide helper thread
            while the calling thread checks the COSE signature (``cryptography`` releases the
            GIL during ECDSA verification). With a spare core this takes about an eighth off a
            cold verification; results and errors are the same either way. While other threads
            are verifying cold documents too, each does both itself (no gain there).

    Raises:
        ValueError: no trust anchors, or a negative skew or cache size.
        CertificateChainError: the packaged AWS root fails its pinned fingerprint.
    """

    def __init__(
        self,
        trusted_roots: Iterable[x509.Certificate] | None = None,
        *,
        clock: Clock = _utc_now,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
        cache_size: int = 256,
        document_cache_size: int = 512,
        parallel: bool = True,
    ) -> None:
        roots = [aws_nitro_root()] if trusted_roots is None else list(trusted_roots)
        if not roots:
            raise ValueError("trusted_roots must not be empty")
        if not all(isinstance(r, x509.Certificate) for r in roots):
            raise TypeError("trusted_roots must be cryptography x509.Certificate objects")
        if max_future_skew < timedelta(0):
            raise ValueError("max_future_skew must not be negative")
        self._roots = tuple(roots)
        self._clock = clock
        self._skew = max_future_skew
        self._chains = ChainValidator(roots, cache_size=cache_size)
        self._documents = SignedDocumentCache(document_cache_size)
        self._parallel = parallel
        # Enclave SDKs keep one key pair per session, so a stream of new documents carries the
        # same SubjectPublicKeyInfo again and again. Keyed by the exact DER (a pure function of
        # it; public keys are immutable), this skips the parse, the re-encoding check and the
        # first-use setup of a fresh RSA key in the caller's encryption (about 9 us).
        self._parse_spki = functools.lru_cache(maxsize=_SPKI_CACHE_SIZE)(_parse_spki)

    @property
    def trusted_roots(self) -> tuple[x509.Certificate, ...]:
        """The trust anchors this verifier accepts."""
        return self._roots

    def clear_cache(self) -> None:
        """Forget cached chains, documents and public keys (the next verification is cold)."""
        self._chains.clear_cache()
        self._documents.clear()
        self._parse_spki.cache_clear()

    def verify(self, data: bytes, *, policy: Policy, at: At = "now") -> VerifiedAttestation:
        """Verify an attestation document and apply ``policy``.

        Args:
            data: COSE_Sign1 bytes, untagged (as hardware emits them) or with tag 18.
            policy: what the caller accepts; required. Authenticity-only checking must be
                spelled :class:`attestation.policy.UnsafeNoOp`.
            at: the verification time. ``"now"`` (default) uses the verifier's clock and is
                what a live service wants. An aware ``datetime`` verifies at that instant.
                ``"document"`` is **audit mode**: it verifies at the document's own timestamp,
                which is how a stored document (whose 3-hour leaf has long expired) can be
                re-checked; it proves the document was valid when made, not that it is fresh.

        Returns:
            The verified document.

        Raises:
            MalformedDocumentError: the bytes are not a well-formed document (decode, schema).
            UnsupportedAlgorithmError: the COSE algorithm is not ES384.
            CertificateExpiredError: a certificate is not valid at the verification time.
            CertificateChainError: the chain does not lead to a trusted root.
            SignatureError: the COSE signature does not verify.
            StaleDocumentError: the document is dated beyond the allowed future skew, or too
                old for a :class:`attestation.policy.MaxAge` policy.
            PolicyError: the policy rejected the document (see its subclasses).
            ValueError: ``at`` is a naive datetime or an unknown keyword.
            TypeError: ``policy`` is not a policy object.
        """
        if not callable(getattr(policy, "check", None)):
            raise TypeError("policy must be an attestation.policy.Policy")
        explicit = None if at in ("now", "document") else _aware(at, "at")
        # (0) bound the input before any decoding (document.MAX_DOCUMENT_SIZE).
        data = check_size(data)
        cached = self._documents.get(data)
        if cached is None:
            # (1) decode the COSE_Sign1, tagged or untagged; ES384 pinned; no unprotected alg.
            message = decode_sign1(data)
            # (2) the payload's syntactic checks, as real hardware emits it.
            document = AttestationDocument.from_cbor(message.payload)
        else:
            # These exact bytes decoded and their signature verified before (steps 1, 2, 7).
            document = cached[0]
        if at == "now":
            verify_at = _aware(self._clock(), "clock()")
        elif at == "document":
            verify_at = document.timestamp
        elif explicit is not None:
            verify_at = explicit
        else:
            raise ValueError('at must be "now", "document" or an aware datetime')
        # (3)-(6) chain [certificate, cabundle…] to a pinned anchor: validity of every
        # certificate at verify_at, basicConstraints/pathLen/keyUsage, PKIX path validation.
        signed = False
        chain = self._chains.lookup(document.certificate, document.cabundle, verify_at)
        if chain is None and cached is None and self._parallel:
            chain, signed = self._validate_beside_signature(message, document, verify_at)
        elif chain is None:
            chain = self._chains.validate(document.certificate, document.cabundle, verify_at)
        if cached is None:
            if not signed:
                # (7) the COSE signature over the received protected bytes, with the leaf key.
                verify_es384(message, chain.leaf_key)
            public_key = self._parse_spki(document.public_key)
            self._documents.put(data, document, public_key)
        else:
            public_key = cached[1]
        # The NSM signs with a live leaf, so the document's own timestamp lies within the
        # leaf's validity (3 s to 2.3 h after notBefore in every genuine sample, §4). A
        # timestamp outside it is not a real document time: e.g. a seconds-valued timestamp
        # (§2), which reads as 1970 and would otherwise pass when no MaxAge is set.
        leaf = chain.chain[0]
        if not (
            leaf.not_valid_before_utc - self._skew <= document.timestamp <= leaf.not_valid_after_utc
        ):
            raise StaleDocumentError(
                f"document is dated {document.timestamp.isoformat()}, outside its signing "
                f"certificate's validity ({leaf.not_valid_before_utc.isoformat()} to "
                f"{leaf.not_valid_after_utc.isoformat()})"
            )
        # Freshness (§8.2): a document dated after the verification time beyond the skew.
        if document.timestamp - verify_at > self._skew:
            raise StaleDocumentError(
                f"document is dated {document.timestamp.isoformat()}, after the verification "
                f"time {verify_at.isoformat()} by more than {self._skew}"
            )
        result = VerifiedAttestation(
            document=document,
            chain=chain.chain,
            verified_at=verify_at,
            public_key=public_key,
        )
        # Application policy: PCRs, nonce, age, key type... (left to the caller by the AWS doc).
        policy.check(result)
        return result

    def _validate_beside_signature(
        self, message: Sign1, document: AttestationDocument, at: datetime
    ) -> tuple[ValidatedChain, bool]:
        """Steps (3)-(6) on the helper thread while this thread tries step (7).

        Returns the validated chain and whether the COSE signature verified with its leaf key.
        Chain errors are raised first, as in the sequential order; a signature that did not
        verify here is checked again by the caller with the validated key, which raises the
        precise error. Both keys come from the same ``certificate`` bytes.
        """
        leaf, bundle = document.certificate, document.cabundle
        with helper_if_alone() as helper:
            pending = None
            if helper is not None:
                try:
                    pending = helper.submit(self._chains.validate, leaf, bundle, at)
                except RuntimeError:  # the interpreter is shutting down: no new threads
                    pending = None
            if pending is None:  # other verifications are running: do it all here
                return self._chains.validate(leaf, bundle, at), False
            signature_verified = _signature_verifies(message, leaf)
            return pending.result(), signature_verified


def _signature_verifies(message: Sign1, leaf_der: bytes) -> bool:
    # The leaf is not validated yet: any failure here only means "check again afterwards".
    try:
        key = x509.load_der_x509_certificate(leaf_der).public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP384R1
        ):
            return False
        verify_es384(message, key)
    except (AttestationError, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f'{name} must be "now", "document" or an aware datetime')
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _parse_spki(der: bytes | None) -> PublicKeyTypes | None:
    if not der:
        return None
    try:
        key = load_der_public_key(der)
        # Exactly one SubjectPublicKeyInfo, as KMS requires of a Recipient key, and nothing
        # else (e.g. a bare PKCS#1 key or trailing bytes) that a lenient parser might accept.
        if key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) != der:
            return None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key
