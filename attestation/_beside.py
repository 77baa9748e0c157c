"""The pieces of a verification that runs beside its own signature check.

`cryptography` releases the GIL while OpenSSL verifies an ECDSA signature (about 0.5 ms for
P-384), so on a machine with a spare core everything else a verification does (decoding the
payload, the chain, the date checks) and the caller's follow-up work can run on the helper
thread meanwhile. Only the calling thread can usefully do the ECDSA: a thread that starts
native code must first hold the GIL, and the caller holds it for as long as it runs Python.

To start the signature check before the payload is decoded, the calling thread needs the leaf
key without the strict decoder: :func:`certificate_hint` finds the ``certificate`` field by its
encoded key. The hint is only a guess. The verification accepts the signature only when the
certificate the strict decoder found (and the chain validated) is byte for byte the one the
key came from; otherwise the signature is checked again with the validated leaf key.

:func:`signature_verifies` serves the other overlap, in plain ``verify``: a cold chain is
validated on the helper while the calling thread tries the signature with the leaf's key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec

from ._cose import Sign1, verify_es384
from .errors import AttestationError
from .policy import only_checks

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    from ._chain import ValidatedChain
    from .document import AttestationDocument
    from .policy import Policy
    from .verifier import VerifiedAttestation

__all__ = ["Beside", "certificate_hint", "leaf_key_of", "signature_verifies"]

_T = TypeVar("_T")

#: The map key ``"certificate"`` as the NSM encodes it: a text string head (0x6b, 11 bytes).
_CERTIFICATE_KEY: Final = b"\x6bcertificate"
_BSTR_1: Final = 0x58  # byte string, 1-byte length follows
_BSTR_2: Final = 0x59  # byte string, 2-byte length follows


def certificate_hint(payload: bytes) -> bytes | None:
    """The bytes that are probably the ``certificate`` field, or ``None`` if none stand out.

    Not a decoder: the same key could appear inside another field's bytes. The caller must
    compare the result with what the strict decoder finds before relying on it.
    """
    at = payload.find(_CERTIFICATE_KEY)
    if at < 0:
        return None
    head = at + len(_CERTIFICATE_KEY)
    kind = payload[head] if head < len(payload) else None
    if kind == _BSTR_2:
        start, size = head + 3, int.from_bytes(payload[head + 1 : head + 3], "big")
    elif kind == _BSTR_1 and head + 1 < len(payload):
        start, size = head + 2, payload[head + 1]
    else:
        return None
    der = payload[start : start + size]
    return der if len(der) == size else None


def leaf_key_of(der: bytes) -> ec.EllipticCurvePublicKey | None:
    """The P-384 public key of certificate ``der``, or ``None`` (unparseable, other key).

    Unvalidated: a key to try the signature with, not one to trust. Never raises: whatever is
    wrong with the certificate, the chain validation reports it.
    """
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):  # e.g. an unknown key algorithm
        return None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
        return key
    return None


@dataclass(slots=True)
class Beside(Generic[_T]):
    """What the helper thread found, and the first error it met, with its stage.

    The stages keep the sequential order of errors: ``first``'s error wins over every
    verification error; an error before the signature step (decode, schema, chain: spec §5
    steps 2-6) wins over a bad signature; one after it (the document's dates, then the
    policy) loses to a bad signature; and ``then``'s error loses to every verification error.
    """

    first_error: Exception | None = None
    document: AttestationDocument | None = None
    chain: ValidatedChain | None = None
    public_key: PublicKeyTypes | None = None
    result: VerifiedAttestation | None = None
    before_signature: Exception | None = None
    after_signature: Exception | None = None
    policy_checked: bool = False
    policy_error: Exception | None = None
    then_error: Exception | None = None
    then_value: _T | None = None

    def run(
        self,
        first: Callable[[], object] | None,
        decode: Callable[[], tuple[AttestationDocument, ValidatedChain, PublicKeyTypes | None]],
        finish: Callable[
            [AttestationDocument, ValidatedChain, PublicKeyTypes | None], VerifiedAttestation
        ],
        policy: Policy,
        then: Callable[[VerifiedAttestation], _T] | None,
    ) -> Beside[_T]:
        """Do the work in stage order, stopping at the first error (runs on the helper).

        ``policy`` is applied here only if it has no effects (:func:`~.policy.only_checks`);
        otherwise the calling thread applies it once the signature has verified.
        """
        if first is not None:
            try:
                first()
            except Exception as exc:  # re-raised by the calling thread
                self.first_error = exc
                return self
        try:
            self.document, self.chain, self.public_key = decode()
        except Exception as exc:  # re-raised by the calling thread
            self.before_signature = exc
            return self
        try:
            self.result = finish(self.document, self.chain, self.public_key)
        except Exception as exc:  # re-raised by the calling thread
            self.after_signature = exc
            return self
        if only_checks(policy):
            self.policy_checked = True
            try:
                policy.check(self.result)
            except Exception as exc:  # re-raised by the calling thread
                self.policy_error = exc
                return self
        if then is not None:
            try:
                self.then_value = then(self.result)
            except Exception as exc:  # re-raised by the calling thread
                self.then_error = exc
        return self


def signature_verifies(message: Sign1, leaf_der: bytes) -> bool:
    """Whether the COSE signature verifies under the key of certificate ``leaf_der``.

    The leaf is not validated yet: ``False`` only means "check again afterwards".
    """
    key = leaf_key_of(leaf_der)
    if key is None:
        return False
    try:
        verify_es384(message, key)
    except AttestationError:
        return False
    return True
