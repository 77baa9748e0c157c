"""The adapter's body read and response framing, driven through ASGI with controlled timing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kms_server_helpers import ACCESS_KEY, ACCOUNT, SECRET_KEY, sign

from enclave_kms import model
from enclave_kms.server._credentials import Credential, CredentialSet
from enclave_kms.server.app import create_app
from enclave_kms.server.settings import ServerSettings

HOST = "testserver"
Message = dict[str, object]


class RandomOnly:
    def __init__(self) -> None:
        self.calls = 0

    def generate_random(
        self, caller: model.Caller, request: model.GenerateRandomRequest
    ) -> model.GenerateRandomResponse:
        self.calls += 1
        return model.GenerateRandomResponse(plaintext=b"\x01" * (request.number_of_bytes or 1))


def _run(
    service: RandomOnly,
    tmp_path: Path,
    body: bytes,
    chunks: list[bytes | None],
    *,
    pause: Callable[[int], Awaitable[None]],
    timeout: float = 5.0,
    limit: int = 4096,
    root_path: str = "",
    method: str = "POST",
    configure: Callable[[Any], None] | None = None,
) -> list[Message]:
    """Send a signed GenerateRandom whose body arrives as ``chunks`` (``None``: the client
    disconnects), awaiting ``pause(i)`` before chunk ``i``; return what the app sent."""
    settings = ServerSettings(
        data_dir=tmp_path, body_read_timeout_seconds=timeout, max_body_bytes=limit
    )
    creds = CredentialSet(
        [Credential(ACCESS_KEY, SECRET_KEY, f"arn:aws:iam::{ACCOUNT}:user/c", ACCOUNT)]
    )
    app = create_app(service, settings, credentials=creds)
    if configure is not None:
        configure(app)
    headers, _ = sign("GenerateRandom", body, host=HOST)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers if k.lower() != "content-length"]
    sent: list[Message] = []
    queue = list(chunks)

    async def receive() -> Message:
        i = len(chunks) - len(queue)
        await pause(i)
        if not queue:
            return {"type": "http.disconnect"}
        chunk = queue.pop(0)
        if chunk is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": root_path + "/", "raw_path": b"/", "query_string": b"",
        "root_path": root_path,
        "headers": raw, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 4599),
    }  # fmt: skip
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=10))  # type: ignore[arg-type]
    return sent


async def _no_wait(_: int) -> None:
    return None


async def _yield_each(_: int) -> None:
    await asyncio.sleep(0.01)  # receive() suspends: the body is still on its way


BODY = b'{"NumberOfBytes": 3}'


@pytest.mark.parametrize("pause", [_no_wait, _yield_each], ids=["ready", "suspends"])
@pytest.mark.parametrize("pieces", [1, 4], ids=["whole", "chunked"])
def test_body_is_read_whole_however_it_arrives(
    tmp_path: Path, pause: Callable[[int], Awaitable[None]], pieces: int
) -> None:
    service = RandomOnly()
    step = -(-len(BODY) // pieces)
    chunks: list[bytes | None] = [BODY[i : i + step] for i in range(0, len(BODY), step)]
    sent = _run(service, tmp_path, BODY, chunks, pause=pause)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"Plaintext": "AQEB"}  # type: ignore[arg-type]
    assert service.calls == 1


def test_a_body_that_stalls_after_its_first_chunk_is_answered_408(tmp_path: Path) -> None:
    async def stall_after_first(i: int) -> None:
        if i > 0:
            await asyncio.sleep(3600)

    service = RandomOnly()
    sent = _run(service, tmp_path, BODY, [BODY[:5], BODY[5:]], pause=stall_after_first, timeout=0.2)
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["__type"] == "RequestTimeoutException"  # type: ignore[arg-type]
    assert service.calls == 0


@pytest.mark.parametrize("pause", [_no_wait, _yield_each], ids=["ready", "suspends"])
def test_a_body_over_the_limit_is_refused_whether_it_waits_or_not(
    tmp_path: Path, pause: Callable[[int], Awaitable[None]]
) -> None:
    service = RandomOnly()
    big = b" " * 1100 + BODY
    sent = _run(service, tmp_path, big, [big[:600], big[600:]], pause=pause, limit=1024)
    assert sent[0]["status"] == 413
    sent = _run(service, tmp_path, big, [big], pause=pause, limit=1024)
    assert sent[0]["status"] == 413
    assert service.calls == 0


@pytest.mark.parametrize("pause", [_no_wait, _yield_each], ids=["ready", "suspends"])
def test_a_client_that_disconnects_mid_body_never_reaches_the_service(
    tmp_path: Path, pause: Callable[[int], Awaitable[None]]
) -> None:
    service = RandomOnly()
    sent = _run(service, tmp_path, BODY, [BODY[:5], None], pause=pause)
    assert service.calls == 0
    assert sent[0]["status"] != 200


def test_every_answer_carries_a_fresh_uuid4_request_id_and_framing(tmp_path: Path) -> None:
    ids = set()
    for _ in range(20):
        sent = _run(RandomOnly(), tmp_path, BODY, [BODY], pause=_no_wait)
        headers = dict(sent[0]["headers"])  # type: ignore[arg-type]
        request_id = headers[b"x-amzn-requestid"].decode()
        parsed = uuid.UUID(request_id)
        assert str(parsed) == request_id  # canonical lower-case 8-4-4-4-12 form
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        ids.add(request_id)
        assert headers[b"content-type"] == b"application/x-amz-json-1.1"
        assert headers[b"content-length"] == str(len(sent[1]["body"])).encode()  # type: ignore[arg-type]
    assert len(ids) == 20


def test_post_under_a_root_path_is_served_through_the_framework_route(tmp_path: Path) -> None:
    # The shortcut past FastAPI's middleware takes only a bare "POST /"; behind a root path the
    # same handler answers through FastAPI's router.
    service = RandomOnly()
    sent = _run(service, tmp_path, BODY, [BODY], pause=_no_wait, root_path="/kms")
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"Plaintext": "AQEB"}  # type: ignore[arg-type]
    assert service.calls == 1


def test_other_methods_on_the_kms_path_still_get_405(tmp_path: Path) -> None:
    service = RandomOnly()
    sent = _run(service, tmp_path, BODY, [BODY], pause=_no_wait, method="GET")
    assert sent[0]["status"] == 405
    assert service.calls == 0


def test_middleware_added_to_the_app_sees_kms_calls(tmp_path: Path) -> None:
    # The shortcut past FastAPI's stack must not let a KMS call slip past middleware that an
    # operator adds (logging, access control): with any, every request goes through FastAPI.
    seen: list[str] = []

    class Recording:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            seen.append(f"{scope['method']} {scope['path']}")
            await self.app(scope, receive, send)

    service = RandomOnly()
    sent = _run(
        service, tmp_path, BODY, [BODY], pause=_no_wait,
        configure=lambda app: app.add_middleware(Recording),
    )  # fmt: skip
    assert sent[0]["status"] == 200
    assert service.calls == 1
    assert seen == ["POST /"]
