"""``enclave-kms demo``: the simulated NSM, the local KMS and the parent proxy, wired together.

enclave-ecosystem.md §5 item 6: one harness that shows, in seconds and without EC2, that an
enclave gets a KMS data key only if its PCR0 matches the key policy. From Python::

    from enclave_kms._demo import run_demo

    result = run_demo(keep=True)      # prints each step; stops everything it started
    assert result.exit_code == 0

The KMS server and the proxy run as real subprocesses (``enclave-kms serve`` / ``proxy``); the
"enclave" runs in this process on a :class:`attestation.testing.nsm.SimulatedNsm` signed by a
fresh test PKI (DO NOT TRUST), and talks to KMS only through the proxy.
"""

from __future__ import annotations

from enclave_kms._demo.cli import register
from enclave_kms._demo.policy import (
    APPROVED_IMAGE,
    OTHER_IMAGE,
    DemoImage,
    PolicyBuilder,
    PolicyInputs,
    attested_only_policy,
)
from enclave_kms._demo.run import DemoResult, StepOutcome, run_demo

__all__ = [
    "APPROVED_IMAGE",
    "OTHER_IMAGE",
    "DemoImage",
    "DemoResult",
    "PolicyBuilder",
    "PolicyInputs",
    "StepOutcome",
    "attested_only_policy",
    "register",
    "run_demo",
]
