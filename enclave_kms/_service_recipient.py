"""``Recipient``: verify a Nitro attestation document and wrap a secret for it (CMS).

KMS documents that it verifies the document's COSE signature and chain up to the AWS Nitro
root, takes its ``public_key`` (an RSA key, DER SubjectPublicKeyInfo), offers the PCRs to the
key policy as ``kms:RecipientAttestation:*`` and returns the secret only as
``CiphertextForRecipient`` (kms-recipient.md §2, §7).

Error codes are not documented by AWS (§7). We answer ``ValidationException`` for input that
is malformed or unsupported (undecodable document, no ``public_key``, a non-RSA key, RSA
outside 2048..4096 bits) and ``AccessDeniedException`` for a well-formed document that fails
verification (signature, chain, expired certificate, stale). The specific reason goes to the
audit record only; the client sees a generic message.

:func:`run_attested` runs an operation around the verification: its request checks first, the
decision that needs the document last, both beside the signature check where they can.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from attestation import VerifiedAttestation, Verifier
from attestation import policy as att_policy
from attestation.errors import AttestationError, MalformedDocumentError, PolicyError
from enclave_kms import cms
from enclave_kms._service_validation import Checks
from enclave_kms.errors import AccessDeniedException, ValidationException
from enclave_kms.model import KeyEncryptionMechanism, RecipientInfo
from enclave_kms.policy import attestation_condition_keys

if TYPE_CHECKING:
    from enclave_kms._service_context import OpContext

__all__ = [
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "RecipientError",
    "VerifiedRecipient",
    "check_recipient_shape",
    "run_attested",
    "verify_recipient",
    "verify_recipient_then",
    "wrap_for",
]

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
MAX_DOCUMENT_BYTES = 262144
_MECHANISMS = tuple(m.value for m in KeyEncryptionMechanism)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class VerifiedRecipient:
    """A verified Recipient: the key to encrypt to and what the audit and policy need.

    Attributes:
        public_key: the enclave's RSA key.
        condition_keys: ``kms:RecipientAttestation:*`` for the policy context.
        module_id: the document's module id.
        image_digest: PCR0 as lowercase hex.
        pcr_indices: the PCR indices the document carried.
    """

    public_key: RSAPublicKey
    condition_keys: Mapping[str, str]
    module_id: str
    image_digest: str | None
    pcr_indices: tuple[int, ...]


def check_recipient_shape(checks: Checks, recipient: RecipientInfo | None) -> None:
    """Record constraint violations of a ``Recipient`` member."""
    if recipient is None:
        return
    if checks.required(recipient.key_encryption_algorithm, "Recipient.KeyEncryptionAlgorithm"):
        checks.enum(
            recipient.key_encryption_algorithm,
            "Recipient.KeyEncryptionAlgorithm",
            _MECHANISMS,
        )
    if checks.required(recipient.attestation_document, "Recipient.AttestationDocument"):
        checks.blob(
            recipient.attestation_document,
            "Recipient.AttestationDocument",
            1,
            MAX_DOCUMENT_BYTES,
        )


class RecipientError(Exception):
    """Raised by :func:`verify_recipient`: ``error`` for the client, ``reason`` for the audit."""

    def __init__(self, error: ValidationException | AccessDeniedException, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


def verify_recipient(
    recipient: RecipientInfo,
    *,
    verifier: Verifier,
    at: datetime,
    max_age: timedelta | None,
    reject_debug: bool = False,
) -> VerifiedRecipient:
    """Verify the document at ``at`` and require an RSA 2048..4096 public key.

    With ``reject_debug``, a debug-mode enclave (PCR0..2 all zero, nitro-attestation.md §3),
    whose memory its parent can read, is refused whatever the key policy says.

    Raises:
        RecipientError: the document is malformed or unsupported (wrapping a
            ValidationException) or fails verification (wrapping an AccessDeniedException).
    """
    verified, _ = verify_recipient_then(
        recipient, _nothing, verifier=verifier, at=at, max_age=max_age, reject_debug=reject_debug
    )
    return verified


def verify_recipient_then(
    recipient: RecipientInfo,
    then: Callable[[VerifiedRecipient], _T],
    *,
    verifier: Verifier,
    at: datetime,
    max_age: timedelta | None,
    reject_debug: bool = False,
    first: Callable[[], object] | None = None,
) -> tuple[VerifiedRecipient, _T]:
    """``first()``, :func:`verify_recipient`, then ``then(recipient)``, in that order.

    Through :meth:`Verifier.verify_then`: ``first`` and ``then`` may run on the verifier's
    helper thread, ``then`` before the document's signature has been checked, so it must
    have no effect besides its result: a :class:`RecipientError` wins over whatever it
    returned or raised. An error raised by ``first`` is raised as it is, and wins over the
    document's.

    Raises:
        RecipientError: as :func:`verify_recipient`.
    """
    document = recipient.attestation_document
    if document is None:  # check_recipient_shape refuses it, normally in ``first``
        if first is not None:
            first()
        raise RecipientError(
            ValidationException("The attestation document in the Recipient is not valid."),
            "Recipient without an attestation document",
        )

    def accepted_then(verified: VerifiedAttestation) -> tuple[VerifiedRecipient, _T]:
        accepted = _accepted(verified, reject_debug)
        return accepted, then(accepted)

    try:
        _, (accepted, value) = verifier.verify_then(
            document, accepted_then, policy=_document_policy(max_age), at=at, first=first
        )
    except (MalformedDocumentError, PolicyError) as exc:
        raise RecipientError(
            ValidationException("The attestation document in the Recipient is not valid."),
            f"attestation document rejected: {type(exc).__name__}: {exc}",
        ) from None
    except AttestationError as exc:
        raise RecipientError(
            AccessDeniedException("The attestation document in the Recipient failed verification."),
            f"attestation document failed verification: {type(exc).__name__}: {exc}",
        ) from None
    return accepted, value


def run_attested(
    op: OpContext,
    recipient: RecipientInfo | None,
    prepare: Callable[[OpContext], Callable[[OpContext], _T]],
    *,
    verifier: Verifier,
    max_age: timedelta | None,
    reject_debug: bool,
) -> _T:
    """``decide = prepare(op)``, verify ``recipient`` (if given), then ``decide(op)``.

    ``prepare`` is the operation up to the document: the request's checks and the key
    lookups, recorded on ``op``. It returns ``decide``, the rest of the operation up to its
    result: the key policy (which reads the document's PCRs, in ``op.recipient``), DryRun,
    the cryptography. The outcome is that of running the three in that order, so an error of
    ``prepare`` wins over the document's.

    With a new document (:meth:`attestation.Verifier.verify_then`), both may run on the
    verifier's helper thread while this thread checks the document's signature. ``prepare``
    acts on ``op`` as it would here; this thread does not touch ``op`` until the
    verification returns. ``decide`` runs on a fork of ``op``, possibly before the signature
    is known to verify, so it must not act outside its result and its context. ``op`` takes
    over what the fork recorded only once the document is accepted: a refused document is
    audited as such (its reason in ``op.deny_reason``), with nothing that ``decide`` saw or
    decided.

    Raises:
        ValidationException / AccessDeniedException: the document is refused.
        Whatever ``prepare`` or ``decide`` raises.
    """
    if recipient is None:
        decide = prepare(op)
        return decide(op)
    decisions: list[Callable[[OpContext], _T]] = []

    def first() -> None:
        decisions.append(prepare(op))

    def then(accepted: VerifiedRecipient) -> tuple[OpContext, Callable[[], _T]]:
        # A fork of what ``prepare`` made of ``op`` (first() has run on this thread).
        scratch = op.fork()
        scratch.recipient = accepted
        try:
            value = decisions[0](scratch)
        except Exception as exc:  # raised below, once the document is accepted
            error = exc

            def fail() -> _T:
                raise error

            return scratch, fail
        return scratch, lambda: value

    try:
        _, (decided, outcome) = verify_recipient_then(
            recipient,
            then,
            verifier=verifier,
            at=op.time,
            max_age=max_age,
            reject_debug=reject_debug,
            first=first,
        )
    except RecipientError as exc:
        op.deny_reason = exc.reason
        raise exc.error from None
    # Accepted: the operation's record is what ``decide`` made of it, failure included.
    op.adopt(decided)
    return outcome()


@functools.lru_cache(maxsize=8)
def _document_policy(max_age: timedelta | None) -> att_policy.Policy:
    """What KMS requires of every Recipient document: an RSA key, and a bounded age if set."""
    policies: list[att_policy.Policy] = [att_policy.RequirePublicKey(rsa_min_bits=MIN_RSA_BITS)]
    if max_age is not None:
        policies.append(att_policy.MaxAge(max_age))
    return att_policy.AllOf(policies)


def _nothing(_: VerifiedRecipient) -> None:
    return None


def _accepted(verified: VerifiedAttestation, reject_debug: bool) -> VerifiedRecipient:
    """What KMS requires of a verified document beyond the verifier's checks."""
    if reject_debug and verified.document.is_debug_mode:
        raise RecipientError(
            AccessDeniedException("The attestation document in the Recipient failed verification."),
            "debug-mode enclave refused (PCR0..2 all zero; recipient_reject_debug is set)",
        )
    key = verified.public_key
    if not isinstance(key, RSAPublicKey) or key.key_size > MAX_RSA_BITS:
        size = key.key_size if isinstance(key, RSAPublicKey) else "non-RSA"
        raise RecipientError(
            ValidationException("The attestation document in the Recipient is not valid."),
            f"attestation public_key must be RSA {MIN_RSA_BITS}..{MAX_RSA_BITS} bits, got {size}",
        )
    pcrs = verified.pcrs
    pcr0 = pcrs.get(0)
    return VerifiedRecipient(
        public_key=key,
        condition_keys=attestation_condition_keys({i: v for i, v in pcrs.items() if v}),
        module_id=verified.module_id,
        image_digest=bytes(pcr0).hex() if pcr0 else None,
        pcr_indices=tuple(sorted(pcrs)),
    )


def wrap_for(recipient: VerifiedRecipient, content: bytes | bytearray) -> bytes:
    """Return ``CiphertextForRecipient``: ``content`` in a KMS-layout CMS EnvelopedData."""
    return cms.build_ciphertext_for_recipient(bytes(content), recipient.public_key)
