"""High-level NSM client over any transport: the real ``/dev/nsm`` or a simulator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from attestation.nsm._protocol import (
    REQUEST_MAX_BYTES,
    AttestationRequest,
    DescribeNsm,
    DescribePcr,
    ErrorCode,
    ExtendPcr,
    GetRandom,
    LockPcr,
    LockPcrs,
    NsmError,
    Request,
    decode_response,
    encode_request,
)

__all__ = ["Nsm", "NsmDescription", "NsmTransport", "PcrDescription"]


@runtime_checkable
class NsmTransport(Protocol):
    """Carries one CBOR request to the NSM and returns its CBOR response."""

    def send(self, request: bytes) -> bytes:
        """Send ``request`` and return the raw response bytes."""
        ...


@dataclass(frozen=True)
class NsmDescription:
    """The ``DescribeNSM`` response."""

    version_major: int
    version_minor: int
    version_patch: int
    module_id: str
    max_pcrs: int
    locked_pcrs: frozenset[int]
    digest: str


@dataclass(frozen=True)
class PcrDescription:
    """The ``DescribePCR`` response: whether the PCR is locked, and its value."""

    locked: bool
    data: bytes


class Nsm:
    """Typed access to the Nitro Secure Module.

    Every method sends one request and either returns the decoded response or raises
    :class:`~attestation.nsm.NsmError` carrying the NSM's error code. Unlike PyPI
    ``aws-nsm-interface``, an ``{"Error": ...}`` answer is checked before any field is read, and
    a response of the wrong type is ``InvalidResponse`` (as nsm-lib does).

    Example:
        >>> from attestation.nsm import Nsm, open_default_nsm          # doctest: +SKIP
        >>> nsm = open_default_nsm()                                   # doctest: +SKIP
        >>> doc = nsm.get_attestation_doc(nonce=b"0123456789abcdef")   # doctest: +SKIP
    """

    def __init__(self, transport: NsmTransport) -> None:
        self.transport = transport

    def describe_nsm(self) -> NsmDescription:
        """Describe the module (version, module id, PCR count, locked PCRs, digest).

        Raises:
            NsmError: the NSM refused, or answered with something else than a description.
        """
        f = self._call(DescribeNsm(), "DescribeNSM")
        locked = f.get("locked_pcrs")
        if not isinstance(locked, list | tuple) or not all(_is_uint(i) for i in locked):
            raise _bad("DescribeNSM.locked_pcrs")
        return NsmDescription(
            version_major=_uint(f, "version_major"),
            version_minor=_uint(f, "version_minor"),
            version_patch=_uint(f, "version_patch"),
            module_id=_text(f, "module_id"),
            max_pcrs=_uint(f, "max_pcrs"),
            locked_pcrs=frozenset(locked),
            digest=_text(f, "digest"),
        )

    def describe_pcr(self, index: int) -> PcrDescription:
        """Read PCR ``index`` and whether it is locked.

        Raises:
            NsmError: ``InvalidIndex`` for an index the module does not have, among others.
        """
        f = self._call(DescribePcr(index), "DescribePCR")
        lock = f.get("lock")
        if not isinstance(lock, bool):
            raise _bad("DescribePCR.lock")
        return PcrDescription(locked=lock, data=_bytes(f, "data"))

    def extend_pcr(self, index: int, data: bytes) -> bytes:
        """Extend PCR ``index`` with ``data`` (``SHA-384(old || data)``); return the new value.

        Raises:
            NsmError: ``ReadOnlyIndex`` if the PCR is locked, ``InvalidIndex`` if out of range.
        """
        return _bytes(self._call(ExtendPcr(index, bytes(data)), "ExtendPCR"), "data")

    def lock_pcr(self, index: int) -> None:
        """Lock PCR ``index`` so it can no longer be extended.

        Raises:
            NsmError: ``ReadOnlyIndex`` if it is already locked, ``InvalidIndex`` if out of range.
        """
        self._call(LockPcr(index), "LockPCR", unit=True)

    def lock_pcrs(self, range_: int) -> None:
        """Lock PCRs ``[0, range_)``; already-locked ones are fine.

        Raises:
            NsmError: ``range_`` exceeds the module's PCR count.
        """
        self._call(LockPcrs(range_), "LockPCRs", unit=True)

    def get_random(self) -> bytes:
        """Return the NSM's random bytes (256 per call on QEMU and hardware).

        Raises:
            NsmError: the NSM refused.
        """
        return _bytes(self._call(GetRandom(), "GetRandom"), "random")

    def get_attestation_doc(
        self,
        *,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
    ) -> bytes:
        """Request a signed attestation document (untagged COSE_Sign1 bytes).

        Args:
            user_data: up to 1024 bytes echoed in the document, or None.
            nonce: up to 1024 bytes echoed in the document, or None.
            public_key: up to 1024 bytes (usually a DER SPKI) echoed in the document, or None.

        Raises:
            NsmError: ``InputTooLarge`` if the request exceeds 4096 bytes, or the NSM's error.
        """
        req = AttestationRequest(user_data=user_data, nonce=nonce, public_key=public_key)
        return _bytes(self._call(req, "Attestation"), "document")

    def _call(self, request: Request, expected: str, *, unit: bool = False) -> Mapping[str, Any]:
        raw = encode_request(request)
        # nsm-api's driver checks the cap before the ioctl and answers InputTooLarge itself.
        if len(raw) > REQUEST_MAX_BYTES:
            raise NsmError(ErrorCode.InputTooLarge, f"request is {len(raw)} bytes")
        return decode_response(self.transport.send(raw), expected, unit=unit)


def _bad(what: str) -> NsmError:
    return NsmError(ErrorCode.InvalidResponse, f"{what} has the wrong type")


def _is_uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _uint(fields: Mapping[str, Any], key: str) -> int:
    value = fields.get(key)
    if not _is_uint(value):
        raise _bad(key)
    return int(value)  # type: ignore[arg-type]


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str):
        raise _bad(key)
    return value


def _bytes(fields: Mapping[str, Any], key: str) -> bytes:
    value = fields.get(key)
    if not isinstance(value, bytes):
        raise _bad(key)
    return value
