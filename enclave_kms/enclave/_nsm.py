"""Choosing the NSM: the real ``/dev/nsm`` device, or a simulated one only when asked for.

There is no silent fallback: outside an enclave, :func:`detect_nsm` raises a clear
:class:`AttestationUnavailableError` (kmstool aborts on an assertion instead, sdk-c #123). A
simulated NSM signs with a test PKI that real KMS refuses; it is used only when a caller passes
one to :class:`EnclaveSession` or the CLI is given ``--nsm simulated``, and then it warns.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from attestation.errors import AttestationError
from attestation.nsm import Nsm, NsmError, open_default_nsm
from attestation.nsm.device import DEFAULT_DEVICE
from enclave_kms.enclave._recipient import NsmClient
from enclave_kms.enclave.errors import AttestationUnavailableError, ConfigurationError

__all__ = ["DEFAULT_DEVICE", "SimulatedNsmWarning", "detect_nsm", "load_simulated_nsm"]


class SimulatedNsmWarning(UserWarning):
    """A simulated NSM is in use: its documents are signed by a test PKI, not by AWS."""


def detect_nsm(path: str | os.PathLike[str] = DEFAULT_DEVICE) -> NsmClient:
    """Return a client on the enclave's NSM device.

    Raises:
        AttestationUnavailableError: there is no NSM device (not inside a Nitro Enclave), or it
            cannot be opened.
    """
    if not Path(path).exists():
        raise AttestationUnavailableError(
            f"no NSM device at {os.fspath(path)}: not running inside a Nitro Enclave. "
            "For local tests pass a simulated NSM explicitly "
            "(CLI: --nsm simulated --pki-dir DIR)"
        )
    try:
        return open_default_nsm(path)
    except NsmError as exc:
        raise AttestationUnavailableError(
            f"cannot use the NSM device at {os.fspath(path)}: {exc}"
        ) from exc


def load_simulated_nsm(pki_dir: str | os.PathLike[str] | None) -> NsmClient:
    """UNSAFE, tests and laptops only: an NSM simulated over the test PKI saved in ``pki_dir``.

    Raises:
        ConfigurationError: ``pki_dir`` is missing or does not hold a saved test PKI.
    """
    if pki_dir is None:
        raise ConfigurationError("--nsm simulated needs --pki-dir DIR (a saved test PKI)")
    warnings.warn(
        "UNSAFE: simulated NSM in use; documents are signed by a test PKI, not by AWS",
        SimulatedNsmWarning,
        stacklevel=2,
    )
    # Imported here: production code paths never load the test harness.
    from attestation.testing.nsm import SimulatedNsm
    from attestation.testing.pki import TestPki

    try:
        pki = TestPki.load(Path(pki_dir))
    except (OSError, ValueError, KeyError, AttestationError) as exc:
        raise ConfigurationError(f"cannot load the test PKI from {pki_dir}: {exc}") from exc
    return Nsm(SimulatedNsm(pki))
