"""KMS key policies: the IAM policy-language subset key policies use, with attestation keys.

Parse once, evaluate many times::

    policy = KeyPolicy.parse(text)             # MalformedPolicyDocumentException if invalid
    decision = authorize(policy, AuthorizationRequest(
        principal_arn="arn:aws:iam::111122223333:role/app",
        account_id="111122223333",
        action="kms:Decrypt",
        resource_arn=key_arn,
        context=attestation_condition_keys(pcrs),
    ))                                         # AccessDeniedException (with .decision) if denied

Evaluation follows the IAM User Guide's policy evaluation logic for a resource-based policy on
its own: an explicit ``Deny`` wins, then any ``Allow``, otherwise an implicit deny.

Principals. The account principal (``"arn:aws:iam::<acct>:root"`` or ``"<acct>"``) in AWS
delegates to the account's IAM policies. There is no IAM behind this service, so identity
policies grant nothing: the account principal admits the account's root user only, and every
other identity (users, roles) must be named in the key policy. This is the secure reading: were
the account principal to match every identity, any credential a parent instance holds could
rewrite an attestation-gated key policy. A role ARN matches
that role's sessions (``arn:aws:sts::<acct>:assumed-role/<name>/<session>``), as in AWS.
``Service`` principals are accepted and never match (requests here come from IAM identities).
``NotPrincipal`` is rejected: its AWS semantics depend on the identity chain of the session,
which we do not model.

Condition keys the service supplies in ``context``: ``kms:RecipientAttestation:ImageSha384``,
``kms:RecipientAttestation:PCR<n>``, ``kms:EncryptionContext:<key>``,
``kms:EncryptionContextKeys`` (multi-valued), ``kms:SigningAlgorithm`` and ``kms:MessageType``
(Sign, Verify; the message type is ``RAW`` when the request leaves it out), ``kms:MacAlgorithm``
(GenerateMac, VerifyMac), ``kms:CallerAccount``, ``aws:PrincipalArn``,
``aws:PrincipalAccount``, ``aws:CurrentTime``, ``aws:EpochTime`` and, for a request that came
over the network, ``aws:SourceIp`` (the address the server saw; see the server settings for
requests relayed by a proxy). Key names compare
case-insensitively (IAM); that includes the ``<key>`` part of ``kms:EncryptionContext:<key>``
(KMS documents the condition key as case-insensitive); use ``kms:EncryptionContextKeys`` with
``StringEquals`` to require an exact key spelling.
``kms:CallerAccount``, ``aws:PrincipalAccount`` and ``aws:PrincipalArn`` are filled in from the
request when the context does not carry them.

Condition operators: ``String*``, ``Numeric*``, ``Date*``, ``Arn*``, ``IpAddress``,
``NotIpAddress``, ``BinaryEquals``, ``Bool`` and ``Null``, with ``...IfExists`` and the
``ForAnyValue:`` / ``ForAllValues:`` qualifiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from enclave_kms._policy_conditions import ConditionTest, check_context_values, normalize_context
from enclave_kms._policy_statements import (
    RequestIdentity,
    Statement,
    parse_document,
    request_identity,
)
from enclave_kms.errors import AccessDeniedException, MalformedPolicyDocumentException

__all__ = [
    "MAX_POLICY_BYTES",
    "AuthorizationRequest",
    "KeyPolicy",
    "KeyPolicyAccessDenied",
    "PolicyDecision",
    "attestation_condition_keys",
    "authorize",
    "check_lockout_safety",
    "default_key_policy",
    "evaluate",
]

#: KMS quota "Key policy document size": 32 KB (32,768 bytes).
MAX_POLICY_BYTES = 32768

_ACCOUNT_ID = re.compile(r"\d{12}")
_PARTITION = re.compile(r"aws(-[a-z]+)*")
# Condition key names for PCR0..31, built once (attestation_condition_keys runs per Recipient).
_PCR_KEYS: Final = tuple(f"kms:RecipientAttestation:PCR{index}" for index in range(32))
_IMAGE_SHA384_KEY: Final = "kms:RecipientAttestation:ImageSha384"


@dataclass(frozen=True)
class KeyPolicy:
    """A parsed, validated key policy. Build it with :meth:`parse`.

    Attributes:
        text: the document exactly as it was put (GetKeyPolicy returns it unchanged).
        version: the ``Version`` element, or ``None`` when absent (AWS then uses 2008-10-17).
        policy_id: the ``Id`` element, or ``None``.
        statements: the parsed statements, in document order.
    """

    text: str = field(repr=False)
    version: str | None
    policy_id: str | None
    statements: tuple[Statement, ...]
    # Precomputed once per policy (the service caches parsed policies by text): each
    # statement's name and the decision it yields when it decides, so evaluation allocates
    # nothing on the common paths. Derived from ``statements``, so not part of equality.
    _rules: tuple[_Rule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rules", tuple(_Rule.of(s) for s in self.statements))

    @classmethod
    def parse(cls, text: str) -> KeyPolicy:
        """Parse and validate a key policy document.

        Args:
            text: the JSON document.

        Returns:
            The parsed policy.

        Raises:
            MalformedPolicyDocumentException: the document is not JSON, not a valid policy, or
                uses something this service does not support; the message names the problem.
            LimitExceededException: the document exceeds 32,768 bytes (KMS documents
                LimitExceededException for an over-long key policy).
        """
        version, policy_id, statements = parse_document(text, max_bytes=MAX_POLICY_BYTES)
        return cls(text=text, version=version, policy_id=policy_id, statements=statements)

    def to_json(self) -> str:
        """Return the document as stored: the exact text that was parsed."""
        return self.text

    @property
    def has_conditions(self) -> bool:
        """Whether any statement has a ``Condition`` block.

        When false, evaluation reads nothing from ``AuthorizationRequest.context`` beyond
        checking its value types, so a caller may skip building the condition keys.
        """
        return any(rule.has_conditions for rule in self._rules)


def default_key_policy(account_id: str, *, partition: str = "aws") -> str:
    """Return AWS's default key policy for a key created without a policy.

    It gives the account principal full access, which in AWS delegates to IAM (and here lets
    every principal of the account use the key). The layout is the one GetKeyPolicy returns.

    Args:
        account_id: the 12-digit account that owns the key.
        partition: the ARN partition (``aws``, ``aws-cn``, ``aws-us-gov``, ...).

    Returns:
        The policy document as JSON text.

    Raises:
        ValueError: ``account_id`` is not 12 digits or ``partition`` is not a partition name.
    """
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise ValueError("account_id must be 12 digits")
    if not _PARTITION.fullmatch(partition):
        raise ValueError("partition is not a valid ARN partition")
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Id" : "key-default-1",\n'
        '  "Statement" : [ {\n'
        '    "Sid" : "Enable IAM User Permissions",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:{partition}:iam::{account_id}:root"\n'
        "    },\n"
        '    "Action" : "kms:*",\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )


@dataclass(frozen=True)
class AuthorizationRequest:
    """What is being asked, by whom, on what, and the condition keys present in the request.

    Attributes:
        principal_arn: the caller, e.g. ``arn:aws:iam::111122223333:user/alice``.
        account_id: the caller's account (``kms:CallerAccount``).
        action: the action, e.g. ``kms:GenerateDataKey``.
        resource_arn: the key ARN.
        context: condition keys present in the request; an absent key is not in the mapping.
    """

    principal_arn: str
    account_id: str
    action: str
    resource_arn: str
    context: Mapping[str, str | Sequence[str] | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyDecision:
    """The outcome of evaluating a key policy. Never a bare bool.

    Attributes:
        allowed: whether the request is allowed.
        reason: for the audit record only (names statements and failed conditions, never
            request values); must not be sent to the client.
        matched_sid: the Sid (or ``#<n>`` position) of the deciding statement; ``None`` for an
            implicit deny.
    """

    allowed: bool
    reason: str
    matched_sid: str | None


class KeyPolicyAccessDenied(AccessDeniedException):
    """AccessDeniedException raised by :func:`authorize`, carrying the decision for the audit.

    The message is AWS's generic text; the reason (which statement or condition) is only on
    ``decision``, which is not part of the message or the repr.

    Attributes:
        decision: the deny decision.
    """

    aws_type = "AccessDeniedException"

    def __init__(self, message: str, decision: PolicyDecision) -> None:
        super().__init__(message)
        self.decision = decision


def _statement_name(statement: Statement) -> str:
    return statement.sid if statement.sid is not None else f"#{statement.index}"


@dataclass(frozen=True, slots=True)
class _Rule:
    """A statement with what evaluation needs ready-made.

    ``decision`` is the outcome when this statement decides (an explicit deny for a Deny
    statement, the allow for an Allow statement); PolicyDecision is frozen, so one instance
    can be returned to every request.
    """

    statement: Statement
    name: str
    decision: PolicyDecision
    has_conditions: bool

    @classmethod
    def of(cls, statement: Statement) -> _Rule:
        name = _statement_name(statement)
        if statement.effect == "Deny":
            decision = PolicyDecision(False, f"explicit deny by statement {name}", name)
        else:
            decision = PolicyDecision(True, f"allowed by statement {name}", name)
        return cls(statement, name, decision, bool(statement.conditions))


def _condition_context(
    request: AuthorizationRequest, identity: RequestIdentity
) -> dict[str, tuple[str, ...]]:
    """The normalized condition keys of a request, with the request-derived global keys."""
    context = normalize_context(request.context)
    # Request-derived global keys, unless the caller supplied them.
    context.setdefault("kms:calleraccount", (request.account_id,))
    context.setdefault("aws:principalaccount", (request.account_id,))
    context.setdefault("aws:principalarn", (identity.principal_arn_key,))
    return context


def evaluate(policy: KeyPolicy, request: AuthorizationRequest) -> PolicyDecision:
    """Evaluate a key policy for one request.

    Args:
        policy: the parsed key policy.
        request: the request.

    Returns:
        The decision: an explicit Deny wins, then any Allow, otherwise an implicit deny.

    Raises:
        TypeError: a context value is not a str, a sequence of str, or a bool.
    """
    identity = request_identity(request.principal_arn, request.account_id)
    # Bad context values are a caller bug reported whatever the policy; the (costlier)
    # normalized context is only built when a statement that targets the request has
    # conditions, so a policy without Condition blocks never pays for it.
    check_context_values(request.context)
    context: dict[str, tuple[str, ...]] | None = None
    action, resource_arn = request.action, request.resource_arn

    allow: PolicyDecision | None = None
    not_applied: list[str] = []
    for rule in policy._rules:
        statement = rule.statement
        if not statement.targets(identity, action, resource_arn):
            continue
        if rule.has_conditions:
            if context is None:
                context = _condition_context(request, identity)
            failed: ConditionTest | None = statement.first_failed_condition(context)
            if failed is not None:
                if statement.effect == "Allow":
                    not_applied.append(
                        f"Allow statement {rule.name}: condition {failed.describe()} not satisfied"
                    )
                continue
        # An explicit deny wins at once; otherwise the first applicable Allow decides.
        if not rule.decision.allowed:
            return rule.decision
        if allow is None:
            allow = rule.decision
    if allow is not None:
        return allow
    reason = "no statement allows"
    if not_applied:
        reason += " (" + "; ".join(not_applied) + ")"
    return PolicyDecision(False, reason, None)


def authorize(policy: KeyPolicy, request: AuthorizationRequest) -> PolicyDecision:
    """Return the Allow decision, or raise AccessDeniedException.

    Args:
        policy: the parsed key policy.
        request: the request.

    Returns:
        The Allow decision (for the audit record).

    Raises:
        KeyPolicyAccessDenied: (an AccessDeniedException) the policy does not allow the
            request. The message is AWS's generic text; ``.decision`` carries the reason.
        TypeError: a context value is not a str, a sequence of str, or a bool.
    """
    decision = evaluate(policy, request)
    if decision.allowed:
        return decision
    prefix = (
        f"User: {request.principal_arn} is not authorized to perform: {request.action} "
        f"on resource: {request.resource_arn}"
    )
    # AWS's two wordings: an explicit deny is named as such, otherwise "no ... policy allows".
    if decision.matched_sid is not None:
        message = f"{prefix} with an explicit deny in a resource-based policy"
    else:
        message = f"{prefix} because no resource-based policy allows the {request.action} action"
    raise KeyPolicyAccessDenied(message, decision)


def check_lockout_safety(policy: KeyPolicy, request: AuthorizationRequest) -> PolicyDecision:
    """Check that a new key policy still lets the caller of PutKeyPolicy/CreateKey manage the key.

    KMS refers to this as the policy lockout safety check (skipped when the request sets
    ``BypassPolicyLockoutSafetyCheck``): the new policy must allow the calling principal to make
    a later ``kms:PutKeyPolicy`` request. ``request.action`` is ignored.

    Args:
        policy: the new policy.
        request: the PutKeyPolicy or CreateKey request (caller, account, key ARN, context).

    Returns:
        The Allow decision for ``kms:PutKeyPolicy``.

    Raises:
        MalformedPolicyDocumentException: the policy would lock the caller out (AWS's text).
    """
    decision = evaluate(policy, replace(request, action="kms:PutKeyPolicy"))
    if not decision.allowed:
        raise MalformedPolicyDocumentException(
            "The new key policy will not allow you to update the key policy in the future."
        )
    return decision


def attestation_condition_keys(pcrs: Mapping[int, bytes]) -> dict[str, str]:
    """Return the ``kms:RecipientAttestation:*`` condition keys for an attestation's PCRs.

    ``ImageSha384`` is PCR0; every PCR gives ``PCR<n>``. Values are lower-case hex, as KMS
    documents ("The PCR value must be a lower-case hexadecimal string").

    Args:
        pcrs: PCR index (0..31) to value, from a verified attestation document.

    Returns:
        The condition keys, ready to merge into ``AuthorizationRequest.context``.

    Raises:
        ValueError: an index is outside 0..31 or a value is empty.
    """
    keys: dict[str, str] = {}
    for index, value in sorted(pcrs.items()):
        if not 0 <= index <= 31:
            raise ValueError(f"PCR index {index} is outside 0..31")
        if not value:
            raise ValueError(f"PCR{index} is empty")
        keys[_PCR_KEYS[index]] = bytes(value).hex()
    if _PCR_KEYS[0] in keys:
        keys[_IMAGE_SHA384_KEY] = keys[_PCR_KEYS[0]]
    return keys
