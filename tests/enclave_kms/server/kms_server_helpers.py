"""Helpers for the server tests: the test account and keys, and botocore-signed requests."""

from __future__ import annotations

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCOUNT = "111122223333"
REGION = "us-east-1"
ACCESS_KEY = "AKIAENCLAVEKMSTEST01"
SECRET_KEY = "t3st+secret/ONLY/for/the/enclave/kms/tst"


def sign(
    target: str,
    body: bytes,
    *,
    host: str = "127.0.0.1:4599",
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    token: str | None = None,
    region: str = REGION,
    service: str = "kms",
) -> tuple[list[tuple[str, str]], bytes]:
    """Sign a KMS JSON 1.1 request the way boto3 does; return (headers, body)."""
    request = AWSRequest(
        method="POST",
        url=f"http://{host}/",
        data=body,
        headers={
            "X-Amz-Target": f"TrentService.{target}",
            "Content-Type": "application/x-amz-json-1.1",
            "Host": host,
        },
    )
    SigV4Auth(Credentials(access_key, secret_key, token), service, region).add_auth(request)
    prepared = request.prepare()
    return list(prepared.headers.items()), body
