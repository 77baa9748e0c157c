"""Verify a Nitro attestation document end to end: envelope, schema, chain, signature, policy.

The numbered steps in :meth:`Verifier.verify` are those of nitro-attestation.md §5 (the AWS doc's
own procedure, corrected for what real hardware emits).
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, TypeVar, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from ._beside import Beside, certificate_hint, leaf_key_of, signature_verifies
from ._chain import ChainValidator, ValidatedChain
from ._cose import Sign1, decode_sign1, verify_es384
from ._dates import check_document_dates
from ._doccache import SignedDocumentCache
from ._helper_thread import helper_if_alone
from .document import AttestationDocument, check_size
from .errors import SignatureError
from .roots import aws_nitro_root

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["DEFAULT_MAX_FUTURE_SKEW", "At", "Clock", "VerifiedAttestation", "Verifier"]

_SPKI_CACHE_SIZE: Final = 256
_T = TypeVar("_T")

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
        parallel: use a process-wide helper thread while the calling thread checks the COSE
            signature (``cryptography`` releases the GIL during ECDSA verification). On a
            chain-cache miss the chain is validated there (about an eighth off a cold
            verification); in :meth:`verify_then`, for any document not seen before, the
            ``first`` step is run, the payload decoded, the chain found, the dates checked,
            a policy with no effects (:func:`attestation.policy.only_checks`) applied and the
            follow-up run there. Results and errors are the same either way. While other
            threads of the process are verifying too, each does everything itself.

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
        # The leaf key to start the signature check with, before the payload is decoded
        # (see _beside); one leaf signs every document of an enclave for hours.
        self._leaf_key_of = functools.lru_cache(maxsize=_SPKI_CACHE_SIZE)(leaf_key_of)
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
        self._leaf_key_of.cache_clear()

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
        return self._verify(data, policy, at, None)[0]

    def verify_then(
        self, data: bytes, then: Callable[[VerifiedAttestation], _T], *, policy: Policy,
        at: At = "now", first: Callable[[], object] | None = None,
    ) -> tuple[VerifiedAttestation, _T]:  # fmt: skip
        """Verify like :meth:`verify`, then compute ``then(verified)``; return both.

        The outcome is that of ``first()`` (if given), then ``v = verify(...)``, then
        ``then(v)``, errors included: an error raised by ``first`` wins over every
        verification error, and a verification error over an error raised by ``then``. What
        differs is when ``first`` and ``then`` run. On a document not seen before, with a
        spare core, they run on the helper thread while this thread checks the COSE
        signature, so work that precedes the verification (checking the rest of a request,
        say) or depends on the document (encrypting to its public key) overlaps the ~0.5 ms
        ECDSA check. ``first`` always runs before ``then``, on the same thread.

        ``then`` must therefore have no effect besides its return value or exception: it may
        be called for a document whose signature turns out not to verify, or that ``policy``
        then rejects, and its result is then dropped and the verification error raised.
        ``first`` may act (its effects happen whatever the document), but only on what this
        thread leaves alone until the call returns. On the helper both run in a copy of the
        caller's :mod:`contextvars` context: they see its variables, but one they set may not
        be seen here.

        Raises:
            Whatever ``first`` raises, everything :meth:`verify` raises, and whatever ``then``
            raises.
        """
        verified, value = self._verify(data, policy, at, then, first)
        return verified, cast("_T", value)

    def _verify(
        self,
        data: bytes,
        policy: Policy,
        at: At,
        then: Callable[[VerifiedAttestation], _T] | None,
        first: Callable[[], object] | None = None,
    ) -> tuple[VerifiedAttestation, _T | None]:
        if not callable(getattr(policy, "check", None)):
            raise TypeError("policy must be an attestation.policy.Policy")
        explicit = None if at in ("now", "document") else _aware(at, "at")
        try:
            # (0) bound the input before any decoding (document.MAX_DOCUMENT_SIZE).
            data = check_size(data)
            cached = self._documents.get(data)
            # (1) decode the COSE_Sign1, tagged or untagged; ES384 pinned; no unprotected alg.
            message = decode_sign1(data) if cached is None else None
        except Exception:
            if first is not None:
                first()  # its error comes first (see verify_then)
            raise
        if message is not None and then is not None and self._parallel and at != "document":
            # The follow-up work can run beside the signature check (see verify_then).
            done = self._beside_signature(
                data, message, self._verify_at(at, explicit), policy, then, first
            )
            if done is not None:
                return self._apply_beside(policy, *done)
        if first is not None:
            first()
        if cached is not None:
            # These exact bytes decoded and their signature verified before (steps 1, 2, 7).
            document, public_key = cached
            verify_at = self._verify_at(at, explicit, document)
            dated = self._dated(document, self._chain(document, verify_at), verify_at, public_key)
            return self._apply(policy, dated, then)
        assert message is not None  # noqa: S101  # decoded above whenever nothing was cached
        # (2) the payload's syntactic checks, as real hardware emits it.
        document = AttestationDocument.from_cbor(message.payload)
        verify_at = self._verify_at(at, explicit, document)
        # (3)-(6) chain [certificate, cabundle…] to a pinned anchor.
        chain = self._chains.lookup(document.certificate, document.cabundle, verify_at)
        signed = False
        if chain is None and self._parallel:
            # A cold chain costs four ECDSA checks: validate it beside the signature check.
            chain, signed = self._validate_beside_signature(message, document, verify_at)
        elif chain is None:
            chain = self._chains.validate(document.certificate, document.cabundle, verify_at)
        if not signed:
            # (7) the COSE signature over the received protected bytes, with the leaf key.
            verify_es384(message, chain.leaf_key)
        public_key = self._parse_spki(document.public_key)
        self._documents.put(data, document, public_key)
        return self._apply(policy, self._dated(document, chain, verify_at, public_key), then)

    @staticmethod
    def _apply_beside(
        policy: Policy, verified: VerifiedAttestation, beside: Beside[_T]
    ) -> tuple[VerifiedAttestation, _T | None]:
        # As _apply, with ``then`` (and a policy without effects) already run by the helper:
        # the policy's error comes first.
        if beside.policy_error is not None:
            raise beside.policy_error
        if not beside.policy_checked:
            policy.check(verified)
        if beside.then_error is not None:
            raise beside.then_error
        return verified, beside.then_value

    def _verify_at(
        self, at: At, explicit: datetime | None, document: AttestationDocument | None = None
    ) -> datetime:
        if at == "now":
            return _aware(self._clock(), "clock()")
        if at == "document" and document is not None:
            return document.timestamp
        if explicit is not None:
            return explicit
        raise ValueError('at must be "now", "document" or an aware datetime')

    def _chain(self, document: AttestationDocument, at: datetime) -> ValidatedChain:
        # Validity of every certificate at ``at``, basicConstraints/pathLen/keyUsage, PKIX
        # path validation; validate() serves a cached result when this exact chain holds at ``at``.
        return self._chains.validate(document.certificate, document.cabundle, at)

    def _dated(
        self,
        document: AttestationDocument,
        chain: ValidatedChain,
        verify_at: datetime,
        public_key: PublicKeyTypes | None,
    ) -> VerifiedAttestation:
        """The date checks that follow the signature (step 7), and the result they allow."""
        check_document_dates(document.timestamp, chain.chain[0], verify_at, self._skew)
        return VerifiedAttestation(
            document=document, chain=chain.chain, verified_at=verify_at, public_key=public_key
        )

    @staticmethod
    def _apply(
        policy: Policy, verified: VerifiedAttestation,
        then: Callable[[VerifiedAttestation], _T] | None,
    ) -> tuple[VerifiedAttestation, _T | None]:  # fmt: skip
        # Application policy: PCRs, nonce, age, key type... (left to the caller by the AWS doc).
        policy.check(verified)
        return verified, (then(verified) if then is not None else None)

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
            if helper is None:  # another verification holds it (or no thread): do it all here
                return self._chains.validate(leaf, bundle, at), False
            pending = helper.submit(self._chains.validate, leaf, bundle, at)
            signature_verified = signature_verifies(message, leaf)
            return pending.result(), signature_verified

    def _beside_signature(
        self,
        data: bytes,
        message: Sign1,
        verify_at: datetime,
        policy: Policy,
        then: Callable[[VerifiedAttestation], _T] | None,
        first: Callable[[], object] | None,
    ) -> tuple[VerifiedAttestation, Beside[_T]] | None:
        """``first``, steps (2)-(6), the date checks and ``then`` on the helper, (7) here.

        Returns ``None`` (nothing done) when no leaf key can be guessed or the helper is
        busy. Otherwise raises what the sequential order would raise first, or returns the
        verified document and the helper's record (``then``'s outcome; the caller applies the
        policy first, unless the helper could: see :func:`.policy.only_checks`). See
        :mod:`attestation._beside`.
        """
        hint = certificate_hint(message.payload)
        key = self._leaf_key_of(hint) if hint is not None else None
        if key is None:
            return None

        def decode() -> tuple[AttestationDocument, ValidatedChain, PublicKeyTypes | None]:
            self._documents.make_room()  # evict on this thread, not the caller's (make_room)
            document = AttestationDocument.from_cbor(message.payload)
            return document, self._chain(document, verify_at), self._parse_spki(document.public_key)

        def finish(
            document: AttestationDocument, chain: ValidatedChain, public_key: PublicKeyTypes | None
        ) -> VerifiedAttestation:
            return self._dated(document, chain, verify_at, public_key)

        with helper_if_alone() as helper:
            if helper is None:
                return None
            context = contextvars.copy_context()
            record: Beside[_T] = Beside()
            pending = helper.submit(context.run, record.run, first, decode, finish, policy, then)
            try:
                verify_es384(message, key)
                bad_signature = None
            except SignatureError as exc:
                bad_signature = exc
            beside = pending.result()
        if beside.first_error is not None:
            raise beside.first_error
        if beside.before_signature is not None:
            raise beside.before_signature
        assert beside.document is not None and beside.chain is not None  # noqa: S101
        if beside.document.certificate != hint:
            # The guess was wrong (the key bytes also occur elsewhere): check with the key of
            # the certificate that was decoded and validated.
            verify_es384(message, beside.chain.leaf_key)
        elif bad_signature is not None:
            raise bad_signature
        self._documents.put(data, beside.document, beside.public_key)
        if beside.after_signature is not None:
            raise beside.after_signature
        assert beside.result is not None  # noqa: S101
        return beside.result, beside


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
