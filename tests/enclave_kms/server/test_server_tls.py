"""HTTPS from a real ``enclave-kms serve``: the certificate checked, aws:SecureTransport true."""

from __future__ import annotations

import ipaddress
import json
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import SSLError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY
from kms_server_process import TLS_ONLY_POLICY, enclave_kms_command, generates_data_key

from enclave_kms.testing import free_loopback_port
from enclave_kms.testing._process import terminate_group

pytestmark = pytest.mark.interop


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_test_ca_and_server_cert(work: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 it signed: (ca.pem, server.pem, key)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("enclave-kms test CA"))
        .issuer_name(_name("enclave-kms test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (work / "ca.pem", work / "server.pem", work / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o600)
    return paths


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``enclave-kms serve --tls-cert --tls-key`` on a free port: (endpoint, CA file)."""
    work = tmp_path_factory.mktemp("kms-tls")
    ca, cert, key = _write_test_ca_and_server_cert(work)
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
