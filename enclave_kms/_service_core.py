"""Shared machinery of the service: configuration, auditing, key resolution, policy, material.

Every public operation runs inside :meth:`ServiceCore._operation`, which writes exactly one
audit record whatever happens and converts storage and unexpected failures into KMS errors.

Lazy time-driven changes (documented in the README of the service): a key whose deletion date
has passed is deleted the next time anything looks it up or lists keys; a key whose automatic
rotation is due is rotated the next time it is resolved while Enabled (one new version even if
several periods passed; the next date is then counted from now). Both are re-checked inside a
store transaction, so several processes do it once.

Caches and staleness (several processes or replicas share the store): backing material per
(key, version) never changes and parsed policies are keyed by their text, so neither can be
stale. Key records and aliases are cached in a :class:`~enclave_kms._service_cache.RecordCache`
that polls the store's change counter, and only where bounded staleness is acceptable (see
:data:`CACHED_KEY_OPERATIONS` and the ``KmsService`` docstring); everything else reads the key
straight from the store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from attestation import Verifier
from enclave_kms import _ciphertext
from enclave_kms._keyids import key_arn, parse_key_id
from enclave_kms._keymaterial import KEY_SPECS, generate_kms_key_material, zero
from enclave_kms._service_cache import DEFAULT_CACHE_POLL_INTERVAL, RecordCache
from enclave_kms._service_recipient import (
    RecipientError,
    VerifiedRecipient,
    verify_recipient,
)
from enclave_kms.audit import AuditRecord, AuditSink, StoreAuditSink
from enclave_kms.errors import (
    DependencyTimeoutException,
    DisabledException,
    DryRunOperationException,
    KmsError,
    KMSInternalException,
    KMSInvalidStateException,
    NotFoundException,
)
from enclave_kms.model import Caller, KeyMetadata, KeyState, RecipientInfo
from enclave_kms.policy import AuthorizationRequest, KeyPolicy, KeyPolicyAccessDenied, authorize
from enclave_kms.store import KeyRecord, Store, StoreBusyError, StoreError

__all__ = [
    "CACHED_KEY_OPERATIONS",
    "DEFAULT_CACHE_POLL_INTERVAL",
    "MUTATING_OPERATIONS",
    "Clock",
    "OpContext",
    "ServiceCore",
]

_log = logging.getLogger("enclave_kms.service")

Clock = Callable[[], datetime]
DRY_RUN_MESSAGE = "The request would have succeeded, but the DryRun option is set."
_POLICY_CACHE_SIZE = 256
# Read-only operations that may answer from a key record up to one cache poll interval (plus
# a round trip) old, as AWS KMS itself is eventually consistent for them. Cryptographic
# operations and every change read the key from the store on each call.
CACHED_KEY_OPERATIONS = frozenset(
    {
        "DescribeKey",
        "GetKeyPolicy",
        "ListKeyPolicies",
        "GetKeyRotationStatus",
        "ListKeyRotations",
        "ListResourceTags",
    }
)
# Operations that may change a key, its policy, tags or aliases: this process's caches are
# dropped when one finishes (whatever its outcome), so it always reads its own writes.
MUTATING_OPERATIONS = frozenset(
    {
        "CreateKey",
        "EnableKey",
        "DisableKey",
        "UpdateKeyDescription",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "TagResource",
        "UntagResource",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "PutKeyPolicy",
        "EnableKeyRotation",
        "DisableKeyRotation",
        "RotateKeyOnDemand",
    }
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class OpContext:
    """What the audit record of the running operation will say (filled in as it proceeds)."""

    operation: str
    caller: Caller
    time: datetime
    key_arn: str | None = None
    encryption_context_keys: tuple[str, ...] = ()
    recipient: VerifiedRecipient | None = None
    deny_reason: str | None = None
    dry_run: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def note_context(self, *contexts: Mapping[str, str] | None) -> None:
        """Remember the encryption-context keys (never the values) for the audit."""
        keys: set[str] = set(self.encryption_context_keys)
        for ctx in contexts:
            if ctx:
                keys.update(ctx)
        self.encryption_context_keys = tuple(sorted(keys))


class ServiceCore:
    """Configuration and helpers shared by the operation mixins of ``KmsService``."""

    def __init__(
        self,
        store: Store,
        *,
        region: str,
        account_id: str,
        verifier: Verifier,
        clock: Clock = _utc_now,
        randbytes: Callable[[int], bytes] = os.urandom,
        recipient_max_age: timedelta | None = None,
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
        self._audit: AuditSink = audit if audit is not None else StoreAuditSink(store)
        self._cache_lock = threading.Lock()
        # Backing material is immutable per (key, version), so a cache is never stale; bounded.
        self._materials: OrderedDict[tuple[str, int], bytearray] = OrderedDict()
        self._material_cache_size = material_cache_size
        # Parsed policies keyed by their text: a PutKeyPolicy (in any process) changes the
        # text, so a changed policy is never served from the cache.
        self._policies: OrderedDict[str, KeyPolicy] = OrderedDict()
        self._records = RecordCache(store, poll_interval=cache_poll_interval, monotonic=monotonic)

    # --- time, ids, audit ------------------------------------------------------------------

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
            encryption_context_keys=op.encryption_context_keys,
            attestation_module_id=rec.module_id if rec else None,
            attestation_image_digest=rec.image_digest if rec else None,
            attestation_pcrs=rec.pcr_indices if rec else (),
            deny_reason=op.deny_reason,
            dry_run=op.dry_run,
        )
        try:
            self._audit.write(record)
        except Exception:
            # Fail closed: an operation that cannot be audited does not succeed.
            _log.exception("audit write failed for %s", op.operation)
            raise KMSInternalException("An internal error occurred.") from None

    @staticmethod
    def _finish_dry_run(op: OpContext, dry_run: bool | None) -> None:
        if dry_run:
            op.dry_run = True
            raise DryRunOperationException(DRY_RUN_MESSAGE)

    # --- keys ---------------------------------------------------------------------------------

    def _resolve(self, op: OpContext, text: str, *, allow_alias: bool) -> KeyRecord:
        """Find the key ``text`` names, applying lazy deletion and rotation.

        Raises:
            NotFoundException: no such key or alias, or a form the operation does not accept.
            InvalidArnException: a malformed ARN.
        """
        ref = parse_key_id(text, region=self.region, account_id=self.account_id,
                           allow_alias=allow_alias)  # fmt: skip
        if ref.kind == "alias":
            # Alias targets come from the cache (bounded-stale, like AWS's own alias
            # propagation); the key they name is then read as the operation requires.
            alias = self._records.alias(ref.value)
            if alias is None:
                raise NotFoundException(
                    f"Alias arn:aws:kms:{self.region}:{self.account_id}:{ref.value} is not found."
                )
            key_id = alias.target_key_id
        else:
            key_id = ref.value
        return self._load_key(op, key_id)

    def _load_key(self, op: OpContext, key_id: str) -> KeyRecord:
        arn = self._arn(key_id)
        if op.operation in CACHED_KEY_OPERATIONS:
            key = self._records.key(key_id)
        else:
            # Read through: the state every crypto operation and change decides on is the
            # committed state at this read, whatever another replica did a moment ago.
            key = self._store.get_key(key_id)
        now = op.time
        if (
            key is not None
            and key.key_state == KeyState.PENDING_DELETION
            and key.deletion_date is not None
            and key.deletion_date <= now
        ):
            self._store.delete_keys_due(now)
            self._forget_key_material(key_id)
            self._records.invalidate()
            key = None
        if key is None:
            raise NotFoundException(f"Key '{arn}' does not exist")
        op.key_arn = arn
        if (
            key.rotation_enabled
            and key.key_state == KeyState.ENABLED
            and key.next_rotation_date is not None
            and key.next_rotation_date <= now
        ):
            key = self._rotate(key, "AUTOMATIC", now, only_if_due=True)
        return key

    def _rotate(self, key: KeyRecord, rotation_type: str, now: datetime, *,
                only_if_due: bool) -> KeyRecord:  # fmt: skip
        secret = generate_kms_key_material(key.key_spec, self._randbytes)
        changes: dict[str, object] = {}
        if key.rotation_enabled and key.rotation_period_days is not None:
            changes["next_rotation_date"] = now + timedelta(days=key.rotation_period_days)
        if rotation_type == "ON_DEMAND":
            changes["on_demand_rotation_date"] = now
        try:
            self._store.rotate_key(
                key.key_id,
                material_id=self._new_material_id(),
                secret=secret,
                created=now,
                rotation_type=rotation_type,
                changes=changes,
                only_if_due_at=now if only_if_due else None,
            )
        finally:
            zero(secret)
            self._records.invalidate()
        fresh = self._store.get_key(key.key_id)
        if fresh is None:
            raise NotFoundException(f"Key '{self._arn(key.key_id)}' does not exist")
        return fresh

    def _require_enabled(self, key: KeyRecord) -> None:
        """State check for cryptographic operations."""
        if key.key_state == KeyState.DISABLED:
            raise DisabledException(f"{self._arn(key.key_id)} is disabled.")
        self._require_not_pending(key)

    def _require_not_pending(self, key: KeyRecord) -> None:
        """State check for management operations that a pending deletion blocks."""
        if key.key_state == KeyState.PENDING_DELETION:
            raise KMSInvalidStateException(f"{self._arn(key.key_id)} is pending deletion.")

    def _metadata(self, key: KeyRecord) -> KeyMetadata:
        info = KEY_SPECS.get(key.key_spec)
        pending = key.key_state == KeyState.PENDING_DELETION
        enc_algs = key.key_usage == "ENCRYPT_DECRYPT" and info is not None
        return KeyMetadata(
            key_id=key.key_id,
            aws_account_id=self.account_id,
            arn=self._arn(key.key_id),
            creation_date=key.creation_date,
            enabled=key.key_state == KeyState.ENABLED,
            description=key.description,
            key_usage=key.key_usage,
            key_state=key.key_state,
            deletion_date=key.deletion_date if pending else None,
            origin="AWS_KMS",
            key_manager="CUSTOMER",
            customer_master_key_spec=key.key_spec,
            key_spec=key.key_spec,
            encryption_algorithms=info.encryption_algorithms if enc_algs and info else None,
            key_agreement_algorithms=("ECDH",) if key.key_usage == "KEY_AGREEMENT" else None,
            multi_region=False,
            pending_deletion_window_in_days=key.pending_window_days if pending else None,
        )

    # --- policy -------------------------------------------------------------------------------

    def _parsed_policy(self, text: str) -> KeyPolicy:
        with self._cache_lock:
            found = self._policies.get(text)
            if found is not None:
                self._policies.move_to_end(text)
                return found
        parsed = KeyPolicy.parse(text)
        with self._cache_lock:
            self._policies[text] = parsed
            while len(self._policies) > _POLICY_CACHE_SIZE:
                self._policies.popitem(last=False)
        return parsed

    def _authorize(
        self,
        op: OpContext,
        key: KeyRecord,
        action: str,
        *,
        encryption_context: Mapping[str, str] | None = None,
    ) -> None:
        """Evaluate the key policy for ``kms:<action>``; raises AccessDeniedException."""
        context: dict[str, str | tuple[str, ...] | bool] = {
            "kms:CallerAccount": op.caller.account_id,
            "aws:PrincipalArn": op.caller.principal_arn,
        }
        if encryption_context is not None:
            for k, v in encryption_context.items():
                context[f"kms:EncryptionContext:{k}"] = v
            context["kms:EncryptionContextKeys"] = tuple(sorted(encryption_context))
        if op.recipient is not None:
            context.update(op.recipient.condition_keys)
        authorize(
            self._parsed_policy(key.policy),
            AuthorizationRequest(
                principal_arn=op.caller.principal_arn,
                account_id=op.caller.account_id,
                action=f"kms:{action}",
                resource_arn=self._arn(key.key_id),
                context=context,
            ),
        )

    # --- recipient ----------------------------------------------------------------------------

    def _verify_recipient(self, op: OpContext, recipient: RecipientInfo | None) -> None:
        if recipient is None:
            return
        try:
            op.recipient = verify_recipient(
                recipient,
                verifier=self._verifier,
                at=op.time,
                max_age=self._recipient_max_age,
            )
        except RecipientError as exc:
            op.deny_reason = exc.reason
            raise exc.error from None

    # --- material and blobs ---------------------------------------------------------------------

    def _material(self, key_id: str, version: int) -> bytes:
        """Backing material for a cryptographic operation on an Enabled key.

        The caller has just read the key's state from the store. On a cache miss the
        material is read together with the key's state in one snapshot and the state is
        checked again, so a key disabled, scheduled for deletion or deleted by another
        process between the two reads is refused, never used (and never reported as an
        internal error).

        Raises:
            NotFoundException: the key no longer exists.
            DisabledException / KMSInvalidStateException: the key is no longer Enabled.
            RecordNotFoundError: the key has no such version.
        """
        cache_key = (key_id, version)
        with self._cache_lock:
            found = self._materials.get(cache_key)
            if found is not None:
                self._materials.move_to_end(cache_key)
                return bytes(found)
        both = self._store.get_key_with_material(key_id, version)
        if both is None:
            raise NotFoundException(f"Key '{self._arn(key_id)}' does not exist")
        current, secret = both
        try:
            self._require_enabled(current)
        except KmsError:
            zero(secret)
            raise
        with self._cache_lock:
            self._materials[cache_key] = secret
            while len(self._materials) > self._material_cache_size:
                _, evicted = self._materials.popitem(last=False)
                zero(evicted)
        return bytes(secret)

    def _forget_key_material(self, key_id: str) -> None:
        with self._cache_lock:
            for cache_key in [k for k in self._materials if k[0] == key_id]:
                zero(self._materials.pop(cache_key))

    def _seal(self, key: KeyRecord, plaintext: bytes | bytearray,
              context: Mapping[str, str] | None) -> bytes:  # fmt: skip
        return _ciphertext.seal(
            key_id=key.key_id,
            key_version=key.current_version,
            backing_key=self._material(key.key_id, key.current_version),
            plaintext=bytes(plaintext),
            encryption_context=context or {},
            randbytes=self._randbytes,
        )

    def close(self) -> None:
        """Overwrite cached key material (best effort) and close the store."""
        with self._cache_lock:
            for secret in self._materials.values():
                zero(secret)
            self._materials.clear()
        self._store.close()
