"""A simulated Nitro Secure Module that speaks the real CBOR protocol and signs real documents.

:class:`SimulatedNsm` is an :class:`attestation.nsm.NsmTransport`: wrap it in
:class:`attestation.nsm.Nsm` and the enclave code under test runs exactly as on hardware. Like
tkhq/qos's MockNsm, it signs genuine-format documents over its live PCR bank with a test PKI,
so mock and production go through the same verification code. Behaviour follows
enclave-ecosystem.md §1 and QEMU's ``hw/virtio/virtio-nsm.c``:

* 32 PCRs of 48 zero bytes; PCRs 0..15 are set from the boot measurements and locked;
* ``ExtendPCR``: ``new = SHA-384(old || data)``; a locked PCR gives ``ReadOnlyIndex``;
* ``LockPCR`` on a locked PCR gives ``ReadOnlyIndex``; ``LockPCRs(range > 32)`` ``InvalidIndex``;
* an index ≥ 32 gives ``InvalidIndex``; a request over 4096 bytes ``InputTooLarge``; anything that
  is not a known request ``InvalidOperation``; a known request with ill-typed fields
  ``InvalidArgument``; a document that would not fit the 12288-byte response ``InputTooLarge``;
* ``GetRandom`` returns 256 bytes from the injected RNG;
* ``Attestation`` carries the locked PCRs (ascending), a millisecond timestamp from the injected
  clock, and is signed by a 3-hour leaf that is re-issued when it nears expiry.

Errors are answered as ``{"Error": name}`` bytes: :meth:`SimulatedNsm.send` never raises.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.nsm import _protocol as p
from attestation.testing import _document as doc
from attestation.testing.measurements import BootMeasurements, extend
from attestation.testing.mint import LEAF_LIFETIME, resolve_pcrs, timestamp_ms
from attestation.testing.pki import TestPki

__all__ = ["RANDOM_BYTES", "SimulatedNsm"]

RANDOM_BYTES = 256  # QEMU NSM_RND_BUF_SIZE
_LEAF_LEAD = timedelta(seconds=10)
# Re-issue the leaf while it still has this much left; genuine documents had 0.7-3 h left.
_LEAF_MIN_REMAINING = timedelta(minutes=30)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SimulatedNsm:
    """An in-process NSM with the device's state machine and a test PKI for signing.

    Args:
        pki: signs the documents; verifiers must be configured to trust ``pki.root``.
        pcrs: boot values of PCRs 0..15 (a mapping, missing ones zero) or the measurements
            to derive them from; None means :meth:`BootMeasurements.example`.
        debug: debug mode (PCR0..2 zero).
        module_id: defaults to ``pki.default_module_id``.
        clock: returns the current aware datetime; documents are stamped with it.
        rng: ``rng(n)`` returns n random bytes for ``GetRandom``.
    """

    max_pcrs = p.MAX_PCRS

    def __init__(
        self,
        pki: TestPki,
        *,
        pcrs: Mapping[int, bytes] | BootMeasurements | None = None,
        debug: bool = False,
        module_id: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        boot = resolve_pcrs(pki, pcrs, debug=debug)
        if any(i >= 16 for i in boot) or any(len(v) != p.PCR_LENGTH for v in boot.values()):
            raise ValueError("boot PCRs are indexes 0..15 of 48 bytes each")
        self._pki = pki
        self._clock = clock
        self._rng = rng
        self.module_id = module_id or pki.default_module_id
        self._pcrs = [bytes(p.PCR_LENGTH)] * p.MAX_PCRS
        for index, value in boot.items():
            self._pcrs[index] = value
        self._locked = set(range(16))  # locked at boot
        self._leaf: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None

    def __repr__(self) -> str:
        return f"SimulatedNsm(module_id={self.module_id!r}, locked={sorted(self._locked)})"

    def send(self, request: bytes) -> bytes:
        """Handle one CBOR request and return the CBOR response (``{"Error": ...}`` on failure)."""
        try:
            return self._handle(p.decode_request(request))
        except p.NsmError as exc:
            return p.encode_error(exc.code)

    def _handle(self, req: p.Request) -> bytes:
        if isinstance(req, p.DescribeNsm):
            return p.encode_response(
                "DescribeNSM",
                {
                    "version_major": 1,
                    "version_minor": 0,
                    "version_patch": 0,
                    "module_id": self.module_id,
                    "max_pcrs": p.MAX_PCRS,
                    "locked_pcrs": sorted(self._locked),
                    "digest": "SHA384",
                },
            )
        if isinstance(req, p.GetRandom):
            return p.encode_response("GetRandom", {"random": bytes(self._rng(RANDOM_BYTES))})
        if isinstance(req, p.DescribePcr):
            i = self._index(req.index)
            return p.encode_response(
                "DescribePCR", {"lock": i in self._locked, "data": self._pcrs[i]}
            )
        if isinstance(req, p.ExtendPcr):
            i = self._index(req.index)
            if i in self._locked:
                raise p.NsmError(p.ErrorCode.ReadOnlyIndex)
            self._pcrs[i] = extend(self._pcrs[i], req.data)
            return p.encode_response("ExtendPCR", {"data": self._pcrs[i]})
        if isinstance(req, p.LockPcr):
            i = self._index(req.index)
            if i in self._locked:
                raise p.NsmError(p.ErrorCode.ReadOnlyIndex)
            self._locked.add(i)
            return p.encode_response("LockPCR")
        if isinstance(req, p.LockPcrs):
            if req.range > p.MAX_PCRS:
                raise p.NsmError(p.ErrorCode.InvalidIndex)
            self._locked.update(range(req.range))
            return p.encode_response("LockPCRs")
        return self._attest(req)

    def _index(self, index: int) -> int:
        if index >= p.MAX_PCRS:
            raise p.NsmError(p.ErrorCode.InvalidIndex)
        return index

    def _attest(self, req: p.AttestationRequest) -> bytes:
        now = self._clock()
        cert, key = self._current_leaf(now)
        fields = doc.payload_fields(
            module_id=self.module_id,
            timestamp_ms=timestamp_ms(now),
            pcrs={i: self._pcrs[i] for i in sorted(self._locked)},
            certificate=cert.public_bytes(Encoding.DER),
            cabundle=self._pki.cabundle,
            public_key=req.public_key,
            user_data=req.user_data,
            nonce=req.nonce,
        )
        payload = doc.encode_map(fields)
        signature = doc.sign_es384(key, doc.PROTECTED_ES384, payload)
        document = doc.encode_cose_sign1(doc.PROTECTED_ES384, {}, payload, signature)
        response = p.encode_response("Attestation", {"document": document})
        if len(response) > p.RESPONSE_MAX_BYTES:
            # QEMU answers InputTooLarge when the response does not fit the 0x3000 buffer.
            raise p.NsmError(p.ErrorCode.InputTooLarge)
        return response

    def _current_leaf(self, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        leaf = self._leaf
        if leaf is not None:
            cert = leaf[0]
            if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc - _LEAF_MIN_REMAINING:
                return leaf
        not_before = now.replace(microsecond=0) - _LEAF_LEAD
        self._leaf = self._pki.issue_leaf(
            self.module_id, not_before=not_before, not_after=not_before + LEAF_LIFETIME
        )
        return self._leaf
