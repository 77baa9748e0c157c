"""The HTTP adapter in-process, over a tiny fake service: dispatch, errors, limits, metrics."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, sign

with warnings.catch_warnings():
    # Starlette nags about its httpx-based client; that client is still the documented one.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from enclave_kms import model
from enclave_kms.errors import DisabledException
from enclave_kms.server._credentials import Credential, CredentialSet
from enclave_kms.server.app import create_app
from enclave_kms.server.settings import ServerSettings

HOST = "testserver"


class FakeService:
    """Two operations; records who called."""

    def __init__(self) -> None:
        self.callers: list[model.Caller] = []

    def generate_random(
        self, caller: model.Caller, request: model.GenerateRandomRequest
    ) -> model.GenerateRandomResponse:
        self.callers.append(caller)
        if request.number_of_bytes == 13:
            raise RuntimeError("secret-bearing internal detail 0xDEADBEEF")
        return model.GenerateRandomResponse(plaintext=b"\x00" * (request.number_of_bytes or 1))

    def disable_key(
        self, caller: model.Caller, request: model.DisableKeyRequest
    ) -> model.DisableKeyResponse:
        raise DisabledException(f"{request.key_id} is disabled.")


@pytest.fixture
def service() -> FakeService:
    return FakeService()


def _app_client(
    service: FakeService, tmp_path: Path, scheme: str = "http", **client: Any
) -> TestClient:
    """A client of the app over ``service``, signing as bob; ``client`` goes to TestClient."""
    settings = ServerSettings(data_dir=tmp_path, max_body_bytes=4096)
    creds = CredentialSet(
        [Credential(ACCESS_KEY, SECRET_KEY, f"arn:aws:iam::{ACCOUNT}:user/bob", ACCOUNT)]
    )
    app = create_app(service, settings, credentials=creds)
    return TestClient(app, base_url=f"{scheme}://{HOST}", **client)


@pytest.fixture
def client(service: FakeService, tmp_path: Path) -> TestClient:
    return _app_client(service, tmp_path)


def post(client: TestClient, target: str, body: bytes, **kw: str) -> tuple[int, dict[str, object]]:
    headers, body = sign(target, body, host=HOST, **kw)
    resp = client.post("/", content=body, headers=dict(headers))
    assert resp.headers["content-type"] == "application/x-amz-json-1.1"
    assert resp.headers["x-amzn-requestid"]
    return resp.status_code, resp.json()


def test_signed_request_reaches_the_service_with_the_callers_principal(
    client: TestClient, service: FakeService
) -> None:
    status, body = post(client, "GenerateRandom", b'{"NumberOfBytes": 4}')
    assert (status, body) == (200, {"Plaintext": "AAAAAA=="})
    assert service.callers == [
        model.Caller(f"arn:aws:iam::{ACCOUNT}:user/bob", ACCOUNT, ACCESS_KEY, None, False)
    ]


@pytest.mark.parametrize(("scheme", "secure"), [("http", False), ("https", True)])
def test_the_scheme_decides_secure_transport(
    service: FakeService, tmp_path: Path, scheme: str, secure: bool
) -> None:
    client = _app_client(service, tmp_path, scheme)
    assert post(client, "GenerateRandom", b'{"NumberOfBytes": 4}')[0] == 200
    assert [caller.secure_transport for caller in service.callers] == [secure]


@pytest.mark.parametrize(
    ("peer", "source_ip"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:0db8:0000::0001", "2001:db8::1"),  # as an address, not as the text written
        ("testclient", None),  # a placeholder name is no address
    ],
)
def test_the_peer_address_becomes_the_callers_source_ip(
    service: FakeService, tmp_path: Path, peer: str, source_ip: str | None
) -> None:
    client = _app_client(service, tmp_path, client=(peer, 50000))
    assert post(client, "GenerateRandom", b'{"NumberOfBytes": 4}')[0] == 200
    assert [caller.source_ip for caller in service.callers] == [source_ip]


def test_domain_error_maps_to_type_message_and_status(client: TestClient) -> None:
    status, body = post(client, "DisableKey", b'{"KeyId": "k1"}')
    assert (status, body) == (400, {"__type": "DisabledException", "message": "k1 is disabled."})


def test_unexpected_exception_is_a_generic_internal_error(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    status, body = post(client, "GenerateRandom", b'{"NumberOfBytes": 13}')
    assert status == 500
    assert body["__type"] == "KMSInternalException"
    assert "DEADBEEF" not in json.dumps(body)
    assert "RuntimeError" in caplog.text
    assert "DEADBEEF" not in caplog.text


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("NoSuchThing", "UnknownOperationException"),
        ("CreateGrant", "UnsupportedOperationException"),  # real KMS, not offered by the fake
    ],
)
def test_unknown_and_unsupported_operations(client: TestClient, target: str, error: str) -> None:
    status, body = post(client, target, b"{}")
    assert (status, body["__type"]) == (400, error)


def test_wrong_target_prefix_is_unknown_operation(client: TestClient) -> None:
    headers, _ = sign("GenerateRandom", b"{}", host=HOST)
    headers = [(k, "Other.GenerateRandom" if k == "X-Amz-Target" else v) for k, v in headers]
    # Re-signing is needed because the target is a signed header.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(
        "POST",
        f"http://{HOST}/",
        data=b"{}",
        headers={k: v for k, v in headers if k.lower() not in ("authorization", "x-amz-date")},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kms", REGION).add_auth(req)
    resp = client.post("/", content=b"{}", headers=dict(req.prepare().headers))
    assert resp.json()["__type"] == "UnknownOperationException"


def test_unsigned_request_is_refused_before_the_service(
    client: TestClient, service: FakeService
) -> None:
    resp = client.post("/", content=b"{}", headers={"X-Amz-Target": "TrentService.GenerateRandom"})
    assert resp.status_code == 400
    assert resp.json()["__type"] == "MissingAuthenticationTokenException"
    assert service.callers == []


def test_garbage_json_after_a_valid_signature_is_serialization(client: TestClient) -> None:
    status, body = post(client, "GenerateRandom", b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")


def test_oversized_body_is_413_by_declared_length_and_by_stream(client: TestClient) -> None:
    big = b'{"NumberOfBytes": 4, "Pad": "' + b"x" * 5000 + b'"}'
    headers, body = sign("GenerateRandom", big, host=HOST)
    resp = client.post("/", content=body, headers=dict(headers))
    assert resp.status_code == 413
    assert resp.json()["__type"] == "RequestEntityTooLargeException"

    def chunks() -> object:  # no Content-Length: chunked transfer
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    no_length = {k: v for k, v in headers if k.lower() != "content-length"}
    resp = client.post("/", content=chunks(), headers=no_length)  # type: ignore[arg-type]
    assert resp.status_code == 413


def test_healthz_and_metrics_count_by_operation_and_outcome(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    post(client, "GenerateRandom", b'{"NumberOfBytes": 2}')
    post(client, "DisableKey", b'{"KeyId": "k"}')
    text = client.get("/metrics").text
    assert 'enclave_kms_requests_total{operation="GenerateRandom",outcome="ok"} 1.0' in text
    assert 'enclave_kms_requests_total{operation="DisableKey",outcome="DisabledException"} 1.0' in (
        text
    )
    assert "enclave_kms_request_duration_seconds_bucket" in text


def test_two_apps_in_one_process_have_separate_metrics(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    creds = CredentialSet()
    a = TestClient(create_app(FakeService(), settings, credentials=creds))
    b = TestClient(create_app(FakeService(), settings, credentials=creds))
    a.post("/", content=b"{}")
    assert 'outcome="MissingAuthenticationTokenException"} 1.0' in a.get("/metrics").text
    assert "MissingAuthenticationTokenException" not in b.get("/metrics").text


def test_unsafe_mode_accepts_any_key_as_root_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ServerSettings(
        data_dir=tmp_path, insecure_accept_any_credentials=True, insecure_warning_interval=2
    )
    service = FakeService()
    with TestClient(create_app(service, settings), base_url=f"http://{HOST}") as c:
        for _ in range(2):
            status, _ = post(
                c, "GenerateRandom", b"{}", access_key="AKIAWHATEVER00000000", secret_key="wrong"
            )
            assert status == 200
    assert service.callers[0].principal_arn == f"arn:aws:iam::{ACCOUNT}:root"
    warnings = [r for r in caplog.records if "UNSAFE" in r.getMessage()]
    assert len(warnings) >= 2  # once at start, once after 2 requests


def test_a_body_that_never_arrives_is_answered_408(service: FakeService, tmp_path: Path) -> None:
    # A client announces a body and stalls: before any authentication, it must not hold the
    # connection (and its buffer) for ever.
    import asyncio
    import json as json_module

    settings = ServerSettings(data_dir=tmp_path, body_read_timeout_seconds=0.2)
    app = create_app(service, settings, credentials=CredentialSet([]))
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        await asyncio.sleep(3600)  # the body never comes
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(b"host", HOST.encode()), (b"content-length", b"300000")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 4599),
    }  # fmt: skip

    async def run() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=10)

    asyncio.run(run())
    assert sent[0]["status"] == 408
    body = json_module.loads(sent[1]["body"])  # type: ignore[arg-type]
    assert body["__type"] == "RequestTimeoutException"
