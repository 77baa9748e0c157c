"""Per-call context of the service: the audit-to-be of the running operation, and which
operations may decide on a cached key record.

Exact decisions on a cached record (see :func:`exact_key_state`): where the store can write
an audit record conditionally (``append_audit_guarded``, which both stores have), a
cryptographic operation may decide on an Enabled key record from the per-process cache and
then write its audit record in one statement that also checks that the key's state, policy
and current version are still the ones it decided on. If they are not (another replica
disabled, deleted, rotated or re-policied the key in between), nothing is written and the
whole operation runs again reading the key from the store, so its outcome and its audit
record are those of the committed state. Either way the decision rests on the key as it was
committed when the audit record was written, which is no weaker than reading the key first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from enclave_kms.model import Caller

if TYPE_CHECKING:
    from enclave_kms._service_recipient import VerifiedRecipient
    from enclave_kms.store import KeyRecord

__all__ = [
    "CACHED_KEY_OPERATIONS",
    "DRY_RUN_MESSAGE",
    "MUTATING_OPERATIONS",
    "Clock",
    "OpContext",
    "StaleDecision",
    "exact_key_state",
    "guards_allowed",
    "utc_now",
]

Clock = Callable[[], datetime]
DRY_RUN_MESSAGE = "The request would have succeeded, but the DryRun option is set."
# Read-only operations that may answer from a key record up to one cache poll interval (plus
# a round trip) old, as AWS KMS itself is eventually consistent for them. Cryptographic
# operations and every change read the key from the store on each call (or, where the store
# supports it, check it again in the audit statement: see the module docstring).
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

# True while an operation decorated with exact_key_state runs its first attempt.
_GUARDS_ALLOWED: ContextVar[bool] = ContextVar("enclave_kms_guards_allowed", default=False)


def utc_now() -> datetime:
    """The default service clock."""
    return datetime.now(UTC)


def guards_allowed() -> bool:
    """Whether the running operation may decide on a cached key record (first attempt)."""
    return _GUARDS_ALLOWED.get()


class StaleDecision(Exception):
    """The cached key record an operation decided on is no longer the committed one."""


@dataclass(slots=True)
class OpContext:
    """What the audit record of the running operation will say (filled in as it proceeds).

    ``guards`` are the cached key records the operation decided on; the audit record is
    written only if each is still the committed one (see the module docstring).
    """

    operation: str
    caller: Caller
    time: datetime
    key_arn: str | None = None
    encryption_context_keys: tuple[str, ...] = ()
    recipient: VerifiedRecipient | None = None
    deny_reason: str | None = None
    dry_run: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    guards: list[KeyRecord] = field(default_factory=list)
    # Key id -> the alias the request named it by (``kms:RequestAlias``).
    request_aliases: dict[str, str] = field(default_factory=dict)

    def fork(self) -> OpContext:
        """A copy to decide on before the outcome it rests on is known (see ``adopt``)."""
        return replace(
            self,
            extra=dict(self.extra),
            guards=list(self.guards),
            request_aliases=dict(self.request_aliases),
        )

    def adopt(self, other: OpContext) -> None:
        """Take over everything ``other`` (a :meth:`fork` of this context) now records."""
        for name in _OP_FIELDS:
            setattr(self, name, getattr(other, name))

    def note_context(self, *contexts: Mapping[str, str] | None) -> None:
        """Remember the encryption-context keys (never the values) for the audit."""
        keys: set[str] = set(self.encryption_context_keys)
        for ctx in contexts:
            if ctx:
                keys.update(ctx)
        self.encryption_context_keys = tuple(sorted(keys))


_OP_FIELDS = tuple(f.name for f in fields(OpContext))

_P = ParamSpec("_P")
_R = TypeVar("_R")


def exact_key_state(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Let a cryptographic operation decide on a cached key record, checked at audit time.

    The first attempt may use cached Enabled key records; if its audit write finds one of
    them changed (:class:`StaleDecision`), nothing was recorded or returned, and the
    operation runs once more reading every key from the store.
    """

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        token = _GUARDS_ALLOWED.set(True)
        try:
            return method(*args, **kwargs)
        except StaleDecision:
            pass
        finally:
            _GUARDS_ALLOWED.reset(token)
        token = _GUARDS_ALLOWED.set(False)
        try:
            return method(*args, **kwargs)
        finally:
            _GUARDS_ALLOWED.reset(token)

    return run
