"""Certificate path validation for Nitro chains (spec §5 steps 3-6), with a safe cache.

Path building and validation are cryptography's (``x509.verification``), never hand-rolled. The
only change to its webpki profile is the minimal end-entity relaxation of nitro-attestation.md
§6: the Nitro leaf has no AKI and no SAN, so those become optional, and keyUsage with
digitalSignature is required instead (AWS doc step 5). The CA profile is the unchanged webpki
default, which all four Nitro CA levels satisfy. Revocation is not checked: the AWS doc says
"We do not use CRL" (§4).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as _X509VerificationError

from .errors import CertificateChainError, CertificateExpiredError, MalformedDocumentError

__all__ = ["ChainValidator", "ValidatedChain"]

_EXPIRED_MARKER: Final = "not valid at validation time"


@dataclass(frozen=True, slots=True)
class ValidatedChain:
    """A chain that cryptography validated, and the window in which that result holds.

    Attributes:
        chain: leaf first, trust anchor last.
        leaf_key: the leaf's P-384 public key, which signs the COSE message.
        not_before: the latest notBefore in the chain.
        not_after: the earliest notAfter in the chain.
    """

    chain: tuple[x509.Certificate, ...]
    leaf_key: ec.EllipticCurvePublicKey
    not_before: datetime
    not_after: datetime

    def holds_at(self, at: datetime) -> bool:
        """Whether every certificate of the chain is valid at ``at`` (spec §5 step 4)."""
        return self.not_before <= at <= self.not_after


def _leaf_key_usage(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    # AWS doc §3 step 5: "the target (leaf) must have digitalSignature". On hardware the
    # extension is non-critical, hence Criticality.AGNOSTIC below.
    if not usage.digital_signature:
        raise ValueError("leaf keyUsage lacks digitalSignature")


def _ee_policy() -> ExtensionPolicy:
    agnostic = Criticality.AGNOSTIC
    return (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.AuthorityKeyIdentifier, agnostic, None)
        .may_be_present(x509.SubjectAlternativeName, agnostic, None)
        .require_present(x509.KeyUsage, agnostic, _leaf_key_usage)
    )


def _cache_key(leaf: bytes, intermediates: Sequence[bytes]) -> bytes:
    # Length-prefixed so that no two different (leaf, bundle) lists share a key.
    h = hashlib.sha256()
    for der in (leaf, *intermediates):
        h.update(len(der).to_bytes(4, "big"))
        h.update(der)
    return h.digest()


class ChainValidator:
    """Validates leaf + cabundle against fixed trust anchors; thread-safe.

    Results are cached per instance in a bounded LRU keyed by the SHA-256 of the leaf and bundle
    DER. A cached result is reused only at a time inside the chain's validity window: the
    certificates, the anchors and the profile are fixed, so the same path is valid at any
    instant in that window, and outside it the full validation runs again.
    """

    def __init__(self, roots: Sequence[x509.Certificate], *, cache_size: int = 256) -> None:
        if not roots:
            raise ValueError("at least one trust anchor is required")
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._store = Store(list(roots))
        self._ca_policy = ExtensionPolicy.webpki_defaults_ca()
        self._ee_policy = _ee_policy()
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, ValidatedChain] = OrderedDict()
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        """Forget every cached validation."""
        with self._lock:
            self._cache.clear()

    def lookup(self, leaf: bytes, bundle: Sequence[bytes], at: datetime) -> ValidatedChain | None:
        """The cached validation of this exact ``leaf`` and ``bundle`` if it holds at ``at``."""
        return self._cached(_cache_key(leaf, bundle), at)

    def _cached(self, key: bytes, at: datetime) -> ValidatedChain | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None or not hit.holds_at(at):
                return None
            self._cache.move_to_end(key)
            return hit

    def validate(self, leaf: bytes, bundle: Sequence[bytes], at: datetime) -> ValidatedChain:
        """Validate ``leaf`` up to a trust anchor at ``at``, using ``bundle`` as candidates.

        Raises:
            MalformedDocumentError: a certificate is not parseable DER.
            CertificateExpiredError: a certificate is not valid at ``at``.
            CertificateChainError: no valid path to a trusted root exists.
        """
        key = _cache_key(leaf, bundle)
        hit = self._cached(key, at)
        if hit is not None:
            return hit
        result = self._validate(leaf, bundle, at)
        if self._cache_size:
            with self._lock:
                self._cache[key] = result
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return result

    def _validate(self, leaf_der: bytes, bundle: Sequence[bytes], at: datetime) -> ValidatedChain:
        leaf = _load(leaf_der, "payload.certificate")
        # spec §5 step 3: the whole cabundle is offered as untrusted candidates, in any order;
        # cabundle[0] (the root on hardware) is never trusted for being there (§8.8).
        candidates = [_load(der, f"payload.cabundle[{i}]") for i, der in enumerate(bundle)]
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(at)
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            # spec §5 steps 4-6: validity of each certificate, basicConstraints/pathLen and
            # keyUsage, and PKIX path validation against the pinned anchors.
            chain = tuple(verifier.verify(leaf, candidates).chain)
            leaf_key = chain[0].public_key()
        except _X509VerificationError as exc:
            if _EXPIRED_MARKER in str(exc):
                raise CertificateExpiredError(f"certificate chain: {exc}") from None
            raise CertificateChainError(f"certificate chain: {exc}") from None
        except ValueError as exc:
            # cryptography parses some fields (names, attributes, keys) only when first used,
            # so a certificate that loaded can still be malformed inside: found by fuzzing
            # (fixtures/fuzz/regressions/attestation/). It cannot be chained, so the chain fails.
            raise CertificateChainError(f"malformed certificate in the chain: {exc}") from None
        if not isinstance(leaf_key, ec.EllipticCurvePublicKey) or not isinstance(
            leaf_key.curve, ec.SECP384R1
        ):
            # ES384 is pinned (§1), so only a P-384 leaf key can have produced the signature.
            raise CertificateChainError("leaf key is not an EC P-384 key, as ES384 requires")
        validated = ValidatedChain(
            chain=chain,
            leaf_key=leaf_key,
            not_before=max(c.not_valid_before_utc for c in chain),
            not_after=min(c.not_valid_after_utc for c in chain),
        )
        if not validated.holds_at(at):
            # spec §5 step 4 says every certificate, the root included: checked here as well,
            # whatever the library does with trust anchors.
            raise CertificateExpiredError("a certificate in the chain is not valid at that time")
        return validated


def _load(der: bytes, field: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedDocumentError(f"not a DER certificate: {exc}", field=field) from None
