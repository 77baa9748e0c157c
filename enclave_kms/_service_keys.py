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
from enclave_kms._service_core import OpContext, ServiceCore
from enclave_kms._service_validation import (
    AWS_USAGES_BY_SPEC,
    MODEL_CMK_SPECS,
    MODEL_KEY_SPECS,
    MODEL_KEY_USAGES,
    MODEL_ORIGINS,
    Checks,
)
from enclave_kms.errors import (
    AccessDeniedException,
    InvalidMarkerException,
    KMSInvalidStateException,
    LimitExceededException,
    MalformedPolicyDocumentException,
    TagException,
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
    ListResourceTagsRequest,
    ListResourceTagsResponse,
    ScheduleKeyDeletionRequest,
    ScheduleKeyDeletionResponse,
    Tag,
    TagResourceRequest,
    TagResourceResponse,
    UntagResourceRequest,
    UntagResourceResponse,
    UpdateKeyDescriptionRequest,
    UpdateKeyDescriptionResponse,
)
from enclave_kms.policy import AuthorizationRequest, KeyPolicy, default_key_policy, evaluate
from enclave_kms.store import KeyRecord, MaterialRecord

__all__ = ["KeyOperations"]

MAX_TAGS_PER_KEY = 50
DEFAULT_PENDING_WINDOW_DAYS = 30


def key_id_checks(checks: Checks, key_id: str | None, member: str = "KeyId") -> None:
    """``KeyId`` is required and 1..2048 characters."""
    if checks.required(key_id, member):
        checks.string(key_id, member, 1, 2048)


def page_checks(checks: Checks, limit: int | None, marker: str | None) -> None:
    """``Limit`` 1..1000 and ``Marker`` 1..1024."""
    checks.integer(limit, "Limit", 1, 1000)
    checks.string(marker, "Marker", 1, 1024)


def check_tags(checks: Checks, tags: tuple[Tag, ...] | None, member: str = "Tags") -> None:
    """Each tag has a 1..128-char key and a 0..256-char value."""
    for i, tag in enumerate(tags or ()):
        if checks.required(tag.tag_key, f"{member}.{i + 1}.member.TagKey"):
            checks.string(tag.tag_key, f"{member}.{i + 1}.member.TagKey", 1, 128)
        if checks.required(tag.tag_value, f"{member}.{i + 1}.member.TagValue"):
            checks.string(tag.tag_value, f"{member}.{i + 1}.member.TagValue", 0, 256)


def reject_reserved_tags(keys: list[str]) -> None:
    """AWS reserves the ``aws:`` tag-key prefix for its own tags."""
    for k in keys:
        if k.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved.")


class KeyOperations(ServiceCore):
    """Key lifecycle and tag operations."""

    def _require_own_account(self, caller: Caller, action: str) -> None:
        # Account-level actions (no key resource yet): IAM would decide; without IAM we allow
        # principals of this service's account only.
        if caller.account_id != self.account_id:
            raise AccessDeniedException(
                f"User: {caller.principal_arn} is not authorized to perform: kms:{action}"
            )

    def _management_key(self, op: OpContext, key_id: str | None) -> KeyRecord:
        assert key_id is not None  # noqa: S101 - validated by key_id_checks
        return self._resolve(op, key_id, allow_alias=False)

    # --- CreateKey ------------------------------------------------------------------------

    def create_key(self, caller: Caller, request: CreateKeyRequest) -> CreateKeyResponse:
        """CreateKey: a symmetric, RSA (ENCRYPT_DECRYPT) or ECC (KEY_AGREEMENT) KMS key.

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
        with self._operation("EnableKey", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.raise_if_any()
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "EnableKey")
            self._require_not_pending(key)
            self._store.update_key(key.key_id, {"key_state": KeyState.ENABLED.value})
            return EnableKeyResponse()

    def disable_key(self, caller: Caller, request: DisableKeyRequest) -> DisableKeyResponse:
        """DisableKey (key id or key ARN).

        Raises:
            KMSInvalidStateException: the key is pending deletion.
        """
        with self._operation("DisableKey", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.raise_if_any()
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "DisableKey")
            self._require_not_pending(key)
            self._store.update_key(key.key_id, {"key_state": KeyState.DISABLED.value})
            return DisableKeyResponse()

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
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "UpdateKeyDescription")
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
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "ScheduleKeyDeletion")
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
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "CancelKeyDeletion")
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

    # --- tags -------------------------------------------------------------------------------------

    def tag_resource(self, caller: Caller, request: TagResourceRequest) -> TagResourceResponse:
        """TagResource: add or overwrite tags.

        Raises:
            TagException: a reserved ``aws:`` key.
            LimitExceededException: more than 50 tags on the key.
            KMSInvalidStateException: the key is pending deletion.
        """
        with self._operation("TagResource", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.required(request.tags, "Tags")
            check_tags(checks, request.tags)
            checks.raise_if_any()
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "TagResource")
            self._require_not_pending(key)
            tags = [(t.tag_key or "", t.tag_value or "") for t in request.tags or ()]
            reject_reserved_tags([k for k, _ in tags])
            existing = {k for k, _ in self._store.list_tags(key.key_id)}
            if len(existing | {k for k, _ in tags}) > MAX_TAGS_PER_KEY:
                raise LimitExceededException(f"A key can have at most {MAX_TAGS_PER_KEY} tags.")
            self._store.put_tags(key.key_id, tags)
            return TagResourceResponse()

    def untag_resource(
        self, caller: Caller, request: UntagResourceRequest
    ) -> UntagResourceResponse:
        """UntagResource: remove tags by key (missing keys are ignored).

        Raises:
            KMSInvalidStateException: the key is pending deletion.
        """
        with self._operation("UntagResource", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            checks.required(request.tag_keys, "TagKeys")
            for i, k in enumerate(request.tag_keys or ()):
                checks.string(k, f"TagKeys.{i + 1}.member", 1, 128)
            checks.raise_if_any()
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "UntagResource")
            self._require_not_pending(key)
            self._store.remove_tags(key.key_id, list(request.tag_keys or ()))
            return UntagResourceResponse()

    def list_resource_tags(
        self, caller: Caller, request: ListResourceTagsRequest
    ) -> ListResourceTagsResponse:
        """ListResourceTags with Limit (default 50) / Marker pagination.

        Raises:
            InvalidMarkerException: a marker this service did not issue.
        """
        with self._operation("ListResourceTags", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            page_checks(checks, request.limit, request.marker)
            checks.raise_if_any()
            key = self._management_key(op, request.key_id)
            self._authorize(op, key, "ListResourceTags")
            tags = list(self._store.list_tags(key.key_id))
            start = 0
            if request.marker is not None:
                names = [k for k, _ in tags]
                if request.marker not in names:
                    raise InvalidMarkerException("The marker is not valid.")
                start = names.index(request.marker) + 1
            limit = request.limit or 50
            page = tags[start : start + limit]
            truncated = start + limit < len(tags)
            return ListResourceTagsResponse(
                tags=tuple(Tag(k, v) for k, v in page),
                next_marker=page[-1][0] if truncated and page else None,
                truncated=truncated,
            )
