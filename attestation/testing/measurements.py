"""PCR values the way Nitro measures them (nitro-attestation.md §3, enclave-ecosystem.md §1.3).

* Every PCR starts as 48 zero bytes and is extended as ``new = SHA-384(old || data)``.
* The EIF side (aws-nitro-enclaves-image-format ``EifHasher``, and ``nitro-cli pcr``) extends
  once with the SHA-384 *digest* of what it hashed: ``SHA-384(0^48 || SHA-384(data))``. That gives
  PCR0 (the image), PCR1 (kernel and boot ramdisk), PCR2 (application ramdisks) and PCR8 (the
  signing certificate's DER).
* PCR3 (parent's IAM role ARN) and PCR4 (parent instance id) are one extend with the raw UTF-8
  string: ``SHA-384(0^48 || "i-0592d6788f2a6df5f")``; checked on all ten genuine samples for PCR4.
* Debug mode (``nitro-cli run-enclave --debug-mode``) zeroes PCR0..2; PCR3 and PCR4 stay measured.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = [
    "BOOT_LOCKED_PCRS",
    "ZERO_PCR",
    "BootMeasurements",
    "eif_measurement",
    "extend",
    "string_measurement",
]

ZERO_PCR = bytes(48)
# PCRs 0..15 are locked at boot; their values appear in every document.
BOOT_LOCKED_PCRS = range(16)


def extend(old: bytes, data: bytes) -> bytes:
    """One PCR extend: ``SHA-384(old || data)``."""
    return hashlib.sha384(bytes(old) + bytes(data)).digest()


def eif_measurement(data: bytes) -> bytes:
    """A PCR as ``EifHasher`` computes it: ``SHA-384(0^48 || SHA-384(data))``."""
    return extend(ZERO_PCR, hashlib.sha384(data).digest())


def string_measurement(value: str) -> bytes:
    """PCR3/PCR4: a single extend of the raw UTF-8 string, ``SHA-384(0^48 || value)``."""
    return extend(ZERO_PCR, value.encode())


@dataclass(frozen=True)
class BootMeasurements:
    """What the Nitro hypervisor measures into PCRs 0..15 when an enclave boots.

    Attributes:
        image: the bytes PCR0 covers (the whole enclave image), or None for a zero PCR0.
        bootstrap: the bytes PCR1 covers (kernel and boot ramdisk), or None.
        application: the bytes PCR2 covers (the application ramdisks), or None.
        role_arn: the parent instance's IAM role ARN (PCR3), or None if it has no role.
        instance_id: the parent instance id (PCR4), e.g. ``"i-0592d6788f2a6df5f"``.
        signing_certificate: DER of the EIF signing certificate (PCR8), or None if unsigned.
        debug: debug mode: PCR0..2 are all zero whatever the image.
    """

    image: bytes | None = None
    bootstrap: bytes | None = None
    application: bytes | None = None
    role_arn: str | None = None
    instance_id: str | None = None
    signing_certificate: bytes | None = None
    debug: bool = False

    @classmethod
    def example(cls, *, instance_id: str, debug: bool = False) -> BootMeasurements:
        """A fixed, non-zero example image for tests that do not care about the values."""
        return cls(
            image=b"enclave-kms example enclave image",
            bootstrap=b"enclave-kms example kernel and init ramdisk",
            application=b"enclave-kms example application ramdisk",
            instance_id=instance_id,
            debug=debug,
        )

    def pcrs(self) -> dict[int, bytes]:
        """PCRs 0..15 as the NSM holds them at boot (unmeasured ones are 48 zero bytes)."""
        values = dict.fromkeys(BOOT_LOCKED_PCRS, ZERO_PCR)
        if not self.debug:
            for index, data in ((0, self.image), (1, self.bootstrap), (2, self.application)):
                if data is not None:
                    values[index] = eif_measurement(data)
        if self.role_arn is not None:
            values[3] = string_measurement(self.role_arn)
        if self.instance_id is not None:
            values[4] = string_measurement(self.instance_id)
        if self.signing_certificate is not None:
            values[8] = eif_measurement(self.signing_certificate)
        return values
