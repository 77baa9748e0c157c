"""Caches across processes: two services on one store, as two replicas (or workers) would be.

Runs on both stores (``db_path`` is parametrised). The second service's cache poll is driven
by a hand-moved monotonic clock, so "within the poll interval" is exact, not timed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_service_support import ROOT_CALLER, PinnedClock, make_service, new_key
from test_service_support import clock as clock
from test_service_support import db_path as db_path

from enclave_kms._service_cache import RecordCache
from enclave_kms.errors import DisabledException, KMSInvalidStateException, NotFoundException
from enclave_kms.model import (
    CreateAliasRequest,
    DecryptRequest,
    DescribeKeyRequest,
    DisableKeyRequest,
    EncryptRequest,
    GetKeyPolicyRequest,
    PutKeyPolicyRequest,
    RotateKeyOnDemandRequest,
    ScheduleKeyDeletionRequest,
    UpdateAliasRequest,
    UpdateKeyDescriptionRequest,
)
from enclave_kms.service import KmsService

POLL = 1.0


@dataclass
class Ticks:
    """A monotonic clock the test moves by hand."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pair:
    writer: KmsService
    reader: KmsService
    ticks: Ticks

    def past_the_poll_interval(self) -> None:
        self.ticks.now += POLL


@pytest.fixture
def pair(db_path: Path | str, clock: PinnedClock) -> Iterator[Pair]:
    ticks = Ticks()
    writer = make_service(db_path, clock)
    reader = make_service(db_path, clock, cache_poll_interval=POLL, monotonic=ticks)
    yield Pair(writer, reader, ticks)
    writer.close()
    reader.close()


def _describe(service: KmsService, key: str) -> str:
    meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=key)).key_metadata
    assert meta is not None
    return meta.description


def _encrypt(service: KmsService, key: str) -> bytes:
    blob = service.encrypt(ROOT_CALLER, EncryptRequest(key_id=key, plaintext=b"x")).ciphertext_blob
    assert blob is not None
    return blob


def test_describe_is_stale_at_most_until_the_next_poll(pair: Pair) -> None:
    kid = new_key(pair.writer, description="before")
    assert _describe(pair.reader, kid) == "before"  # now cached by the reader
    pair.writer.update_key_description(
        ROOT_CALLER, UpdateKeyDescriptionRequest(key_id=kid, description="after")
    )
    # Within the poll interval the cached record may be served: this is the bound, not a goal.
    assert _describe(pair.reader, kid) == "before"
    pair.past_the_poll_interval()
    assert _describe(pair.reader, kid) == "after"


def test_a_process_reads_its_own_writes_at_once(pair: Pair) -> None:
    kid = new_key(pair.reader, description="before")
    assert _describe(pair.reader, kid) == "before"
    pair.reader.update_key_description(
        ROOT_CALLER, UpdateKeyDescriptionRequest(key_id=kid, description="after")
    )
    assert _describe(pair.reader, kid) == "after"


def test_crypto_operations_see_another_process_disable_at_once(pair: Pair) -> None:
    kid = new_key(pair.writer)
    blob = _encrypt(pair.reader, kid)
    assert _describe(pair.reader, kid) == ""  # the record is cached, the poll not yet due
    pair.writer.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=kid))
    with pytest.raises(DisabledException):
        _encrypt(pair.reader, kid)
    with pytest.raises(DisabledException):
        pair.reader.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob))


def test_crypto_operations_see_a_scheduled_deletion_at_once(pair: Pair) -> None:
    kid = new_key(pair.writer)
    _encrypt(pair.reader, kid)
    pair.writer.schedule_key_deletion(
        ROOT_CALLER, ScheduleKeyDeletionRequest(key_id=kid, pending_window_in_days=7)
    )
    with pytest.raises(KMSInvalidStateException):
        _encrypt(pair.reader, kid)


def test_a_rotation_elsewhere_is_used_by_the_next_encrypt(pair: Pair) -> None:
    kid = new_key(pair.writer)
    old = _encrypt(pair.reader, kid)
    pair.writer.rotate_key_on_demand(ROOT_CALLER, RotateKeyOnDemandRequest(key_id=kid))
    new = _encrypt(pair.reader, kid)  # no poll: the current version is read through
    assert new != old
    for blob in (old, new):
        assert pair.reader.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob)).plaintext
    # The version is in the ciphertext header: the new blob opens only with version 2.
    assert pair.writer.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=new)).plaintext == b"x"
    from enclave_kms import _ciphertext

    assert (_ciphertext.read_header(old).key_version, _ciphertext.read_header(new).key_version) == (
        1,
        2,
    )


def test_a_policy_change_elsewhere_is_enforced_at_once(pair: Pair) -> None:
    kid = new_key(pair.writer)
    _encrypt(pair.reader, kid)
    policy = pair.writer.get_key_policy(ROOT_CALLER, GetKeyPolicyRequest(key_id=kid)).policy
    assert policy is not None
    document = json.loads(policy)
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*"}
    document["Statement"].insert(0, deny)
    deny_encrypt = json.dumps(document)
    pair.writer.put_key_policy(ROOT_CALLER, PutKeyPolicyRequest(key_id=kid, policy=deny_encrypt))
    from enclave_kms.errors import AccessDeniedException

    with pytest.raises(AccessDeniedException):
        _encrypt(pair.reader, kid)


def test_an_alias_moved_elsewhere_is_followed_after_the_next_poll(pair: Pair) -> None:
    first, second = new_key(pair.writer), new_key(pair.writer)
    pair.writer.create_alias(ROOT_CALLER, CreateAliasRequest(alias_name="alias/app",
                                                             target_key_id=first))  # fmt: skip
    # An alias the reader never looked up is found at once (misses are not cached).
    assert _describe(pair.reader, "alias/app") == ""
    pair.writer.update_alias(ROOT_CALLER, UpdateAliasRequest(alias_name="alias/app",
                                                             target_key_id=second))  # fmt: skip
    blob = _encrypt(pair.reader, "alias/app")
    from enclave_kms import _ciphertext

    assert _ciphertext.read_header(blob).key_id == first  # bounded-stale alias target
    pair.past_the_poll_interval()
    assert _ciphertext.read_header(_encrypt(pair.reader, "alias/app")).key_id == second


def test_a_key_deleted_elsewhere_is_gone_for_crypto_at_once(pair: Pair, clock: PinnedClock) -> None:
    kid = new_key(pair.writer)
    _encrypt(pair.reader, kid)
    pair.writer.schedule_key_deletion(
        ROOT_CALLER, ScheduleKeyDeletionRequest(key_id=kid, pending_window_in_days=7)
    )
    clock.advance(days=8)
    with pytest.raises(NotFoundException):
        _describe(pair.writer, kid)  # the writer's lookup deletes the due key
    with pytest.raises(NotFoundException):
        _encrypt(pair.reader, kid)


class _CountingStore:
    """Just enough of a store for RecordCache: counts the change-counter reads."""

    def __init__(self) -> None:
        self.counter = 0
        self.polls = 0
        self.keys: dict[str, object] = {}

    def change_counter(self) -> int:
        self.polls += 1
        return self.counter

    def get_key(self, key_id: str) -> object:
        return self.keys.get(key_id)


def test_the_counter_is_read_at_most_once_per_interval() -> None:
    store, ticks = _CountingStore(), Ticks()
    cache = RecordCache(store, poll_interval=POLL, monotonic=ticks)  # type: ignore[arg-type]
    store.keys["k"] = "v1"
    for _ in range(5):
        assert cache.key("k") == "v1"
    assert store.polls == 1
    store.keys["k"], store.counter = "v2", 1
    ticks.now += POLL / 2
    assert cache.key("k") == "v1"
    assert store.polls == 1
    ticks.now += POLL / 2
    assert cache.key("k") == "v2"
    assert store.polls == 2


def test_poll_interval_zero_reads_the_counter_every_time() -> None:
    store, ticks = _CountingStore(), Ticks()
    cache = RecordCache(store, poll_interval=0, monotonic=ticks)  # type: ignore[arg-type]
    store.keys["k"] = "v1"
    assert cache.key("k") == "v1"
    store.keys["k"], store.counter = "v2", 1
    assert cache.key("k") == "v2"
    with pytest.raises(ValueError, match="poll_interval"):
        RecordCache(store, poll_interval=-1)  # type: ignore[arg-type]
