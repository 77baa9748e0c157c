"""HTTPS from a real ``enclave-kms serve``: the certificate checked, aws:SecureTransport true."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import SSLError
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY
from kms_server_process import TLS_ONLY_POLICY, enclave_kms_command, generates_data_key

from enclave_kms.testing import free_loopback_port
from enclave_kms.testing._process import terminate_group
from enclave_kms.testing._tls import write_test_tls_files

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``enclave-kms serve --tls-cert --tls-key`` on a free port: (endpoint, CA file)."""
    work = tmp_path_factory.mktemp("kms-tls")
    tls = write_test_tls_files(work)
    ca, cert, key = tls.ca, tls.cert, tls.key
    credentials = work / "credentials.json"
    credentials.write_text(
        json.dumps({"credentials": [
            {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, "principal": "root"}
        ]})
    )  # fmt: skip
    credentials.chmod(0o600)
    port = free_loopback_port()
    with (work / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [*enclave_kms_command(), "serve", "--port", str(port),
             "--data-dir", str(work / "data"), "--credentials-file", str(credentials),
             "--region", REGION, "--account-id", ACCOUNT,
             "--tls-cert", str(cert), "--tls-key", str(key)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    endpoint = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(ca))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (work / "server.log").read_text()
            try:
                # An https URL built from our own port.
                url = f"{endpoint}/healthz"
                with urllib.request.urlopen(url, context=context, timeout=1):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline, (work / "server.log").read_text()
                time.sleep(0.1)
        yield endpoint, ca
    finally:
        terminate_group(proc)


def _https_client(endpoint: str, ca: Path | bool) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        verify=str(ca) if isinstance(ca, Path) else ca,
    )


def test_boto3_over_https_checks_the_certificate_and_counts_as_tls(
    https_server: tuple[str, Path],
) -> None:
    endpoint, ca = https_server
    kms = _https_client(endpoint, ca)
    key_id = kms.create_key(Policy=TLS_ONLY_POLICY)["KeyMetadata"]["KeyId"]
    assert generates_data_key(kms, key_id)
    # A client that trusts only the public CAs refuses the test certificate.
    with pytest.raises(SSLError):
        _https_client(endpoint, True).list_keys()
