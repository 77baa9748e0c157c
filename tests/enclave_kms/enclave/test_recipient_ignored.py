"""A KMS that ignores Recipient (moto's server, kms-recipient.md §8) is refused, not trusted."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from enclave_kms.enclave.errors import UnexpectedPlaintextError
from enclave_kms.enclave.session import EnclaveSession

pytestmark = [pytest.mark.interop, pytest.mark.slow]
MOTO_SERVER = shutil.which("moto_server")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    if MOTO_SERVER is None:
        pytest.skip("moto_server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _client(endpoint: str) -> Any:
    return boto3.client(
        "kms",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_plaintext_from_a_kms_that_ignores_recipient_is_refused(
    moto_endpoint: str, make_nsm: Any
) -> None:
    client = _client(moto_endpoint)
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    session = EnclaveSession(nsm=make_nsm(), kms_client=client)
    with pytest.raises(UnexpectedPlaintextError, match="GenerateDataKey"):
        session.generate_data_key(key_id)
    blob = client.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    with pytest.raises(UnexpectedPlaintextError, match="Decrypt"):
        session.decrypt(blob)
    with pytest.raises(UnexpectedPlaintextError, match="GenerateRandom"):
        session.generate_random(16)
