"""The server with a held-audit writer: answers wait for the audit record.

A real service on a SQLite store, whose ``held_audit_writer`` is replaced by a test writer
over the store's own guarded append, so the tests can see each record the server hands to the
writer, and make the writer refuse a record (a key changed) or fail (the database is gone).
"""

from __future__ import annotations

import asyncio
import base64
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from kms_server_helpers import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, sign

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's httpx deprecation notice, as in test_server_app
    from starlette.testclient import TestClient

from attestation import Verifier
from enclave_kms._rootkey import RootKey
from enclave_kms.audit import MemoryAuditSink
from enclave_kms.model import Caller, CreateKeyRequest, DisableKeyRequest
from enclave_kms.server._credentials import Credential, CredentialSet
from enclave_kms.server._held_audit import RequestsInFlight
from enclave_kms.server.app import create_app
from enclave_kms.server.settings import ServerSettings
from enclave_kms.service import KmsService
from enclave_kms.store import StoreError
from enclave_kms.store.sqlite import SqliteStore

HOST = "testserver"
ROOT = Caller(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT)


class ScriptedWriter:
    """Writes through the store's guarded append; can refuse or fail on demand."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.batches: list[list[str]] = []  # the operations of each write, as handed over
        self.before_write: Any = None  # called once before the next write (to change a key)
        self.fail = False
        self.closed = False

    async def write(self, audits: Sequence[tuple[Any, Sequence[Any]]]) -> list[bool]:
        self.batches.append([record.operation for record, _ in audits])
        if self.fail:
            raise StoreError("cannot write to the audit database")
        if self.before_write is not None:
            self.before_write, act = None, self.before_write
            act()
        return [self.store.append_audit_guarded(record, guards) for record, guards in audits]

    async def aclose(self) -> None:
        self.closed = True

    def counts(self) -> tuple[int, int]:
        return len(self.batches), sum(map(len, self.batches))


def _app(service: KmsService, tmp_path: Path, *, threadpool: bool = False) -> Any:
    creds = CredentialSet(
        [Credential(ACCESS_KEY, SECRET_KEY, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT)]
    )
    settings = ServerSettings(data_dir=tmp_path, service_in_threadpool=threadpool)
    return create_app(service, settings, credentials=creds)


def _service_with_writer(tmp_path: Path) -> tuple[KmsService, ScriptedWriter]:
    store = SqliteStore(tmp_path / "kms.sqlite3", RootKey(bytes(32)))
    service = KmsService(store, region=REGION, account_id=ACCOUNT, verifier=Verifier())
    writer = ScriptedWriter(store)
    service.held_audit_writer = lambda: writer  # type: ignore[method-assign]
    return service, writer


@pytest.fixture(params=[False, True], ids=["event-loop", "threadpool"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[KmsService, ScriptedWriter, TestClient]]:
    """One request at a time, each held as if others ran beside it (the held path)."""
    monkeypatch.setattr(RequestsInFlight, "side_by_side", lambda self: True)
    service, writer = _service_with_writer(tmp_path)
    app = _app(service, tmp_path, threadpool=request.param)
    with TestClient(app, base_url=f"http://{HOST}") as client:
        yield service, writer, client
    assert writer.closed  # the app closes its writer when it shuts down
    service.close()


def _post(client: TestClient, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers, raw = sign(target, json.dumps(body).encode(), host=HOST)
    resp = client.post("/", content=raw, headers=dict(headers))
    return resp.status_code, resp.json()


def _outcomes(service: KmsService) -> list[tuple[str, str]]:
    return [(r.operation, r.outcome) for r in service.query_audit(limit=100)]


def _key(service: KmsService) -> str:
    key_id = service.create_key(ROOT, CreateKeyRequest()).key_metadata.key_id
    assert key_id is not None
    return key_id


def test_the_record_is_handed_to_the_writer_and_written_before_the_answer(
    setup: tuple[KmsService, ScriptedWriter, TestClient],
) -> None:
    service, writer, client = setup
    key_id = _key(service)
    status, body = _post(client, "GenerateDataKey", {"KeyId": key_id, "KeySpec": "AES_256"})
    assert status == 200 and len(base64.b64decode(body["Plaintext"])) == 32
    status, body = _post(client, "DisableKey", {"KeyId": "alias/none"})
    assert (status, body["__type"]) == (400, "NotFoundException")
    assert writer.batches == [["GenerateDataKey"], ["DisableKey"]]
    assert _outcomes(service) == [
        ("CreateKey", "success"),
        ("GenerateDataKey", "success"),
        ("DisableKey", "NotFoundException"),
    ]


def test_a_record_refused_because_the_key_changed_reruns_on_the_stored_key(
    setup: tuple[KmsService, ScriptedWriter, TestClient],
) -> None:
    service, writer, client = setup
    key_id = _key(service)
    request = {"KeyId": key_id, "KeySpec": "AES_256"}
    assert _post(client, "GenerateDataKey", request)[0] == 200  # the key record is now cached
    # Another replica disables the key after this call decided, before its record is written.
    writer.before_write = lambda: service._store.update_key(key_id, {"key_state": "Disabled"})
    status, body = _post(client, "GenerateDataKey", request)
    assert (status, body["__type"]) == (400, "DisabledException")
    assert "Plaintext" not in body
    # The refused attempt left no record; the rerun's record says what the caller was told.
    assert writer.batches[1:] == [["GenerateDataKey"], ["GenerateDataKey"]]
    assert _outcomes(service)[1:] == [
        ("GenerateDataKey", "success"),
        ("GenerateDataKey", "DisabledException"),
    ]


def test_a_failed_write_fails_the_request_and_nothing_secret_leaves(
    setup: tuple[KmsService, ScriptedWriter, TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    service, writer, client = setup
    key_id = _key(service)
    writer.fail = True
    status, body = _post(client, "GenerateDataKey", {"KeyId": key_id, "KeySpec": "AES_256"})
    assert status == 500
    assert body["__type"] == "KMSInternalException"
    assert set(body) == {"__type", "message"}  # no data key without its record
    assert "audit database" not in json.dumps(body)
    assert "StoreError" in caplog.text
    assert _outcomes(service) == [("CreateKey", "success")]


def test_with_its_own_audit_sink_the_service_writes_in_the_call(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kms.sqlite3", RootKey(bytes(32)))
    sink = MemoryAuditSink()
    service = KmsService(store, region=REGION, account_id=ACCOUNT, verifier=Verifier(), audit=sink)
    # The store's writer would write to the store, not to this sink: none is offered.
    assert service.held_audit_writer() is None
    key_id = _key(service)
    held = service.call_holding_audit(service.disable_key, ROOT, DisableKeyRequest(key_id=key_id))
    assert held.audits == ()  # nothing held back: the sink has it already
    assert [(r.operation, r.outcome) for r in sink.records] == [
        ("CreateKey", "success"),
        ("DisableKey", "success"),
    ]
    service.close()


def test_a_request_alone_writes_its_record_in_the_call(tmp_path: Path) -> None:
    service, writer = _service_with_writer(tmp_path)
    key_id = _key(service)
    with TestClient(_app(service, tmp_path), base_url=f"http://{HOST}") as client:
        for _ in range(3):  # one at a time, as a client with one connection sends them
            status, _ = _post(client, "GenerateDataKey", {"KeyId": key_id, "KeySpec": "AES_256"})
            assert status == 200
    assert writer.batches == []  # nothing was held: no hand-off to pay for
    assert _outcomes(service) == [("CreateKey", "success")] + [("GenerateDataKey", "success")] * 3
    service.close()


def test_requests_side_by_side_are_held(tmp_path: Path) -> None:
    import httpx

    service, writer = _service_with_writer(tmp_path)
    key_id = _key(service)
    headers, raw = sign(
        "GenerateDataKey",
        json.dumps({"KeyId": key_id, "KeySpec": "AES_256"}).encode(),
        host=HOST,
    )

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=_app(service, tmp_path))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            posts = [client.post("/", content=raw, headers=dict(headers)) for _ in range(6)]
            return [r.status_code for r in await asyncio.gather(*posts)]

    assert asyncio.run(burst()) == [200] * 6
    # The first ran alone and wrote its own record; the five beside it handed theirs to the
    # writer (a store's writer would commit them as one batch: test_store_audit_batch).
    assert writer.batches == [["GenerateDataKey"]] * 5
    assert _outcomes(service) == [("CreateKey", "success")] + [("GenerateDataKey", "success")] * 6
    service.close()


def test_metrics_show_the_group_commits_of_a_burst(tmp_path: Path) -> None:
    import httpx

    store = SqliteStore(tmp_path / "kms.sqlite3", RootKey(bytes(32)))
    service = KmsService(store, region=REGION, account_id=ACCOUNT, verifier=Verifier())
    key_id = _key(service)
    headers, raw = sign(
        "GenerateDataKey",
        json.dumps({"KeyId": key_id, "KeySpec": "AES_256"}).encode(),
        host=HOST,
    )

    async def burst_then_scrape() -> str:
        transport = httpx.ASGITransport(app=_app(service, tmp_path))  # the store's own writer
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            posts = [client.post("/", content=raw, headers=dict(headers)) for _ in range(6)]
            assert [r.status_code for r in await asyncio.gather(*posts)] == [200] * 6
            return (await client.get("/metrics")).text

    text = asyncio.run(burst_then_scrape())
    # The first request ran alone; the five beside it were committed together, in one batch.
    assert "enclave_kms_audit_batches_total 1.0" in text
    assert "enclave_kms_audit_batched_records_total 5.0" in text
    assert len(service.query_audit(limit=100)) == 7
    service.close()
