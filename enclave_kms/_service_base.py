"""State and the operation frame of the service: configuration, caches, ids, auditing.

Every public operation runs inside :meth:`ServiceBase._operation`, which writes exactly one
audit record whatever happens and converts storage and unexpected failures into KMS errors.
Auditing fails closed: the record is written (committed to the store) before the operation
returns, and an operation that cannot be audited fails. An asyncio adapter may instead hold
the record back and write it itself before it answers (:meth:`ServiceBase.call_holding_audit`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from attestation import Verifier
from enclave_kms._keyids import key_arn
from enclave_kms._keymaterial import zero
from enclave_kms._service_cache import DEFAULT_CACHE_POLL_INTERVAL, RecordCache
from enclave_kms._service_context import (
    DRY_RUN_MESSAGE,
    MUTATING_OPERATIONS,
    Clock,
    HeldAudit,
    HeldCall,
    OpContext,
    StaleDecision,
    holding_audit,
    run_holding,
    utc_now,
)
from enclave_kms.audit import AuditRecord, AuditSink, StoreAuditSink
from enclave_kms.errors import (
    DependencyTimeoutException,
    DryRunOperationException,
    KmsError,
    KMSInternalException,
)
from enclave_kms.model import Caller
from enclave_kms.policy import KeyPolicy, KeyPolicyAccessDenied
from enclave_kms.store import KeyRecord, Store, StoreBusyError, StoreError

__all__ = ["ServiceBase"]

_log = logging.getLogger("enclave_kms.service")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


class _GuardedAudit(Protocol):
    def __call__(self, record: AuditRecord, keys: Sequence[KeyRecord]) -> bool: ...


class ServiceBase:
    """Configuration, caches and the audited operation frame shared by every mixin."""

    def __init__(
        self,
        store: Store,
        *,
        region: str,
        account_id: str,
        verifier: Verifier,
        clock: Clock = utc_now,
        randbytes: Callable[[int], bytes] = os.urandom,
        recipient_max_age: timedelta | None = None,
        recipient_reject_debug: bool = False,
        audit: AuditSink | None = None,
        material_cache_size: int = 1024,
        cache_poll_interval: float = DEFAULT_CACHE_POLL_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not account_id.isdigit() or len(account_id) != 12:
            raise ValueError("account_id must be 12 digits")
        self._store = store
        self.region = region
        self.account_id = account_id
        self._verifier = verifier
        self._clock = clock
        self._randbytes = randbytes
        self._recipient_max_age = recipient_max_age
        self._recipient_reject_debug = recipient_reject_debug
        self._audit: AuditSink = audit if audit is not None else StoreAuditSink(store)
        self._audit_to_store = audit is None
        # A store that can check key records in the audit statement itself (both ours) lets
        # cryptographic operations decide on cached records (see _service_context). Only
        # with the store as the audit sink: the check and the record must be one statement.
        self._guarded_audit: _GuardedAudit | None = (
            getattr(store, "append_audit_guarded", None) if audit is None else None
        )
        self._cache_lock = threading.Lock()
        # Backing material is immutable per (key, version), so a cache is never stale; bounded.
        self._materials: OrderedDict[tuple[str, int], bytearray] = OrderedDict()
        self._material_cache_size = material_cache_size
        # Parsed policies keyed by their text: a PutKeyPolicy (in any process) changes the
        # text, so a changed policy is never served from the cache.
        self._policies: OrderedDict[str, KeyPolicy] = OrderedDict()
        self._records = RecordCache(store, poll_interval=cache_poll_interval, monotonic=monotonic)

    # --- time, ids ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return an aware datetime")
        return now

    def _arn(self, key_id: str) -> str:
        return key_arn(self.region, self.account_id, key_id)

    def _new_key_id(self) -> str:
        return str(uuid.UUID(bytes=self._randbytes(16), version=4))

    def _new_material_id(self) -> str:
        return self._randbytes(32).hex()

    # --- the audited operation frame --------------------------------------------------------

    @contextmanager
    def _operation(self, name: str, caller: Caller) -> Iterator[OpContext]:
        op = OpContext(operation=name, caller=caller, time=self._now())
        outcome = "success"
        try:
            yield op
        except KmsError as exc:
            outcome = exc.aws_type
            if isinstance(exc, KeyPolicyAccessDenied):
                op.deny_reason = exc.decision.reason
            raise
        except StoreBusyError:
            outcome = DependencyTimeoutException.aws_type
            raise DependencyTimeoutException("The key store did not answer in time.") from None
        except StoreError as exc:
            outcome = KMSInternalException.aws_type
            _log.error("store failure in %s: %s", name, exc)
            raise KMSInternalException("An internal error occurred.") from None
        except Exception:
            outcome = KMSInternalException.aws_type
            _log.exception("internal error in %s", name)
            raise KMSInternalException("An internal error occurred.") from None
        finally:
            if name in MUTATING_OPERATIONS:
                self._records.invalidate()
            self._write_audit(op, outcome)

    def _write_audit(self, op: OpContext, outcome: str) -> None:
        rec = op.recipient
        record = AuditRecord(
            time=op.time,
            operation=op.operation,
            outcome=outcome,
            principal_arn=op.caller.principal_arn,
            caller_account=op.caller.account_id,
            key_arn=op.key_arn,
            access_key_id=op.caller.access_key_id,
            source_ip=op.caller.source_ip,
            encryption_context_keys=op.encryption_context_keys,
            attestation_module_id=rec.module_id if rec else None,
            attestation_image_digest=rec.image_digest if rec else None,
            attestation_pcrs=rec.pcr_indices if rec else (),
            deny_reason=op.deny_reason,
            dry_run=op.dry_run,
        )
        held = holding_audit() if self._audit_to_store else None
        if held is not None:  # the adapter writes it (call_holding_audit)
            held.append(HeldAudit(record, tuple(op.guards)))
            return
        try:
            if op.guards and self._guarded_audit is not None:
                written = self._guarded_audit(record, op.guards)
            else:
                self._audit.write(record)
                written = True
        except Exception:
            # Fail closed: an operation that cannot be audited does not succeed.
            _log.exception("audit write failed for %s", op.operation)
            raise KMSInternalException("An internal error occurred.") from None
        if not written:
            # A cached key record this decision rested on changed: nothing was recorded;
            # exact_key_state runs the operation again on the committed state.
            self._records.invalidate()
            raise StaleDecision

    # --- held audit records, for asyncio adapters ----------------------------------------------

    def held_audit_writer(self) -> Any | None:
        """The store's asynchronous audit writer, or None when records are written in the call.

        Present only when the audit sink is the store and the store has one (both built-in
        stores: ``audit_batcher()``, see :mod:`enclave_kms.store._audit_batch`). It has
        ``async write(audits) -> list[bool]`` (each ``(record, guards)``; whether it was
        written), ``async aclose()`` and ``counts()`` (batches, records), and belongs to one
        event loop.
        """
        make = getattr(self._store, "audit_batcher", None)
        return make() if self._audit_to_store and callable(make) else None

    def call_holding_audit(
        self,
        method: Callable[[Caller, _Request], _Response],
        caller: Caller,
        request: _Request,
    ) -> HeldCall[_Response]:
        """Run ``method(caller, request)`` (an operation of this service), holding its audit back.

        For an asyncio adapter with a :meth:`held_audit_writer`, which writes the records
        without blocking its event loop, then answers only once they are written::

            call = service.call_holding_audit(service.decrypt, caller, request)
            while (again := call.settle(await writer.write(call.audits))) is not None:
                call = again
            return call.result()

        A write that raises must fail the request (the record may be missing). With any
        other audit sink, the record is written during the call as usual and nothing is held.
        """
        return run_holding(lambda: method(caller, request), on_stale=self._records.invalidate)

    @staticmethod
    def _finish_dry_run(op: OpContext, dry_run: bool | None) -> None:
        if dry_run:
            op.dry_run = True
            raise DryRunOperationException(DRY_RUN_MESSAGE)

    def close(self) -> None:
        """Overwrite cached key material (best effort) and close the store."""
        with self._cache_lock:
            for secret in self._materials.values():
                zero(secret)
            self._materials.clear()
        self._store.close()
