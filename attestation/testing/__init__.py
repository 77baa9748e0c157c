"""Test harness: a test PKI, a simulated NSM, document minting and a pytest plugin.

DO NOT TRUST anything minted here outside tests. The pieces live in their own modules, which
this package does not import, so that the pytest plugin (loaded in every pytest run of anyone who
installs the package) stays cheap:

* :mod:`attestation.testing.pki`: ``TestPki``, a seeded AWS-shaped P-384 chain;
* :mod:`attestation.testing.measurements`: PCR values as Nitro measures them;
* :mod:`attestation.testing.mint`: ``mint_document`` and the negative ``Variant`` catalogue;
* :mod:`attestation.testing.nsm`: ``SimulatedNsm``, the NSM protocol with real signatures;
* :mod:`attestation.testing.pytest_plugin`: the ``nitro_pki``, ``nsm``, ``attestation_document``
  and ``nitro_verifier`` fixtures.
"""

from __future__ import annotations

__all__: list[str] = []
