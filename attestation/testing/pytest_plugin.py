"""pytest plugin: fixtures for minted attestation documents (a pytest11 entry point).

Fixtures:

* ``nitro_pki``: a session-wide :class:`~attestation.testing.pki.TestPki` (fixed seed, CAs
  valid from an hour before the session starts). DO NOT TRUST its root outside tests.
* ``nsm``: a fresh :class:`attestation.nsm.Nsm` client over a
  :class:`~attestation.testing.nsm.SimulatedNsm` (``nsm.transport`` is the simulator).
* ``attestation_document``: a factory, ``attestation_document(public_key=..., pcrs=...,
  nonce=..., user_data=..., debug=..., variant=...) -> bytes``, stamped with the current time.
* ``nitro_verifier``: an :class:`attestation.Verifier` that trusts the test root only.

Example::

    from attestation import policy

    def test_enclave_key_is_attested(attestation_document, nitro_verifier):
        spki = my_enclave_public_key_der()
        pcr0 = bytes.fromhex("ab" * 48)
        document = attestation_document(public_key=spki, pcrs={0: pcr0})
        result = nitro_verifier.verify(document, policy=policy.PCRs({0: pcr0}))
        assert result.public_key_der == spki

Importing this module loads nothing but pytest: the fixtures import the harness when used, so
the plugin costs nothing in test runs that do not use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from attestation import Verifier
    from attestation.nsm import Nsm
    from attestation.testing.measurements import BootMeasurements
    from attestation.testing.pki import TestPki

__all__ = ["PLUGIN_SEED", "attestation_document", "nitro_pki", "nitro_verifier", "nsm"]

PLUGIN_SEED = 0x4E17_7E57


@pytest.fixture(scope="session")
def nitro_pki() -> TestPki:
    """A test PKI for the session: fixed seed, CAs valid from one hour ago (DO NOT TRUST)."""
    from attestation.testing.pki import TestPki

    return TestPki.create(PLUGIN_SEED, valid_from=datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture
def nsm(nitro_pki: TestPki) -> Nsm:
    """A fresh simulated NSM (PCRs 0..15 locked at boot) behind the production ``Nsm`` client."""
    from attestation.nsm import Nsm
    from attestation.testing.nsm import SimulatedNsm

    return Nsm(SimulatedNsm(nitro_pki))


@pytest.fixture
def attestation_document(nitro_pki: TestPki) -> Callable[..., bytes]:
    """A factory of documents signed by ``nitro_pki``, dated now."""
    from attestation.testing.mint import mint_document

    def make(
        *,
        public_key: bytes | None = None,
        pcrs: Mapping[int, bytes] | BootMeasurements | None = None,
        nonce: bytes | None = None,
        user_data: bytes | None = None,
        **kwargs: Any,
    ) -> bytes:
        return mint_document(
            nitro_pki, public_key=public_key, pcrs=pcrs, nonce=nonce, user_data=user_data, **kwargs
        )

    return make


@pytest.fixture
def nitro_verifier(nitro_pki: TestPki) -> Verifier:
    """A verifier that trusts the session's test root, and nothing else."""
    from attestation import Verifier

    return Verifier(trusted_roots=[nitro_pki.root])
