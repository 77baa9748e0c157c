"""Shared helpers for the service tests (no tests here): a pinned clock and service factory.

The ``db_path`` fixture is the storage the service runs on, and is parametrised: every service
test runs once on the embedded SQLite store (a file path) and once on the PostgreSQL store (a
``postgresql://`` URL of a fresh, migrated database on the session's throwaway cluster). A
test that only makes sense for one of them selects it with
``@pytest.mark.parametrize("db_path", ["sqlite"], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attestation import Verifier
from enclave_kms._rootkey import RootKey
from enclave_kms.model import Caller, CreateKeyRequest
from enclave_kms.service import KmsService
from enclave_kms.store import Store
from enclave_kms.store.sqlite import SqliteStore

REGION = "eu-west-1"
ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ROOT_CALLER = Caller(principal_arn=f"arn:aws:iam::{ACCOUNT}:root", account_id=ACCOUNT)
APP_CALLER = Caller(principal_arn=f"arn:aws:iam::{ACCOUNT}:role/app", account_id=ACCOUNT)
STRANGER = Caller(principal_arn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/x", account_id=OTHER_ACCOUNT)
ROOT_KEY = bytes(range(32))


@dataclass
class PinnedClock:
    """A clock the test moves by hand."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


# Services opened on each PostgreSQL database, closed when its test ends (their pools hold
# connections and a thread; a test that forgets close() must not leak them).
_OPENED: dict[str, list[KmsService]] = {}


def open_test_store(path: Path | str, root_key: bytes = ROOT_KEY) -> Store:
    """A store on ``path``: a SQLite file, or a ``postgresql://`` database URL."""
    if isinstance(path, str) and path.startswith("postgresql://"):
        from enclave_kms.store.postgres import open_store

        return open_store(path, RootKey(root_key), max_connections=4, lock_timeout=10.0)
    return SqliteStore(Path(path), RootKey(root_key))


def make_service(
    path: Path | str,
    clock: PinnedClock,
    *,
    verifier: Verifier | None = None,
    root_key: bytes = ROOT_KEY,
    **kwargs: object,
) -> KmsService:
    store = open_test_store(path, root_key)
    service = KmsService(
        store,
        region=REGION,
        account_id=ACCOUNT,
        verifier=verifier if verifier is not None else Verifier(),
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )
    if isinstance(path, str):
        _OPENED.setdefault(path, []).append(service)
    return service


@pytest.fixture
def clock() -> PinnedClock:
    return PinnedClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """Fresh storage: a SQLite file path, or the URL of a fresh migrated PostgreSQL database."""
    if request.param == "sqlite":
        yield tmp_path / "kms.sqlite3"
        return
    url: str = request.getfixturevalue("pg_url")
    yield url
    for service in _OPENED.pop(url, []):
        service.close()


@pytest.fixture
def service(db_path: Path | str, clock: PinnedClock) -> Iterator[KmsService]:
    svc = make_service(db_path, clock)
    yield svc
    svc.close()


def new_key(service: KmsService, **kwargs: object) -> str:
    """Create a key and return its UUID."""
    meta = service.create_key(ROOT_CALLER, CreateKeyRequest(**kwargs)).key_metadata  # type: ignore[arg-type]
    assert meta is not None
    return meta.key_id
