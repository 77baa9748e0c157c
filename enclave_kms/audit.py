"""Audit records: one per operation, allowed, denied or failed.

A record says who did what to which key and how it ended. It carries the encryption-context
**keys** (never values), the attestation module id, PCR0 (the image digest) and which PCRs the
document had, and for a denial the reason the policy gave (which the client never sees). It
never carries plaintexts, data keys, ciphertexts or key material.

The service writes records through an :class:`AuditSink`; the default sink is the store.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = [
    "AuditRecord",
    "AuditSink",
    "MemoryAuditSink",
    "StoreAuditSink",
    "json_array",
]

SUCCESS = "success"


@functools.lru_cache(maxsize=256)
def json_array(items: tuple[str, ...] | tuple[int, ...]) -> str:
    """The JSON array text of ``items``, as stores keep encryption-context keys and PCR lists.

    Cached: an application sends the same context keys, and an enclave the same PCR set, on
    every call. Bounded (an encryption context is at most 8 KiB), and never anything secret.
    """
    return json.dumps(list(items))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited operation.

    Attributes:
        time: when the operation was handled (the service clock).
        operation: the AWS operation name, e.g. ``GenerateDataKey``.
        outcome: ``"success"`` or the error's AWS ``__type`` (e.g. ``AccessDeniedException``).
        principal_arn: the caller's principal.
        caller_account: the caller's account.
        key_arn: the key ARN the operation resolved to, when it got that far.
        access_key_id: the caller's access key id, when known.
        source_ip: the address the request came from (CloudTrail's ``sourceIPAddress``), when
            it came over the network; ``None`` for in-process callers.
        encryption_context_keys: the encryption-context keys (sorted), never the values.
        attestation_module_id: the verified document's module id, when a Recipient was given.
        attestation_image_digest: PCR0 of the verified document as lowercase hex.
        attestation_pcrs: the PCR indices the verified document carried.
        deny_reason: why the request was refused (policy, attestation); audit only.
        dry_run: the request was a DryRun.
    """

    time: datetime
    operation: str
    outcome: str
    principal_arn: str
    caller_account: str
    key_arn: str | None = None
    access_key_id: str | None = None
    source_ip: str | None = None
    encryption_context_keys: tuple[str, ...] = ()
    attestation_module_id: str | None = None
    attestation_image_digest: str | None = None
    attestation_pcrs: tuple[int, ...] = ()
    deny_reason: str | None = None
    dry_run: bool = False


class AuditSink(Protocol):
    """Where the service writes audit records."""

    def write(self, record: AuditRecord) -> None:
        """Persist or forward one record; raising makes the operation fail."""


class _AuditStore(Protocol):
    def append_audit(self, record: AuditRecord) -> None: ...

    def query_audit(
        self, *, since: datetime | None, key_arn: str | None, limit: int
    ) -> Sequence[AuditRecord]: ...


class StoreAuditSink:
    """The default sink: records go into the service's store (queried by the CLI)."""

    def __init__(self, store: _AuditStore) -> None:
        self._store = store

    def write(self, record: AuditRecord) -> None:
        """Append ``record`` to the store."""
        self._store.append_audit(record)


class MemoryAuditSink:
    """Keeps records in memory: for tests and embedding."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[AuditRecord] = []

    def write(self, record: AuditRecord) -> None:
        """Remember ``record``."""
        with self._lock:
            self.records.append(record)
