"""The parent proxy in front of an HTTPS KMS: TLS passes through it end to end.

The proxy relays bytes and never terminates TLS, so the enclave's client checks the server's
own certificate through it, and the KMS sees a TLS connection (``aws:SecureTransport``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from proxy_testkit import start_proxy

from attestation.nsm import Nsm
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki
from enclave_kms.enclave import EnclaveSession
from enclave_kms.testing import LocalKms

pytestmark = pytest.mark.interop


@pytest.fixture
def proxied_https_kms() -> Iterator[tuple[LocalKms, Any, TestPki]]:
    """A LocalKms over TLS, and the port of a proxy relaying to it (run on its own loop)."""
    pki = TestPki.create(0x7E5, valid_from=datetime.now(UTC) - timedelta(hours=1))
    with LocalKms(trust_roots=[pki.root], tls=True) as kms:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stop = asyncio.Event()
        holder: dict[str, Any] = {}

        async def serve() -> None:
            proxy, address = await start_proxy(f"tcp:127.0.0.1:{kms.port}")
            holder["port"], holder["proxy"] = address[1], proxy
            started.set()
            await stop.wait()
            await proxy.shutdown()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
        thread.start()
        try:
            assert started.wait(20)
            yield kms, holder, pki
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(20)
            loop.close()


def test_an_enclave_reaches_an_https_kms_through_the_proxy(
    proxied_https_kms: tuple[LocalKms, Any, TestPki],
) -> None:
    kms, proxy, pki = proxied_https_kms
    proxy_port = proxy["port"]
    # The enclave's client: the proxy's address, the server's CA.
    client = kms.client(endpoint_url=f"https://127.0.0.1:{proxy_port}")
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    session = EnclaveSession(nsm=Nsm(SimulatedNsm(pki)), kms_client=client)
    data_key = session.generate_data_key(key_id)
    assert session.decrypt(data_key.ciphertext_blob).plaintext == data_key.plaintext
    # Every call went through the proxy (one keep-alive connection at least), both ways.
    stats = proxy["proxy"].stats()
    assert stats.total >= 1 and stats.bytes_up > 0 and stats.bytes_down > 0
