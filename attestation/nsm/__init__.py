"""Talk to the AWS Nitro Secure Module (NSM).

:class:`Nsm` speaks the NSM's CBOR protocol over an :class:`NsmTransport`: the real device
(:func:`open_default_nsm`, inside an enclave) or ``attestation.testing.SimulatedNsm`` in tests.
Errors are :class:`NsmError` with the NSM's own error-code name::

    from attestation.nsm import open_default_nsm

    nsm = open_default_nsm()
    document = nsm.get_attestation_doc(public_key=spki_der, nonce=nonce)
"""

from __future__ import annotations

from attestation.nsm._protocol import (
    MAX_PCRS,
    PCR_LENGTH,
    REQUEST_MAX_BYTES,
    RESPONSE_MAX_BYTES,
    ErrorCode,
    NsmError,
)
from attestation.nsm.client import Nsm, NsmDescription, NsmTransport, PcrDescription
from attestation.nsm.device import NsmDevice, NsmUnavailableError, open_default_nsm

__all__ = [
    "MAX_PCRS",
    "PCR_LENGTH",
    "REQUEST_MAX_BYTES",
    "RESPONSE_MAX_BYTES",
    "ErrorCode",
    "Nsm",
    "NsmDescription",
    "NsmDevice",
    "NsmError",
    "NsmTransport",
    "NsmUnavailableError",
    "PcrDescription",
    "open_default_nsm",
]
