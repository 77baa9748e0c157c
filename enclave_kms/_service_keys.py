"""Key lifecycle and tags: CreateKey, DescribeKey, ListKeys, Enable/Disable, description,
ScheduleKeyDeletion/CancelKeyDeletion, TagResource/UntagResource/ListResourceTags.

Key states (AWS "Key states of KMS keys"): a Disabled key refuses cryptographic operations with
``DisabledException``; a PendingDeletion key refuses everything except DescribeKey,
GetKeyPolicy, ListKeyPolicies, GetKeyRotationStatus, ListResourceTags, ListAliases and
CancelKeyDeletion with ``KMSInvalidStateException``; CancelKeyDeletion leaves it Disabled.
"""

from __future__ import annotations

from datetime import timedelta

from enclave_kms._keyids import parse_key_id
from enclave_kms._keymaterial import KEY_SPECS, generate_kms_key_material, zero
from enclave_kms._service_core import ServiceCore
from enclave_kms._service_tags import MAX_TAGS_PER_KEY, check_tags, reject_reserved_tags
from enclave_kms._service_validation import (  # key_id_checks, page_checks: re-exported
    AWS_USAGES_BY_SPEC,
    MODEL_CMK_SPECS,
    MODEL_KEY_SPECS,
    MODEL_KEY_USAGES,
    MODEL_ORIGINS,
    Checks,
    key_id_checks,
    page_checks,
)
from enclave_kms.errors import (
    AccessDeniedException,
    InvalidMarkerException,
    KMSInvalidStateException,
    LimitExceededException,
    MalformedPolicyDocumentException,
    UnsupportedOperationException,
    ValidationException,
)
from enclave_kms.model import (
    Caller,
    CancelKeyDeletionRequest,
    CancelKeyDeletionResponse,
    CreateKeyRequest,
    CreateKeyResponse,
    DescribeKeyRequest,
    DescribeKeyResponse,
    DisableKeyRequest,
    DisableKeyResponse,
    EnableKeyRequest,
    EnableKeyResponse,
    KeyListEntry,
    KeyState,
    ListKeysRequest,
    ListKeysResponse,
    ScheduleKeyDeletionRequest,
    ScheduleKeyDeletionResponse,
    UpdateKeyDescriptionRequest,
    UpdateKeyDescriptionResponse,
)
from enclave_kms.policy import AuthorizationRequest, KeyPolicy, default_key_policy, evaluate
from enclave_kms.store import KeyRecord, MaterialRecord

__all__ = ["KeyOperations", "key_id_checks", "page_checks"]

DEFAULT_PENDING_WINDOW_DAYS = 30


class KeyOperations(ServiceCore):
    """Key lifecycle operations (tags: :mod:`enclave_kms._service_tags`)."""

    def _require_own_account(self, caller: Caller, action: str) -> None:
        # Account-level actions (no key resource yet): IAM would decide; without IAM we allow
        # principals of this service's account only.
        if caller.account_id != self.account_id:
            raise AccessDeniedException(
                f"User: {caller.principal_arn} is not authorized to perform: kms:{action}"
            )

    # --- CreateKey ------------------------------------------------------------------------

    def create_key(self, caller: Caller, request: CreateKeyRequest) -> CreateKeyResponse:
        """CreateKey: a symmetric, RSA (ENCRYPT_DECRYPT or SIGN_VERIFY), ECC (SIGN_VERIFY or
        KEY_AGREEMENT; secp256k1 SIGN_VERIFY only) or HMAC (GENERATE_VERIFY_MAC) KMS key.

        Raises:
            ValidationException: a malformed member or an impossible KeySpec/KeyUsage pair.
            UnsupportedOperationException: a valid spec, usage or origin not implemented here.
            MalformedPolicyDocumentException: an invalid policy, or one that would lock the
                caller out (unless BypassPolicyLockoutSafetyCheck).
            TagException: a reserved ``aws:`` tag key.
        """
        with self._operation("CreateKey", caller) as op:
            r = request
            checks = Checks()
            checks.string(r.policy, "Policy", 1, 131072)
            checks.string(r.description, "Description", 0, 8192)
            checks.enum(r.key_usage, "KeyUsage", MODEL_KEY_USAGES)
            checks.enum(r.key_spec, "KeySpec", MODEL_KEY_SPECS)
            checks.enum(r.customer_master_key_spec, "CustomerMasterKeySpec", MODEL_CMK_SPECS)
            checks.enum(r.origin, "Origin", MODEL_ORIGINS)
            check_tags(checks, r.tags)
            checks.raise_if_any()
            if r.key_spec is not None and r.customer_master_key_spec is not None:
                raise ValidationException(
                    "You cannot specify KeySpec and CustomerMasterKeySpec in the same request."
                )
            self._require_own_account(caller, "CreateKey")
            if r.origin not in (None, "AWS_KMS"):
                raise UnsupportedOperationException(f"Origin {r.origin} is not supported.")
            if r.custom_key_store_id is not None or r.xks_key_id is not None:
                raise UnsupportedOperationException("Custom key stores are not supported.")
            if r.multi_region:
                raise UnsupportedOperationException("Multi-Region keys are not supported.")
            spec = r.key_spec or r.customer_master_key_spec or "SYMMETRIC_DEFAULT"
            usage = r.key_usage or "ENCRYPT_DECRYPT"
            aws_usages = AWS_USAGES_BY_SPEC.get(spec)
            if aws_usages is not None and usage not in aws_usages:
                raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
            info = KEY_SPECS.get(spec)
            if info is None or usage not in info.usages:
                raise UnsupportedOperationException(
                    f"KeySpec {spec} with KeyUsage {usage} is not supported by this service."
                )
            tags = [(t.tag_key or "", t.tag_value or "") for t in r.tags or ()]
            reject_reserved_tags([k for k, _ in tags])
            if len(tags) > MAX_TAGS_PER_KEY:
                raise LimitExceededException(f"A key can have at most {MAX_TAGS_PER_KEY} tags.")
            policy_text = r.policy or default_key_policy(self.account_id)
            key_id = self._new_key_id()
            self._check_policy(caller, policy_text, key_id, r.bypass_policy_lockout_safety_check)
            now = op.time
            key = KeyRecord(
                key_id=key_id,
                creation_date=now,
                key_state=KeyState.ENABLED,
                description=r.description or "",
                key_usage=usage,
                key_spec=spec,
                policy=policy_text,
                current_version=1,
            )
            op.key_arn = self._arn(key_id)
            secret = generate_kms_key_material(spec, self._randbytes)
            try:
                self._store.create_key(
                    key, MaterialRecord(key_id, 1, self._new_material_id(), now), secret, tags
                )
            finally:
                zero(secret)
            return CreateKeyResponse(key_metadata=self._metadata(key))

    def _check_policy(
        self, caller: Caller, text: str, key_id: str, bypass: bool | None
    ) -> KeyPolicy:
        """Parse a policy and apply AWS's lockout safety check.

        Raises:
            MalformedPolicyDocumentException: invalid, or the caller could not PutKeyPolicy.
        """
        parsed = KeyPolicy.parse(text)
        if not bypass:
            decision = evaluate(
                parsed,
                AuthorizationRequest(
                    principal_arn=caller.principal_arn,
                    account_id=caller.account_id,
                    action="kms:PutKeyPolicy",
                    resource_arn=self._arn(key_id),
                    # Where and how the caller calls from: a policy that admits it only from
                    # elsewhere, or only over TLS when it is not, would lock it out.
                    context=caller.network_condition_keys(),
                ),
            )
            if not decision.allowed:
                raise MalformedPolicyDocumentException(
                    "The new key policy will not allow you to update the key policy in the future."
                )
        return parsed

    # --- DescribeKey / ListKeys -----------------------------------------------------------------

    def describe_key(self, caller: Caller, request: DescribeKeyRequest) -> DescribeKeyResponse:
        """DescribeKey (accepts key id, key ARN, alias name or alias ARN).

        Raises:
            NotFoundException: no such key or alias.
            AccessDeniedException: the key policy does not allow ``kms:DescribeKey``.
        """
        with self._operation("DescribeKey", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.grant_tokens(request.grant_tokens)
            checks.raise_if_any()
            assert request.key_id is not None  # noqa: S101
            key = self._resolve(op, request.key_id, allow_alias=True)
            self._authorize(op, key, "DescribeKey")
            return DescribeKeyResponse(key_metadata=self._metadata(key))

    def list_keys(self, caller: Caller, request: ListKeysRequest) -> ListKeysResponse:
        """ListKeys with Limit (default 100) / Marker pagination, ordered by key id.

        Raises:
            InvalidMarkerException: a marker this service did not issue.
        """
        with self._operation("ListKeys", caller) as op:
            checks = Checks()
            page_checks(checks, request.limit, request.marker)
            checks.raise_if_any()
            self._require_own_account(caller, "ListKeys")
            if request.marker is not None:
                try:
                    parse_key_id(request.marker, region=self.region,
                                 account_id=self.account_id, allow_alias=False)  # fmt: skip
                except Exception:
                    raise InvalidMarkerException("The marker is not valid.") from None
            self._store.delete_keys_due(op.time)
            limit = request.limit or 100
            keys = list(self._store.list_keys(after=request.marker, limit=limit + 1))
            truncated = len(keys) > limit
            keys = keys[:limit]
            return ListKeysResponse(
                keys=tuple(KeyListEntry(k.key_id, self._arn(k.key_id)) for k in keys),
                next_marker=keys[-1].key_id if truncated else None,
                truncated=truncated,
            )

    # --- state changes --------------------------------------------------------------------------

    def enable_key(self, caller: Caller, request: EnableKeyRequest) -> EnableKeyResponse:
        """EnableKey (key id or key ARN).

        Raises:
            KMSInvalidStateException: the key is pending deletion.
        """
        self._set_key_state(caller, "EnableKey", request.key_id, KeyState.ENABLED)
        return EnableKeyResponse()

    def disable_key(self, caller: Caller, request: DisableKeyRequest) -> DisableKeyResponse:
        """DisableKey (key id or key ARN).

        Raises:
            KMSInvalidStateException: the key is pending deletion.
        """
        self._set_key_state(caller, "DisableKey", request.key_id, KeyState.DISABLED)
        return DisableKeyResponse()

    def _set_key_state(
        self, caller: Caller, operation: str, key_id: str | None, state: KeyState
    ) -> None:
        with self._operation(operation, caller) as op:
            checks = Checks()
            key_id_checks(checks, key_id)
            checks.raise_if_any()
            key = self._authorized_management_key(op, key_id, operation)
            self._require_not_pending(key)
            self._store.update_key(key.key_id, {"key_state": state.value})

    def update_key_description(
        self, caller: Caller, request: UpdateKeyDescriptionRequest
    ) -> UpdateKeyDescriptionResponse:
        """UpdateKeyDescription.

        Raises:
            KMSInvalidStateException: the key is pending deletion.
        """
        with self._operation("UpdateKeyDescription", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            if checks.required(request.description, "Description"):
                checks.string(request.description, "Description", 0, 8192)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "UpdateKeyDescription")
            self._require_not_pending(key)
            self._store.update_key(key.key_id, {"description": request.description})
            return UpdateKeyDescriptionResponse()

    def schedule_key_deletion(
        self, caller: Caller, request: ScheduleKeyDeletionRequest
    ) -> ScheduleKeyDeletionResponse:
        """ScheduleKeyDeletion: PendingWindowInDays 7..30 (default 30).

        The key is deleted (material, aliases, tags) the first time it is looked up, or keys
        are listed, after the deletion date (the service clock).

        Raises:
            ValidationException: the window is outside 7..30.
            KMSInvalidStateException: the key is already pending deletion.
        """
        with self._operation("ScheduleKeyDeletion", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.integer(request.pending_window_in_days, "PendingWindowInDays", 7, 30)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "ScheduleKeyDeletion")
            self._require_not_pending(key)
            window = request.pending_window_in_days or DEFAULT_PENDING_WINDOW_DAYS
            deletion = op.time + timedelta(days=window)
            self._store.update_key(
                key.key_id,
                {
                    "key_state": KeyState.PENDING_DELETION.value,
                    "deletion_date": deletion,
                    "pending_window_days": window,
                },
            )
            return ScheduleKeyDeletionResponse(
                key_id=self._arn(key.key_id),
                deletion_date=deletion,
                key_state=KeyState.PENDING_DELETION.value,
                pending_window_in_days=window,
            )

    def cancel_key_deletion(
        self, caller: Caller, request: CancelKeyDeletionRequest
    ) -> CancelKeyDeletionResponse:
        """CancelKeyDeletion: the key returns to Disabled, as in AWS.

        Raises:
            KMSInvalidStateException: the key is not pending deletion.
        """
        with self._operation("CancelKeyDeletion", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "CancelKeyDeletion")
            if key.key_state != KeyState.PENDING_DELETION:
                raise KMSInvalidStateException(f"{self._arn(key.key_id)} is not pending deletion.")
            self._store.update_key(
                key.key_id,
                {
                    "key_state": KeyState.DISABLED.value,
                    "deletion_date": None,
                    "pending_window_days": None,
                },
            )
            return CancelKeyDeletionResponse(key_id=self._arn(key.key_id))
