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

Held audit records (see :func:`run_holding`): an asyncio adapter can run an operation with
its audit record held back instead of written, have the store write it together with other
requests' records (for PostgreSQL, during one round trip that does not block its event loop),
and answer only once it is written. A guarded record that was not written (a key changed) sends the
operation round again reading through, exactly as above.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, NamedTuple, ParamSpec, TypeVar

from enclave_kms.model import Caller

if TYPE_CHECKING:
    from enclave_kms._service_recipient import VerifiedRecipient
    from enclave_kms.audit import AuditRecord
    from enclave_kms.store import KeyRecord

__all__ = [
    "CACHED_KEY_OPERATIONS",
    "DRY_RUN_MESSAGE",
    "MUTATING_OPERATIONS",
    "Clock",
    "HeldAudit",
    "HeldCall",
    "OpContext",
    "StaleDecision",
    "exact_key_state",
    "guards_allowed",
    "holding_audit",
    "run_holding",
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


class HeldAudit(NamedTuple):
    """An audit record held back for the adapter to write, and the key records it rests on.

    The record may be written only if each key in ``guards`` still has the state, current
    version and policy it has here (``append_audit_guarded``); with no guards, always.
    """

    record: AuditRecord
    guards: tuple[KeyRecord, ...]


class _Holding:
    """The audit records the running call holds back, and whether it may use cached keys."""

    __slots__ = ("allow_guards", "audits")

    def __init__(self, *, allow_guards: bool) -> None:
        self.allow_guards = allow_guards
        self.audits: list[HeldAudit] = []


_HOLDING: ContextVar[_Holding | None] = ContextVar("enclave_kms_holding_audit", default=None)


def utc_now() -> datetime:
    """The default service clock."""
    return datetime.now(UTC)


def guards_allowed() -> bool:
    """Whether the running operation may decide on a cached key record (first attempt)."""
    if not _GUARDS_ALLOWED.get():
        return False
    holding = _HOLDING.get()
    return holding is None or holding.allow_guards


def holding_audit() -> list[HeldAudit] | None:
    """Where the running call holds its audit records back, or None: write them now."""
    holding = _HOLDING.get()
    return None if holding is None else holding.audits


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
        # Field by field, as adopt() copies back, so a field added later is never left out
        # (dataclasses.replace would do the same, at twice the cost on every Recipient call).
        copy = object.__new__(OpContext)
        for name in _OP_FIELDS:
            setattr(copy, name, getattr(self, name))
        copy.extra = dict(self.extra)
        copy.guards = list(self.guards)
        copy.request_aliases = dict(self.request_aliases)
        return copy

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


class HeldCall(Generic[_R]):
    """One run of an operation whose audit records were held back (see :func:`run_holding`).

    The adapter writes :attr:`audits`, passes what was written to :meth:`settle`, and answers
    with :meth:`result` only once ``settle`` returns None. Until then the operation's
    outcome, a data key included, must not leave the process.
    """

    __slots__ = ("_error", "_rerun", "_value", "audits")

    def __init__(
        self,
        audits: tuple[HeldAudit, ...],
        value: _R | None,
        error: Exception | None,
        rerun: Callable[[], HeldCall[_R]] | None,
    ) -> None:
        self.audits = audits
        self._value = value
        self._error = error
        self._rerun = rerun

    def settle(self, written: Sequence[bool]) -> HeldCall[_R] | None:
        """None if every record was written; else the operation run again, to write instead.

        A record goes unwritten only when a cached key it was decided on changed: this
        outcome is discarded (no record of it exists) and the rerun reads every key from the
        store, so its records have no guards and are always written.
        """
        if len(written) != len(self.audits):
            raise ValueError("one outcome per held audit record is needed")
        if all(written):
            return None
        if self._rerun is None:
            raise ValueError("a record without guards is always written")
        return self._rerun()

    def result(self) -> _R:
        """The operation's response; raises its error (a KmsError) instead, if it failed."""
        if self._error is not None:
            raise self._error
        return typing.cast(_R, self._value)


def run_holding(
    call: Callable[[], _R], *, on_stale: Callable[[], None], allow_guards: bool = True
) -> HeldCall[_R]:
    """Run ``call`` (one service operation) with its audit records held back.

    Args:
        call: the operation, bound to its caller and request.
        on_stale: run before the operation is run again because a cached key changed (the
            service drops its cached records).
        allow_guards: whether this run may decide on cached key records.
    """
    holding = _Holding(allow_guards=allow_guards)
    token = _HOLDING.set(holding)
    value: _R | None = None
    error: Exception | None = None
    try:
        value = call()
    except Exception as exc:  # the operation's error, raised again by HeldCall.result()
        error = exc
    finally:
        _HOLDING.reset(token)

    def rerun() -> HeldCall[_R]:
        on_stale()
        return run_holding(call, on_stale=on_stale, allow_guards=False)

    guarded = any(audit.guards for audit in holding.audits)
    return HeldCall(tuple(holding.audits), value, error, rerun if guarded else None)
