"""Shared helpers for the service tests (no tests here): a pinned clock and service factory."""

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


def make_service(
    path: Path,
    clock: PinnedClock,
    *,
    verifier: Verifier | None = None,
    root_key: bytes = ROOT_KEY,
    **kwargs: object,
) -> KmsService:
    store = SqliteStore(path, RootKey(root_key))
    return KmsService(
        store,
        region=REGION,
        account_id=ACCOUNT,
        verifier=verifier if verifier is not None else Verifier(),
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def clock() -> PinnedClock:
    return PinnedClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "kms.sqlite3"


@pytest.fixture
def service(db_path: Path, clock: PinnedClock) -> Iterator[KmsService]:
    svc = make_service(db_path, clock)
    yield svc
    svc.close()


def new_key(service: KmsService, **kwargs: object) -> str:
    """Create a key and return its UUID."""
    meta = service.create_key(ROOT_CALLER, CreateKeyRequest(**kwargs)).key_metadata  # type: ignore[arg-type]
    assert meta is not None
    return meta.key_id
