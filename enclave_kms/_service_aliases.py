"""Aliases (CreateAlias, UpdateAlias, DeleteAlias, ListAliases) and key policies
(PutKeyPolicy, GetKeyPolicy, ListKeyPolicies).

Aliases are authorized against the target key's policy (``kms:CreateAlias`` etc.), as AWS
does for the key half of alias permissions. Only the policy name ``default`` exists (AWS).
"""

from __future__ import annotations

from enclave_kms._keyids import alias_arn, check_alias_name
from enclave_kms._service_keys import KeyOperations, key_id_checks, page_checks
from enclave_kms._service_validation import Checks
from enclave_kms.errors import (
    AlreadyExistsException,
    InvalidMarkerException,
    NotFoundException,
)
from enclave_kms.model import (
    AliasListEntry,
    Caller,
    CreateAliasRequest,
    CreateAliasResponse,
    DeleteAliasRequest,
    DeleteAliasResponse,
    GetKeyPolicyRequest,
    GetKeyPolicyResponse,
    ListAliasesRequest,
    ListAliasesResponse,
    ListKeyPoliciesRequest,
    ListKeyPoliciesResponse,
    PutKeyPolicyRequest,
    PutKeyPolicyResponse,
    UpdateAliasRequest,
    UpdateAliasResponse,
)
from enclave_kms.store import AliasRecord, DuplicateError, RecordNotFoundError

__all__ = ["AliasAndPolicyOperations"]

POLICY_NAME = "default"


def _alias_checks(checks: Checks, name: str | None) -> None:
    if checks.required(name, "AliasName"):
        checks.string(name, "AliasName", 1, 256)


def _policy_name_checks(checks: Checks, name: str | None) -> None:
    checks.string(name, "PolicyName", 1, 128)


class AliasAndPolicyOperations(KeyOperations):
    """Alias and key-policy operations."""

    def _alias_not_found(self, name: str) -> NotFoundException:
        return NotFoundException(
            f"Alias {alias_arn(self.region, self.account_id, name)} is not found."
        )

    def create_alias(self, caller: Caller, request: CreateAliasRequest) -> CreateAliasResponse:
        """CreateAlias (TargetKeyId: key id or key ARN).

        Raises:
            InvalidAliasNameException: bad format or the reserved ``alias/aws/`` prefix.
            AlreadyExistsException: the alias exists.
            KMSInvalidStateException: the target key is pending deletion.
        """
        with self._operation("CreateAlias", caller) as op:
            checks = Checks()
            _alias_checks(checks, request.alias_name)
            key_id_checks(checks, request.target_key_id, "TargetKeyId")
            checks.raise_if_any()
            assert request.alias_name is not None  # noqa: S101
            check_alias_name(request.alias_name, creating=True)
            key = self._authorized_management_key(op, request.target_key_id, "CreateAlias")
            self._require_not_pending(key)
            now = op.time
            try:
                self._store.create_alias(AliasRecord(request.alias_name, key.key_id, now, now))
            except DuplicateError:
                arn = alias_arn(self.region, self.account_id, request.alias_name)
                raise AlreadyExistsException(
                    f"An alias with the name {arn} already exists"
                ) from None
            return CreateAliasResponse()

    def update_alias(self, caller: Caller, request: UpdateAliasRequest) -> UpdateAliasResponse:
        """UpdateAlias: point an existing alias at another key.

        Raises:
            NotFoundException: the alias or key does not exist.
            KMSInvalidStateException: the new target is pending deletion.
        """
        with self._operation("UpdateAlias", caller) as op:
            checks = Checks()
            _alias_checks(checks, request.alias_name)
            key_id_checks(checks, request.target_key_id, "TargetKeyId")
            checks.raise_if_any()
            assert request.alias_name is not None  # noqa: S101
            check_alias_name(request.alias_name, creating=False)
            existing = self._store.get_alias(request.alias_name)
            if existing is None:
                raise self._alias_not_found(request.alias_name)
            old = self._load_key(op, existing.target_key_id)
            self._authorize(op, old, "UpdateAlias")
            key = self._authorized_management_key(op, request.target_key_id, "UpdateAlias")
            self._require_not_pending(key)
            try:
                self._store.update_alias(request.alias_name, key.key_id, op.time)
            except RecordNotFoundError:
                raise self._alias_not_found(request.alias_name) from None
            return UpdateAliasResponse()

    def delete_alias(self, caller: Caller, request: DeleteAliasRequest) -> DeleteAliasResponse:
        """DeleteAlias.

        Raises:
            NotFoundException: the alias does not exist.
        """
        with self._operation("DeleteAlias", caller) as op:
            checks = Checks()
            _alias_checks(checks, request.alias_name)
            checks.raise_if_any()
            assert request.alias_name is not None  # noqa: S101
            check_alias_name(request.alias_name, creating=False)
            existing = self._store.get_alias(request.alias_name)
            if existing is None:
                raise self._alias_not_found(request.alias_name)
            key = self._load_key(op, existing.target_key_id)
            self._authorize(op, key, "DeleteAlias")
            try:
                self._store.delete_alias(request.alias_name)
            except RecordNotFoundError:
                raise self._alias_not_found(request.alias_name) from None
            return DeleteAliasResponse()

    def list_aliases(self, caller: Caller, request: ListAliasesRequest) -> ListAliasesResponse:
        """ListAliases, optionally only those of ``KeyId`` (key id or key ARN).

        Raises:
            NotFoundException: ``KeyId`` names no key.
            InvalidMarkerException: a marker that is not an alias name.
        """
        with self._operation("ListAliases", caller) as op:
            checks = Checks()
            checks.string(request.key_id, "KeyId", 1, 2048)
            page_checks(checks, request.limit, request.marker)
            checks.raise_if_any()
            self._require_own_account(caller, "ListAliases")
            target = None
            if request.key_id is not None:
                target = self._management_key(op, request.key_id).key_id
            if request.marker is not None and not request.marker.startswith("alias/"):
                raise InvalidMarkerException("The marker is not valid.")
            self._store.delete_keys_due(op.time)
            limit = request.limit or 100
            rows = list(
                self._store.list_aliases(
                    target_key_id=target, after=request.marker, limit=limit + 1
                )
            )
            truncated = len(rows) > limit
            rows = rows[:limit]
            return ListAliasesResponse(
                aliases=tuple(
                    AliasListEntry(
                        alias_name=a.alias_name,
                        alias_arn=alias_arn(self.region, self.account_id, a.alias_name),
                        target_key_id=a.target_key_id,
                        creation_date=a.creation_date,
                        last_updated_date=a.last_updated_date,
                    )
                    for a in rows
                ),
                next_marker=rows[-1].alias_name if truncated else None,
                truncated=truncated,
            )

    # --- key policies -----------------------------------------------------------------------------

    def put_key_policy(self, caller: Caller, request: PutKeyPolicyRequest) -> PutKeyPolicyResponse:
        """PutKeyPolicy (PolicyName ``default`` only).

        Raises:
            MalformedPolicyDocumentException: invalid, or it would lock the caller out.
            NotFoundException: a PolicyName other than ``default``.
            KMSInvalidStateException: the key is pending deletion.
        """
        with self._operation("PutKeyPolicy", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            _policy_name_checks(checks, request.policy_name)
            if checks.required(request.policy, "Policy"):
                checks.string(request.policy, "Policy", 1, 131072)
            checks.raise_if_any()
            assert request.policy is not None  # noqa: S101
            key = self._authorized_management_key(op, request.key_id, "PutKeyPolicy")
            self._require_not_pending(key)
            self._require_default_name(request.policy_name)
            self._check_policy(
                caller, request.policy, key.key_id, request.bypass_policy_lockout_safety_check
            )
            self._store.update_key(key.key_id, {"policy": request.policy})
            return PutKeyPolicyResponse()

    @staticmethod
    def _require_default_name(name: str | None) -> None:
        if name is not None and name != POLICY_NAME:
            raise NotFoundException(f"Policy {name} does not exist. Only 'default' is supported.")

    def get_key_policy(self, caller: Caller, request: GetKeyPolicyRequest) -> GetKeyPolicyResponse:
        """GetKeyPolicy (PolicyName defaults to ``default``).

        Raises:
            NotFoundException: the key, or a PolicyName other than ``default``.
        """
        with self._operation("GetKeyPolicy", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            _policy_name_checks(checks, request.policy_name)
            checks.raise_if_any()
            key = self._authorized_management_key(op, request.key_id, "GetKeyPolicy")
            self._require_default_name(request.policy_name)
            return GetKeyPolicyResponse(policy=key.policy, policy_name=POLICY_NAME)

    def list_key_policies(
        self, caller: Caller, request: ListKeyPoliciesRequest
    ) -> ListKeyPoliciesResponse:
        """ListKeyPolicies: always ``["default"]``."""
        with self._operation("ListKeyPolicies", caller) as op:
            checks = Checks()
            key_id_checks(checks, request.key_id)
            page_checks(checks, request.limit, request.marker)
            checks.raise_if_any()
            self._authorized_management_key(op, request.key_id, "ListKeyPolicies")
            return ListKeyPoliciesResponse(policy_names=(POLICY_NAME,), truncated=False)
