"""Verification policies: what a caller accepts beyond "this document is authentic".

A policy is any object with ``check(result) -> None`` that raises a
:class:`attestation.errors.PolicyError` (or :class:`~attestation.errors.StaleDocumentError`)
to reject. Policies are immutable, validated when built (bad hex or a wrong length raises
``ValueError``), compare PCRs as bytes, and round-trip through JSON with :func:`to_json` /
:func:`from_json` so a key store can hold them.

Example::

    from attestation import Verifier, policy

    accept = policy.AllOf([
        policy.RejectDebugMode(),
        policy.AnyOf([  # two images live during a rollout
            policy.ImageMeasurement(pcr0=OLD_PCR0),
            policy.ImageMeasurement(pcr0=NEW_PCR0),
        ]),
        policy.Nonce(expected_nonce),
        policy.MaxAge(timedelta(minutes=5)),
    ])
    result = Verifier().verify(document, policy=accept)
"""

from __future__ import annotations

import hmac
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ._measurements import pcr3_iam_role, pcr4_instance_id, pcr8_signing_certificate, pcr_value
from ._policy_json import from_json, policies_from_list, register, to_json
from .errors import MeasurementMismatchError, PolicyError, StaleDocumentError

if TYPE_CHECKING:
    from .verifier import VerifiedAttestation

__all__ = [
    "PCR",
    "AllOf",
    "AnyOf",
    "ImageMeasurement",
    "MaxAge",
    "ModuleId",
    "Nonce",
    "PCRs",
    "Policy",
    "RejectDebugMode",
    "RequirePublicKey",
    "UnsafeNoOp",
    "UnsafePolicyWarning",
    "from_json",
    "pcr3_iam_role",
    "pcr4_instance_id",
    "pcr8_signing_certificate",
    "to_json",
]

_ZERO48: Final = bytes(48)


def _index(index: object) -> int:
    if type(index) is not int or not 0 <= index < 32:
        raise ValueError(f"PCR index must be an integer in 0..31, not {index!r}")
    return index


@runtime_checkable
class Policy(Protocol):
    """Anything with ``check(result) -> None`` that raises to reject."""

    def check(self, result: VerifiedAttestation) -> None:
        """Accept ``result`` by returning, or reject it by raising.

        Raises:
            PolicyError: the document does not satisfy the policy.
            StaleDocumentError: the document is too old (age policies).
        """


class UnsafePolicyWarning(UserWarning):
    """Emitted whenever a policy that accepts every authentic document is used."""


def _mismatch(index: int, expected: bytes, result: VerifiedAttestation) -> None:
    actual = result.pcrs.get(index)
    # Constant time is not needed for public measurements, but costs nothing.
    if actual is None or not hmac.compare_digest(actual, expected):
        raise MeasurementMismatchError(
            index=index, expected=expected.hex(), actual=None if actual is None else actual.hex()
        )


@register("PCR", "index", "value")
@dataclass(frozen=True, init=False)
class PCR:
    """PCR ``index`` must equal ``value`` (bytes, or hex of any case)."""

    index: int
    value: bytes

    def __init__(self, index: int, value: bytes | str) -> None:
        object.__setattr__(self, "index", _index(index))
        object.__setattr__(self, "value", pcr_value(value, f"PCR{index}"))

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: MeasurementMismatchError: the PCR differs or is absent."""
        _mismatch(self.index, self.value, result)

    def _json(self) -> dict[str, Any]:
        return {"index": self.index, "value": self.value.hex()}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> PCR:
        return cls(d["index"], d["value"])


@register("PCRs", "values")
@dataclass(frozen=True, init=False)
class PCRs:
    """Every listed PCR must equal its value exactly (unlisted PCRs are not constrained)."""

    values: tuple[tuple[int, bytes], ...]

    def __init__(self, values: Mapping[int, bytes | str]) -> None:
        if not values:
            raise ValueError("PCRs needs at least one PCR")
        pairs = sorted((_index(i), pcr_value(v, f"PCR{i}")) for i, v in values.items())
        object.__setattr__(self, "values", tuple(pairs))

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: MeasurementMismatchError: the first PCR that differs or is absent."""
        for index, value in self.values:
            _mismatch(index, value, result)

    def _json(self) -> dict[str, Any]:
        return {"values": {str(i): v.hex() for i, v in self.values}}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> PCRs:
        values = d["values"]
        if not isinstance(values, Mapping) or not all(
            isinstance(k, str) and k.isdigit() for k in values
        ):
            raise ValueError("PCRs.values must map decimal index strings to hex")
        return cls({int(k): v for k, v in values.items()})


@register("ImageMeasurement", "pcr0", "pcr1", "pcr2")
@dataclass(frozen=True, init=False)
class ImageMeasurement:
    """The enclave image: PCR0 (EIF), and optionally PCR1 (kernel) and PCR2 (application).

    PCR0 is KMS's ``ImageSha384``. All-zero values are refused: they are what debug mode
    reports, and pinning them would accept any debug enclave.
    """

    pcr0: bytes
    pcr1: bytes | None
    pcr2: bytes | None

    def __init__(
        self, *, pcr0: bytes | str, pcr1: bytes | str | None = None, pcr2: bytes | str | None = None
    ) -> None:
        for name, raw in (("pcr0", pcr0), ("pcr1", pcr1), ("pcr2", pcr2)):
            value = None if raw is None else pcr_value(raw, name)
            if value is not None and not any(value):
                raise ValueError(f"{name} is all zero, the debug-mode value; pin a real image")
            object.__setattr__(self, name, value)

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: MeasurementMismatchError: the first image PCR that differs."""
        for index, value in enumerate((self.pcr0, self.pcr1, self.pcr2)):
            if value is not None:
                _mismatch(index, value, result)

    def _json(self) -> dict[str, Any]:
        out = {"pcr0": self.pcr0.hex()}
        out.update({k: v.hex() for k, v in (("pcr1", self.pcr1), ("pcr2", self.pcr2)) if v})
        return out

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> ImageMeasurement:
        return cls(pcr0=d["pcr0"], pcr1=d.get("pcr1"), pcr2=d.get("pcr2"))


@register("RejectDebugMode")
@dataclass(frozen=True)
class RejectDebugMode:
    """Reject debug-mode enclaves: PCR0, PCR1 and PCR2 all zero (``--debug-mode``, §3)."""

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: PolicyError: the enclave runs in debug mode, or PCR0..2 are absent."""
        pcrs = result.pcrs
        if not all(i in pcrs for i in (0, 1, 2)):
            raise PolicyError("PCR0..2 are absent: cannot tell whether this is debug mode")
        if not any(any(pcrs[i]) for i in (0, 1, 2)):
            raise PolicyError("enclave runs in debug mode (PCR0, PCR1 and PCR2 are all zero)")

    def _json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> RejectDebugMode:
        return cls()


@register("Nonce", "expected")
@dataclass(frozen=True, init=False)
class Nonce:
    """The document's nonce must equal ``expected`` (compared in constant time).

    One-time use and expiry are the caller's to track (pair it with :class:`MaxAge`).
    """

    expected: bytes

    def __init__(self, expected: bytes) -> None:
        if not isinstance(expected, bytes | bytearray) or not 1 <= len(expected) <= 1024:
            raise ValueError("nonce must be 1..1024 bytes")
        object.__setattr__(self, "expected", bytes(expected))

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: PolicyError: no nonce, or a different one."""
        if result.nonce is None:
            raise PolicyError("document carries no nonce")
        if not hmac.compare_digest(result.nonce, self.expected):
            raise PolicyError("nonce does not match the expected value")

    def _json(self) -> dict[str, Any]:
        return {"expected": self.expected.hex()}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> Nonce:
        if not isinstance(d["expected"], str):
            raise ValueError("Nonce.expected must be hex")
        return cls(bytes.fromhex(d["expected"]))


@register("ModuleId", "expected")
@dataclass(frozen=True, init=False)
class ModuleId:
    """The document's ``module_id`` must equal ``expected`` exactly."""

    expected: str

    def __init__(self, expected: str) -> None:
        if not isinstance(expected, str) or not expected:
            raise ValueError("module id must be a non-empty string")
        object.__setattr__(self, "expected", expected)

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: PolicyError: a different module id."""
        if result.module_id != self.expected:
            raise PolicyError(f"module_id is {result.module_id!r}, expected {self.expected!r}")

    def _json(self) -> dict[str, Any]:
        return {"expected": self.expected}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> ModuleId:
        return cls(d["expected"])


@register("MaxAge", "seconds")
@dataclass(frozen=True, init=False)
class MaxAge:
    """The document may be at most ``max_age`` older than the verification time (§8.2).

    In audit mode (``at="document"``) the age is zero by construction.
    """

    max_age: timedelta

    def __init__(self, max_age: timedelta) -> None:
        if not isinstance(max_age, timedelta) or max_age <= timedelta(0):
            raise ValueError("max_age must be a positive timedelta")
        object.__setattr__(self, "max_age", max_age)

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: StaleDocumentError: the document is older than ``max_age``."""
        age = result.verified_at - result.timestamp
        if age > self.max_age:
            raise StaleDocumentError(f"document is {age} old, more than {self.max_age}")

    def _json(self) -> dict[str, Any]:
        return {"seconds": self.max_age.total_seconds()}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> MaxAge:
        seconds = d["seconds"]
        if type(seconds) not in (int, float):
            raise ValueError("MaxAge.seconds must be a number")
        return cls(timedelta(seconds=seconds))


@register("RequirePublicKey", "rsa_min_bits", "allow_ec")
@dataclass(frozen=True, init=False)
class RequirePublicKey:
    """``public_key`` must be one DER SubjectPublicKeyInfo: RSA ≥ ``rsa_min_bits`` or, if
    ``allow_ec``, EC on P-256/P-384/P-521. KMS requires an RSA SPKI for a Recipient.
    """

    rsa_min_bits: int
    allow_ec: bool

    def __init__(self, *, rsa_min_bits: int = 2048, allow_ec: bool = False) -> None:
        if type(rsa_min_bits) is not int or rsa_min_bits < 2048:
            raise ValueError("rsa_min_bits must be an integer >= 2048")
        if type(allow_ec) is not bool:
            raise ValueError("allow_ec must be a bool")
        object.__setattr__(self, "rsa_min_bits", rsa_min_bits)
        object.__setattr__(self, "allow_ec", allow_ec)

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: PolicyError: no key, not an SPKI, or a type or size not allowed."""
        key = result.public_key
        if result.public_key_der is None:
            raise PolicyError("document carries no public_key")
        if key is None:
            raise PolicyError("public_key is not a DER SubjectPublicKeyInfo")
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < self.rsa_min_bits:
                raise PolicyError(
                    f"RSA key has {key.key_size} bits, fewer than {self.rsa_min_bits}"
                )
            return
        if isinstance(key, ec.EllipticCurvePublicKey) and self.allow_ec:
            if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
                raise PolicyError(f"EC curve {key.curve.name} is not allowed")
            return
        raise PolicyError(f"public_key type {type(key).__name__} is not allowed")

    def _json(self) -> dict[str, Any]:
        return {"rsa_min_bits": self.rsa_min_bits, "allow_ec": self.allow_ec}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> RequirePublicKey:
        return cls(rsa_min_bits=d.get("rsa_min_bits", 2048), allow_ec=d.get("allow_ec", False))


@register("UnsafeNoOp")
@dataclass(frozen=True)
class UnsafeNoOp:
    """Accepts every authentic document: authenticity only, no PCR, nonce or age check.

    It warns with :class:`UnsafePolicyWarning` on every use: any enclave image, including debug
    ones, passes.
    """

    def check(self, result: VerifiedAttestation) -> None:
        """Never raises; warns every time."""
        warnings.warn(
            "UnsafeNoOp policy: the document is authentic but nothing else was checked "
            "(any enclave image, including debug mode, is accepted)",
            UnsafePolicyWarning,
            stacklevel=3,
        )

    def _json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> UnsafeNoOp:
        return cls()


def _children(policies: Sequence[Policy], name: str) -> tuple[Policy, ...]:
    children = tuple(policies)
    if not children:
        # An empty AllOf would accept everything, an empty AnyOf nothing: both are mistakes.
        raise ValueError(f"{name} needs at least one policy")
    for child in children:
        if not callable(getattr(child, "check", None)):
            raise ValueError(f"{name} members must be policies, not {type(child).__name__}")
    return children


@register("AllOf", "policies")
@dataclass(frozen=True, init=False)
class AllOf:
    """Every child policy must accept (checked in order; the first rejection is raised)."""

    policies: tuple[Policy, ...]

    def __init__(self, policies: Sequence[Policy]) -> None:
        object.__setattr__(self, "policies", _children(policies, "AllOf"))

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: the first child's error."""
        for child in self.policies:
            child.check(result)

    def _json(self) -> dict[str, Any]:
        return {"policies": [to_json(p) for p in self.policies]}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> AllOf:
        return cls(policies_from_list(d))


@register("AnyOf", "policies")
@dataclass(frozen=True, init=False)
class AnyOf:
    """At least one child policy must accept: an allow-list, e.g. two images in a rollout."""

    policies: tuple[Policy, ...]

    def __init__(self, policies: Sequence[Policy]) -> None:
        object.__setattr__(self, "policies", _children(policies, "AnyOf"))

    def check(self, result: VerifiedAttestation) -> None:
        """Raises: PolicyError: every child rejected (the message lists their reasons)."""
        reasons: list[str] = []
        for child in self.policies:
            try:
                child.check(result)
            except (PolicyError, StaleDocumentError) as exc:
                reasons.append(f"({len(reasons) + 1}) {exc}")
            else:
                return
        raise PolicyError("no alternative accepted the document: " + "; ".join(reasons))

    def _json(self) -> dict[str, Any]:
        return {"policies": [to_json(p) for p in self.policies]}

    @classmethod
    def _from(cls, d: Mapping[str, Any]) -> AnyOf:
        return cls(policies_from_list(d))


#: Policies whose ``check`` only reads the result and returns or raises. Exact types: a
#: subclass may override ``check``. (UnsafeNoOp warns, so it is not one of them.)
_PLAIN_CHECKS: Final = frozenset(
    {PCR, PCRs, ImageMeasurement, RejectDebugMode, Nonce, ModuleId, MaxAge, RequirePublicKey}
)


def only_checks(policy: object) -> bool:
    """Whether ``policy.check`` is known to have no effect but its return or exception.

    True for this module's policies and their :class:`AllOf` / :class:`AnyOf` combinations.
    The verifier may apply such a policy on its helper thread before the document's signature
    is known to verify (its verdict is dropped if the signature does not); any other policy,
    which might count or record what it sees, only once the document is authentic.
    """
    kind = type(policy)
    if kind in _PLAIN_CHECKS:
        return True
    if kind is AllOf or kind is AnyOf:
        return all(only_checks(child) for child in policy.policies)  # type: ignore[attr-defined]
    return False
