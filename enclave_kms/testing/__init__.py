"""Testing helpers for applications that use enclave-kms: a throwaway local KMS server.

:class:`LocalKms` starts ``enclave-kms serve`` on a free loopback port with a private data
directory and freshly generated access keys, and hands out boto3 clients for it. Installing the
package also registers a pytest plugin (:mod:`enclave_kms.testing.pytest_plugin`) with the
fixtures ``local_kms`` and ``local_kms_client``, whose server trusts the attestation plugin's
test PKI, so documents from its ``nsm`` fixture work as ``Recipient``::

    from enclave_kms.enclave import EnclaveSession

    def test_enclave_gets_its_data_key(local_kms_client, nsm):
        key_id = local_kms_client.create_key()["KeyMetadata"]["KeyId"]
        session = EnclaveSession(nsm=nsm, kms_client=local_kms_client)
        data_key = session.generate_data_key(key_id)
        assert session.decrypt(data_key.ciphertext_blob).plaintext == data_key.plaintext
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enclave_kms.testing._local import (
        LocalCredentials,
        LocalKms,
        LocalKmsError,
        free_loopback_port,
    )

__all__ = ["LocalCredentials", "LocalKms", "LocalKmsError", "free_loopback_port"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): pytest imports the plugin below this package in every
    # session of an environment that has enclave-kms installed, used or not.
    if name in __all__:
        from enclave_kms.testing import _local

        return getattr(_local, name)  # free_loopback_port too (imported there)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
