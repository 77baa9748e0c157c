"""The AWS CLI, the AWS Encryption SDK and raw signed HTTP against ``enclave-kms serve``."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import httpx
import pytest
from kms_server_helpers import ACCESS_KEY, REGION, SECRET_KEY, sign
from kms_server_process import RunningServer, kms_client, running_server

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("kms-clients"), ["--max-body-bytes", "8192"]) as s:
        yield s


@pytest.fixture(scope="module")
def key_arn(server: RunningServer) -> str:
    kms = kms_client(server)
    return str(kms.create_key(Description="clients")["KeyMetadata"]["Arn"])


def isolated_env(tmp: Path) -> dict[str, str]:
    """Credentials by environment only; no config file of this machine is read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(tmp / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "aws-credentials"),
    )
    return env


def aws_cli(server: RunningServer, tmp: Path, *args: str) -> dict[str, Any]:
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the AWS CLI (awscli) is not installed in this environment")
    out = subprocess.run(
        [str(aws), "kms", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        capture_output=True, text=True, timeout=120, env=isolated_env(tmp),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout or "{}"))


def test_aws_cli_create_key_generate_data_key_and_decrypt(
    server: RunningServer, tmp_path: Path
) -> None:
    key = aws_cli(server, tmp_path, "create-key", "--description", "from the cli")
    key_id = key["KeyMetadata"]["KeyId"]
    dk = aws_cli(
        server,
        tmp_path,
        "generate-data-key",
        "--key-id",
        key_id,
        "--key-spec",
        "AES_256",
        "--encryption-context",
        "app=cli",
    )
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(dk["CiphertextBlob"]))
    dec = aws_cli(
        server,
        tmp_path,
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{blob}",
        "--encryption-context",
        "app=cli",
    )
    assert dec["Plaintext"] == dk["Plaintext"]
    assert dec["KeyId"] == dk["KeyId"]


def test_encryption_sdk_round_trip_with_encryption_context(
    server: RunningServer, key_arn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy, StrictAwsKmsMasterKeyProvider

    # botocore's service-specific endpoint variable is how a provider that builds its own
    # clients (the SDK makes one per region) is pointed at another endpoint.
    for name, value in isolated_env(tmp_path).items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", server.endpoint)
    provider = StrictAwsKmsMasterKeyProvider(
        key_ids=[key_arn], botocore_session=botocore.session.Session()
    )
    sdk = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    context = {"tenant": "acme", "purpose": "interop"}
    ciphertext, header = sdk.encrypt(
        source=b"secret payload", key_provider=provider, encryption_context=context
    )
    plaintext, dec_header = sdk.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == b"secret payload"
    assert context.items() <= dec_header.encryption_context.items()
    assert [k.key_provider.key_info for k in header.encrypted_data_keys] == [key_arn.encode()]


# --- raw HTTP with botocore-signed requests ---------------------------------------------------


def post(server: RunningServer, target: str, body: bytes, **kw: Any) -> httpx.Response:
    headers, body = sign(target, body, host=server.host, **kw)
    return httpx.post(f"{server.endpoint}/", content=body, headers=dict(headers), timeout=30)


def aws_error(resp: httpx.Response) -> tuple[int, str]:
    assert resp.headers["content-type"] == "application/x-amz-json-1.1"
    body = resp.json()
    assert set(body) == {"__type", "message"}
    return resp.status_code, str(body["__type"])


def test_unsigned_request(server: RunningServer) -> None:
    resp = httpx.post(
        f"{server.endpoint}/",
        content=b"{}",
        headers={
            "X-Amz-Target": "TrentService.ListKeys",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert aws_error(resp) == (400, "MissingAuthenticationTokenException")


def test_wrong_secret_and_unknown_key(server: RunningServer) -> None:
    assert aws_error(post(server, "ListKeys", b"{}", secret_key="nope")) == (
        400, "InvalidSignatureException")  # fmt: skip
    assert aws_error(post(server, "ListKeys", b"{}", access_key="AKIANOBODYNOBODY0000")) == (
        400, "UnrecognizedClientException")  # fmt: skip


def test_expired_signature_and_replay_outside_the_window(server: RunningServer) -> None:
    # Sign as if 10 minutes ago by rewriting the date before signing (botocore signs "now").
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    then = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y%m%dT%H%M%SZ")
    req = AWSRequest(
        "POST",
        f"{server.endpoint}/",
        data=b"{}",
        headers={
            "X-Amz-Target": "TrentService.ListKeys",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kms", REGION)
    req.context["timestamp"] = then
    req.headers["X-Amz-Date"] = then
    req.headers["Host"] = server.host
    signature = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    req.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{signer.credential_scope(req)}, "
        f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(req))}, "
        f"Signature={signature}"
    )
    resp = httpx.post(f"{server.endpoint}/", content=b"{}", headers=dict(req.headers))
    assert aws_error(resp) == (400, "InvalidSignatureException")
    assert resp.json()["message"].startswith("Signature expired:")

    # A request replayed within the window is accepted (SigV4 has no nonce; AWS behaves the
    # same); the window is what bounds a replay, as the expired case above shows.
    headers, body = sign("ListKeys", b"{}", host=server.host)
    for _ in range(2):
        r = httpx.post(f"{server.endpoint}/", content=body, headers=dict(headers))
        assert r.status_code == 200


def test_oversized_body(server: RunningServer) -> None:
    big = json.dumps({"KeyId": "k", "Plaintext": "A" * 12000}).encode()
    assert aws_error(post(server, "Encrypt", big)) == (413, "RequestEntityTooLargeException")


def test_garbage_json(server: RunningServer) -> None:
    assert aws_error(post(server, "ListKeys", b"\x00garbage{")) == (400, "SerializationException")


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("GenerateDataKey", {"KeyId": 123}),
        ("GenerateDataKey", {"KeyId": "k", "NumberOfBytes": "32"}),
        ("Encrypt", {"KeyId": "k", "Plaintext": {"x": 1}}),
        ("Encrypt", {"KeyId": "k", "Plaintext": "not*base64"}),
        ("Decrypt", {"CiphertextBlob": "AAAA", "EncryptionContext": ["a"]}),
        ("CreateKey", {"Tags": {"TagKey": "x"}}),
        ("ListKeys", {"Limit": True}),
        ("ScheduleKeyDeletion", {"KeyId": "k", "PendingWindowInDays": 7.5}),
    ],
)
def test_wrong_types_for_fields(server: RunningServer, target: str, body: object) -> None:
    resp = post(server, target, json.dumps(body).encode())
    assert aws_error(resp) == (400, "SerializationException")


def test_unknown_operation(server: RunningServer) -> None:
    assert aws_error(post(server, "FlyToTheMoon", b"{}")) == (400, "UnknownOperationException")


def test_validation_errors_come_from_the_core(server: RunningServer, key_arn: str) -> None:
    resp = post(
        server, "GenerateDataKey", json.dumps({"KeyId": key_arn, "NumberOfBytes": 0}).encode()
    )
    assert aws_error(resp) == (400, "ValidationException")


def test_disabled_key_over_raw_http(server: RunningServer) -> None:
    created = post(server, "CreateKey", b"{}").json()["KeyMetadata"]["KeyId"]
    assert post(server, "DisableKey", json.dumps({"KeyId": created}).encode()).status_code == 200
    resp = post(server, "Encrypt", json.dumps({"KeyId": created, "Plaintext": "AA=="}).encode())
    assert aws_error(resp) == (400, "DisabledException")
