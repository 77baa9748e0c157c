"""Key resolution, state checks, policy and backing material: what every operation uses.

The operation frame, auditing and the caches live in :mod:`enclave_kms._service_base`; the
per-call context and the cached-record rules in :mod:`enclave_kms._service_context`.

Lazy time-driven changes (documented in the README of the service): a key whose deletion date
has passed is deleted the next time anything looks it up or lists keys; a key whose automatic
rotation is due is rotated the next time it is resolved while Enabled (one new version even if
several periods passed; the next date is then counted from now). Both are re-checked inside a
store transaction, so several processes do it once.

Caches and staleness (several processes or replicas share the store): backing material per
(key, version) never changes and parsed policies are keyed by their text, so neither can be
stale. Key records and aliases are cached in a :class:`~enclave_kms._service_cache.RecordCache`
that polls the store's change counter, and only where bounded staleness is acceptable (see
:data:`CACHED_KEY_OPERATIONS` and the ``KmsService`` docstring), or where the audit statement
checks the record again (:func:`~enclave_kms._service_context.exact_key_state`); everything
else reads the key straight from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from enclave_kms import _ciphertext
from enclave_kms._keyids import parse_key_id
from enclave_kms._keymaterial import KEY_SPECS, generate_kms_key_material, zero
from enclave_kms._service_base import ServiceBase
from enclave_kms._service_cache import DEFAULT_CACHE_POLL_INTERVAL
from enclave_kms._service_context import (
    CACHED_KEY_OPERATIONS,
    MUTATING_OPERATIONS,
    Clock,
    OpContext,
    guards_allowed,
    utc_now,
)
from enclave_kms._service_recipient import run_attested
from enclave_kms.errors import (
    DisabledException,
    KmsError,
    KMSInvalidStateException,
    NotFoundException,
)
from enclave_kms.model import KeyMetadata, KeyState, RecipientInfo
from enclave_kms.policy import AuthorizationRequest, KeyPolicy, authorize
from enclave_kms.store import KeyRecord

_T = TypeVar("_T")

__all__ = [
    "CACHED_KEY_OPERATIONS",
    "DEFAULT_CACHE_POLL_INTERVAL",
    "MUTATING_OPERATIONS",
    "Clock",
    "OpContext",
    "ServiceCore",
]

_POLICY_CACHE_SIZE = 256
_utc_now = utc_now  # the name service.py imports


class ServiceCore(ServiceBase):
    """Key, policy, attestation and material helpers shared by the operation mixins."""

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
            op.request_aliases[key_id] = ref.value
        else:
            key_id = ref.value
        return self._load_key(op, key_id)

    def _management_key(self, op: OpContext, key_id: str | None) -> KeyRecord:
        assert key_id is not None  # noqa: S101 - validated by key_id_checks
        return self._resolve(op, key_id, allow_alias=False)

    def _authorized_management_key(
        self, op: OpContext, key_id: str | None, action: str
    ) -> KeyRecord:
        """The key a management operation names (no alias), once its policy allows ``action``.

        Loading and authorizing in one call, so no operation can act on a key it forgot to
        authorize against.
        """
        key = self._management_key(op, key_id)
        self._authorize(op, key, action)
        return key

    def _load_key(self, op: OpContext, key_id: str) -> KeyRecord:
        arn = self._arn(key_id)
        cached: KeyRecord | None = None
        if op.operation in CACHED_KEY_OPERATIONS:
            key = self._records.key(key_id)
        elif self._guarded_audit is not None and guards_allowed():
            # Decide on the cached record if it is Enabled; the audit statement checks it is
            # still the committed one (or the operation runs again reading through).
            cached = key = self._records.key(key_id)
            if key is None or key.key_state != KeyState.ENABLED:
                cached = None
                key = self._store.get_key(key_id)
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
        if cached is not None and key is cached:
            op.guards.append(cached)
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
        usage = key.key_usage

        def algorithms(wanted: str, values: tuple[str, ...] | None) -> tuple[str, ...] | None:
            # Each list is present only for the usage it belongs to, as DescribeKey shows it.
            return values if usage == wanted and values else None

        return KeyMetadata(
            key_id=key.key_id,
            aws_account_id=self.account_id,
            arn=self._arn(key.key_id),
            creation_date=key.creation_date,
            enabled=key.key_state == KeyState.ENABLED,
            description=key.description,
            key_usage=usage,
            key_state=key.key_state,
            deletion_date=key.deletion_date if pending else None,
            origin="AWS_KMS",
            key_manager="CUSTOMER",
            customer_master_key_spec=key.key_spec,
            key_spec=key.key_spec,
            encryption_algorithms=algorithms(
                "ENCRYPT_DECRYPT", info.encryption_algorithms if info else None
            ),
            signing_algorithms=algorithms("SIGN_VERIFY", info.signing_algorithms if info else None),
            key_agreement_algorithms=("ECDH",) if usage == "KEY_AGREEMENT" else None,
            multi_region=False,
            pending_deletion_window_in_days=key.pending_window_days if pending else None,
            mac_algorithms=algorithms("GENERATE_VERIFY_MAC", info.mac_algorithms if info else None),
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
        conditions: Mapping[str, str] | None = None,
    ) -> None:
        """Evaluate the key policy for ``kms:<action>``; raises AccessDeniedException.

        Args:
            op: the running operation (caller, verified Recipient).
            key: the key whose policy decides.
            action: the operation name, without the ``kms:`` prefix.
            encryption_context: supplies ``kms:EncryptionContext:<key>`` and
                ``kms:EncryptionContextKeys``.
            conditions: further single-valued condition keys taken from the request
                (``kms:EncryptionAlgorithm``, ``kms:DataKeyPairSpec``,
                ``kms:KeyAgreementAlgorithm``, ``kms:SigningAlgorithm``, ``kms:MessageType``,
                ``kms:MacAlgorithm``, ``kms:ReEncryptOnSameKey``).

        The key itself supplies ``kms:KeySpec``, ``kms:KeyUsage`` and ``kms:KeyOrigin``, and
        ``kms:RequestAlias`` is the alias the request named the key by, if it used one.
        """
        # The audit record names the key whose policy decided last (ReEncrypt has two).
        op.key_arn = self._arn(key.key_id)
        policy = self._parsed_policy(key.policy)
        context: dict[str, str | tuple[str, ...] | bool] = {}
        # Condition keys are read only by Condition blocks: a policy without any (the default
        # key policy among them) decides the same on an empty context.
        if policy.has_conditions:
            context["kms:CallerAccount"] = op.caller.account_id
            context["aws:PrincipalArn"] = op.caller.principal_arn
            # The request's time, for Date* operators (IAM global keys; whole seconds, UTC).
            context["aws:CurrentTime"] = op.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            context["aws:EpochTime"] = str(int(op.time.timestamp()))
            context.update(op.caller.network_condition_keys())
            context["kms:KeySpec"] = key.key_spec
            context["kms:KeyUsage"] = key.key_usage
            context["kms:KeyOrigin"] = "AWS_KMS"  # no imported or external key material here
            alias = op.request_aliases.get(key.key_id)
            if alias is not None:
                context["kms:RequestAlias"] = alias
            if encryption_context is not None:
                for k, v in encryption_context.items():
                    context[f"kms:EncryptionContext:{k}"] = v
                context["kms:EncryptionContextKeys"] = tuple(sorted(encryption_context))
            if op.recipient is not None:
                context.update(op.recipient.condition_keys)
            if conditions is not None:
                context.update(conditions)
        authorize(
            policy,
            AuthorizationRequest(
                principal_arn=op.caller.principal_arn,
                account_id=op.caller.account_id,
                action=f"kms:{action}",
                resource_arn=self._arn(key.key_id),
                context=context,
            ),
        )

    def _authorize_use(
        self,
        op: OpContext,
        key: KeyRecord,
        action: str,
        *,
        encryption_context: Mapping[str, str] | None = None,
        conditions: Mapping[str, str] | None = None,
    ) -> None:
        """:meth:`_authorize` a use of ``key``, then require it Enabled (in that order).

        The policy is decided first so that a principal it refuses gets AccessDeniedException
        whatever the key's state: it must not learn that a key was disabled or scheduled for
        deletion. Only an admitted caller is told DisabledException / KMSInvalidStateException.
        """
        self._authorize(
            op, key, action, encryption_context=encryption_context, conditions=conditions
        )
        self._require_enabled(key)

    # --- recipient ----------------------------------------------------------------------------

    def _verify_recipient(self, op: OpContext, recipient: RecipientInfo | None) -> None:
        """Verify ``recipient`` (if given) and set ``op.recipient``; nothing runs beside it.

        For operations whose secret is made only once the document is accepted (a key pair,
        a shared secret, random bytes), so that none is ever made for a refused document.
        """
        self._after_attestation(op, recipient, _nothing_to_prepare)

    def _after_attestation(
        self,
        op: OpContext,
        recipient: RecipientInfo | None,
        prepare: Callable[[OpContext], Callable[[OpContext], _T]],
    ) -> _T:
        """``decide = prepare(op)``, verify ``recipient`` (if given), then ``decide(op)``.

        See :func:`~enclave_kms._service_recipient.run_attested`: both may run on the
        verifier's helper thread, and ``op`` takes over what ``decide`` recorded only once
        the document is accepted.
        """
        return run_attested(
            op,
            recipient,
            prepare,
            verifier=self._verifier,
            max_age=self._recipient_max_age,
            reject_debug=self._recipient_reject_debug,
        )

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


def _nothing_to_prepare(_: OpContext) -> Callable[[OpContext], None]:
    return _no_decision


def _no_decision(_: OpContext) -> None:
    return None
