"""The SDK and the kmstool CLI against a real ``enclave-kms serve`` subprocess.

The server trusts the test PKI's root (``--trust-root``), verifies the simulated NSM's
documents, evaluates a key policy with a ``kms:RecipientAttestation:PCR0`` condition and
answers with CiphertextForRecipient. Requests are SigV4-signed by boto3 with temporary
credentials, as the parent hands them to an enclave.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.document import parse_document
from attestation.nsm import Nsm
from attestation.testing.nsm import SimulatedNsm
from attestation.testing.pki import TestPki
from enclave_kms.enclave._kms_client import Credentials
from enclave_kms.enclave.envelope import EnvelopeCipher, parse_message
from enclave_kms.enclave.errors import (
    EnvelopeAuthenticationError,
    KmsRequestError,
)
from enclave_kms.enclave.session import EnclaveSession
from enclave_kms.testing import LocalCredentials, LocalKms

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ACCOUNT = "111122223333"
ADMIN = Credentials("AKIAADMINADMINADMIN1", "admin-secret-admin-secret-admin-secret-0")
ENCLAVE = Credentials("ASIAENCLAVEENCLAVE01", "enclave-secret-enclave-secret-enclave-0", "tok-1")
OTHER_PCR0 = bytes([0x11]) * 48


@dataclass(frozen=True)
class Server:
    endpoint: str
    key_id: str
    pcr0: bytes


def _client(endpoint: str, credentials: Credentials) -> Any:
    return boto3.client(
        "kms",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )


def _policy(pcr0: bytes) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Admin",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/admin"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "OnlyTheMeasuredEnclave",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/enclave"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair"],
                    "Resource": "*",
                    "Condition": {
                        "StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": pcr0.hex()}
                    },
                },
            ],
        }
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, test_pki: TestPki) -> Iterator[Server]:
    credentials = [
        LocalCredentials(ADMIN.access_key_id, ADMIN.secret_access_key, "user/admin"),
        LocalCredentials(
            ENCLAVE.access_key_id,
            ENCLAVE.secret_access_key,
            "role/enclave",
            session_token=ENCLAVE.session_token,
        ),
    ]
    with LocalKms(
        trust_roots=[test_pki.root],
        credentials=credentials,
        workdir=tmp_path_factory.mktemp("kms-server"),
        extra_args=["--log-level", "warning"],
    ) as kms:
        # The enclave the policy admits: the simulated NSM's default boot measurements.
        pcr0 = parse_document(Nsm(SimulatedNsm(test_pki)).get_attestation_doc()).pcrs[0]
        key = _client(kms.endpoint_url, ADMIN).create_key(Policy=_policy(pcr0))
        yield Server(endpoint=kms.endpoint_url, key_id=key["KeyMetadata"]["Arn"], pcr0=pcr0)


def _session(server: Server, test_pki: TestPki, pcr0: bytes | None = None) -> EnclaveSession:
    nsm = Nsm(SimulatedNsm(test_pki, pcrs=None if pcr0 is None else {0: pcr0}))
    return EnclaveSession(
        nsm=nsm, region="us-east-1", endpoint_url=server.endpoint, credentials=ENCLAVE
    )


@pytest.fixture(scope="module")
def enclave(server: Server, test_pki: TestPki) -> EnclaveSession:
    return _session(server, test_pki)


def test_generate_data_key_then_decrypt_returns_the_same_key(
    server: Server, enclave: EnclaveSession
) -> None:
    key = enclave.generate_data_key(server.key_id, encryption_context={"app": "it"})
    assert len(key.plaintext) == 32
    again = enclave.decrypt(key.ciphertext_blob, encryption_context={"app": "it"})
    assert again.plaintext == key.plaintext
    assert again.key_id == server.key_id == key.key_id


def test_generate_random(enclave: EnclaveSession) -> None:
    first, second = enclave.generate_random(64), enclave.generate_random(64)
    assert len(first) == len(second) == 64
    assert first != second


def test_generate_data_key_pair_returns_a_matching_private_key(
    server: Server, enclave: EnclaveSession
) -> None:
    pair = enclave.generate_data_key_pair(server.key_id, "ECC_NIST_P256")
    private = serialization.load_der_private_key(bytes(pair.private_key), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public == pair.public_key
    assert pair.private_key_ciphertext_blob


def test_envelope_round_trip_and_tamper_detection(server: Server, enclave: EnclaveSession) -> None:
    cipher = EnvelopeCipher(enclave)
    context = {"tenant": "acme"}
    message = cipher.encrypt(b"patient record", key_id=server.key_id, encryption_context=context)
    assert cipher.decrypt(message, key_id=server.key_id) == b"patient record"

    flipped = bytearray(message)
    flipped[-5] ^= 0x40
    with pytest.raises(EnvelopeAuthenticationError):
        cipher.decrypt(bytes(flipped))

    # Edit the context value in the header: KMS refuses the data key for another context.
    parsed = parse_message(message)
    forged = message.replace(b"acme", b"evil", 1)
    assert parse_message(forged).encryption_context == {"tenant": "evil"}
    assert parsed.encryption_context == context
    with pytest.raises(KmsRequestError) as caught:
        cipher.decrypt(forged)
    assert caught.value.code == "InvalidCiphertextException"


def test_pcr0_policy_refuses_another_enclave(
    server: Server, enclave: EnclaveSession, test_pki: TestPki
) -> None:
    other = _session(server, test_pki, pcr0=OTHER_PCR0)
    assert parse_document(other.attestation_document()).pcrs[0] == OTHER_PCR0
    with pytest.raises(KmsRequestError) as caught:
        other.generate_data_key(server.key_id)
    assert caught.value.code == "AccessDeniedException"

    blob = enclave.generate_data_key(server.key_id).ciphertext_blob
    with pytest.raises(KmsRequestError) as caught:
        other.decrypt(blob)
    assert caught.value.code == "AccessDeniedException"


def _cli(server: Server, pki_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "enclave_kms", "enclave", *args,
        "--endpoint-url", server.endpoint,
        "--aws-access-key-id", ENCLAVE.access_key_id,
        "--aws-secret-access-key", ENCLAVE.secret_access_key,
        "--aws-session-token", str(ENCLAVE.session_token),
        "--nsm", "simulated", "--pki-dir", str(pki_dir),
    ]  # fmt: skip
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kmstool_cli_genkey_decrypt_genrandom_against_the_server(
    server: Server, pki_dir: Path
) -> None:
    b64 = r"[A-Za-z0-9+/]+={0,2}"
    genkey = _cli(server, pki_dir, "genkey", "--key-id", server.key_id, "--key-spec", "AES-256")
    assert genkey.returncode == 0, genkey.stderr
    match = re.fullmatch(f"CIPHERTEXT: ({b64})\nPLAINTEXT: ({b64})\n", genkey.stdout)
    assert match, genkey.stdout
    assert len(base64.b64decode(match[2])) == 32

    decrypt = _cli(server, pki_dir, "decrypt", "--ciphertext", match[1])
    assert decrypt.returncode == 0, decrypt.stderr
    assert decrypt.stdout == f"PLAINTEXT: {match[2]}\n"

    genrandom = _cli(server, pki_dir, "genrandom", "--length", "100")
    assert genrandom.returncode == 0, genrandom.stderr
    random = re.fullmatch(f"PLAINTEXT: ({b64})\n", genrandom.stdout)
    assert random
    assert len(base64.b64decode(random[1])) == 100


def test_kmstool_cli_reports_kms_errors_with_exit_1(server: Server, pki_dir: Path) -> None:
    result = _cli(server, pki_dir, "decrypt", "--ciphertext", base64.b64encode(b"x" * 40).decode())
    assert result.returncode == 1
    assert result.stdout == ""
    assert "InvalidCiphertextException" in result.stderr
    assert "Traceback" not in result.stderr
