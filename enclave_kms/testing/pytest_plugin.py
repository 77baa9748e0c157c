"""pytest plugin: a local KMS server for the session (a pytest11 entry point).

Fixtures:

* ``local_kms``: a session-wide :class:`~enclave_kms.testing.LocalKms` (``enclave-kms serve``
  in a subprocess, on a free loopback port, with generated access keys for ``root``). Besides
  the AWS root it trusts the attestation plugin's ``nitro_pki`` root, so documents from the
  ``nsm`` and ``attestation_document`` fixtures are accepted as ``Recipient``. DO NOT point
  anything real at it.
* ``local_kms_client``: a boto3 KMS client for it, signed as the account root.

Example::

    from enclave_kms.enclave import EnclaveSession

    def test_enclave_gets_its_data_key(local_kms_client, nsm):
        key_id = local_kms_client.create_key()["KeyMetadata"]["KeyId"]
        session = EnclaveSession(nsm=nsm, kms_client=local_kms_client)
        data_key = session.generate_data_key(key_id)   # via CiphertextForRecipient
        ...

Importing this module loads nothing but pytest: the server starts only in a session whose tests
ask for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

    from attestation.testing.pki import TestPki
    from enclave_kms.testing import LocalKms

__all__ = ["local_kms", "local_kms_client"]


@pytest.fixture(scope="session")
def local_kms(nitro_pki: TestPki) -> Iterator[LocalKms]:
    """A local KMS server for the session that trusts ``nitro_pki`` (DO NOT TRUST outside tests)."""
    from enclave_kms.testing import LocalKms

    with LocalKms(trust_roots=[nitro_pki.root]) as kms:
        yield kms


@pytest.fixture
def local_kms_client(local_kms: LocalKms) -> KMSClient:
    """A boto3 KMS client for ``local_kms``, signed as the account root."""
    return local_kms.client()
