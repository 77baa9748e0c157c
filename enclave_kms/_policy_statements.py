"""Key policy documents and statements: structure, validation, target matching.

Internal to :mod:`enclave_kms.policy`. Structure rules come from the IAM JSON policy element
reference and the KMS PutKeyPolicy documentation (botocore's kms model, ``Policy`` member).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from enclave_kms._policy_conditions import ConditionTest, parse_conditions
from enclave_kms._policy_wildcards import WildcardSet, compile_wildcards
from enclave_kms.errors import LimitExceededException, MalformedPolicyDocumentException

__all__ = ["RequestIdentity", "Statement", "parse_document", "request_identity"]

_VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT_FIELDS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
     "NotResource", "Condition"}
)  # fmt: skip
# KMS PutKeyPolicy: tab, LF, CR and U+0020..U+00FF only (the model's pattern for Policy).
_ALLOWED_CHARS = re.compile(r"[\t\n\r\u0020-\u00ff]*")
_ACCOUNT_ID = re.compile(r"\d{12}")
# An IAM/STS principal ARN: no wildcards are allowed in a principal other than a bare "*".
_PRINCIPAL_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):(?P<service>iam|sts)::(?P<account>\d{12}):"
    r"(?P<resource>root|(?:user|role|federated-user)/[^*?]+|assumed-role/[^/*?]+/[^*?]+)"
)
_ACTION = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."


def _malformed(message: str) -> MalformedPolicyDocumentException:
    return MalformedPolicyDocumentException(message)


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    """The caller, pre-parsed for principal matching.

    Attributes:
        principal_arn: the caller's ARN as given.
        account_id: the caller's account; empty when the ARN names another account, so that
            account principals match neither (fail closed on an inconsistent request).
        partition: the ARN partition (``aws`` when the ARN does not parse).
        role: ``(partition, account, role name)`` for an assumed-role session, else ``None``.
        principal_arn_key: the value of ``aws:PrincipalArn`` (the role ARN for a session).
        is_account_root: whether ``principal_arn`` is the root user of ``account_id``.
    """

    principal_arn: str
    account_id: str
    partition: str
    role: tuple[str, str, str] | None
    principal_arn_key: str
    is_account_root: bool = field(init=False)

    def __post_init__(self) -> None:
        root = f"arn:{self.partition}:iam::{self.account_id}:root"
        object.__setattr__(self, "is_account_root", self.principal_arn == root)


# A service sees few distinct callers, so the parsed identity is cached (bounded; the result is
# immutable and a pure function of its arguments) instead of running the ARN regex per request.
@lru_cache(maxsize=1024)
def request_identity(principal_arn: str, account_id: str) -> RequestIdentity:
    """Parse the caller's ARN (cached: the same caller is parsed once)."""
    match = _PRINCIPAL_ARN.fullmatch(principal_arn)
    if match is None:
        return RequestIdentity(principal_arn, account_id, "aws", None, principal_arn)
    partition, resource = match["partition"], match["resource"]
    if match["account"] != account_id:
        account_id = ""
    role = None
    arn_key = principal_arn
    if match["service"] == "sts" and resource.startswith("assumed-role/"):
        name = resource.split("/")[1]
        role = (partition, match["account"], name)
        # aws:PrincipalArn of a session is the role's ARN; the role's path is unknown here, so
        # a caller that knows it should put aws:PrincipalArn in the context itself.
        arn_key = f"arn:{partition}:iam::{match['account']}:role/{name}"
    return RequestIdentity(principal_arn, account_id, partition, role, arn_key)


@dataclass(frozen=True, slots=True)
class _Principals:
    anyone: bool
    accounts: frozenset[tuple[str | None, str]]  # (partition or None for a bare id, account)
    arns: frozenset[str]
    roles: frozenset[tuple[str, str, str]]  # (partition, account, role name)

    def match(self, who: RequestIdentity) -> bool:
        if self.anyone or who.principal_arn in self.arns:
            return True
        if who.role is not None and who.role in self.roles:
            return True
        # An account principal delegates to the account's IAM policies (AWS KMS developer
        # guide, "Allows access to the AWS account and enables IAM policies"). This service
        # has no IAM, so identity policies grant nothing: the account principal admits the
        # account's root user only, and every other identity must be named in the key policy.
        # Matching every identity of the account instead would let any credential the parent
        # holds rewrite an attestation-gated policy.
        if not who.is_account_root:
            return False
        return (None, who.account_id) in self.accounts or (
            who.partition,
            who.account_id,
        ) in self.accounts


def _strings(value: object, element: str, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise _malformed(f"{where}: {element} must be a non-empty string or list of strings")
    return tuple(items)


def _parse_principal(value: object, where: str) -> _Principals:
    if value == "*":
        return _Principals(True, frozenset(), frozenset(), frozenset())
    if not isinstance(value, dict) or not value:
        raise _malformed(_INVALID_PRINCIPALS)
    anyone = False
    accounts: set[tuple[str | None, str]] = set()
    arns: set[str] = set()
    roles: set[tuple[str, str, str]] = set()
    for kind, entries in value.items():
        names = _strings(entries, f"Principal {kind}", where)
        if kind == "Service":
            # Service principals are valid in key policies but never sign our requests.
            if not all(re.fullmatch(r"[a-z0-9.-]+", name) for name in names):
                raise _malformed(_INVALID_PRINCIPALS)
            continue
        if kind != "AWS":
            raise _malformed(_INVALID_PRINCIPALS)
        for name in names:
            if name == "*":
                anyone = True
            elif _ACCOUNT_ID.fullmatch(name):
                accounts.add((None, name))
            elif (match := _PRINCIPAL_ARN.fullmatch(name)) is None:
                raise _malformed(_INVALID_PRINCIPALS)
            elif match["resource"] == "root" and match["service"] == "iam":
                accounts.add((match["partition"], match["account"]))
            else:
                arns.add(name)
                if match["service"] == "iam" and match["resource"].startswith("role/"):
                    role_name = match["resource"].rsplit("/", 1)[1]
                    roles.add((match["partition"], match["account"], role_name))
    return _Principals(anyone, frozenset(accounts), frozenset(arns), frozenset(roles))


@dataclass(frozen=True, slots=True)
class Statement:
    """One parsed statement.

    Attributes:
        index: 1-based position in the document (names Sid-less statements in reasons).
        sid: the ``Sid``, or ``None``.
        effect: ``Allow`` or ``Deny``.
        conditions: the parsed ``Condition`` tests (ANDed).
    """

    index: int
    sid: str | None
    effect: str
    conditions: tuple[ConditionTest, ...]
    _principals: _Principals
    _actions: WildcardSet | None  # None: no Action/NotAction, the statement has no effect
    _not_action: bool
    _resources: WildcardSet | None  # None: no Resource/NotResource
    _not_resource: bool

    def targets(self, who: RequestIdentity, action: str, resource_arn: str) -> bool:
        """Whether principal, action and resource all match (conditions not considered)."""
        if self._actions is None or self._resources is None:
            return False
        if self._actions.matches(action) == self._not_action:
            return False
        if self._resources.matches(resource_arn) == self._not_resource:
            return False
        return self._principals.match(who)

    def first_failed_condition(
        self, context: Mapping[str, tuple[str, ...]]
    ) -> ConditionTest | None:
        """The first condition that does not hold, or ``None`` when all hold."""
        for test in self.conditions:
            if not test.holds(context):
                return test
        return None


def _one_of(raw: dict[str, object], a: str, b: str, where: str) -> tuple[object, bool] | None:
    if a in raw and b in raw:
        raise _malformed(f"{where} has both {a} and {b}")
    if a in raw:
        return raw[a], False
    if b in raw:
        return raw[b], True
    return None


def _parse_statement(raw: object, index: int, version: str | None) -> Statement:
    where = f"Statement #{index}"
    if not isinstance(raw, dict):
        raise _malformed(f"{where} is not a JSON object")
    sid = raw.get("Sid")
    if sid is not None:
        if not isinstance(sid, str):
            raise _malformed(f"{where} has a Sid that is not a string")
        where = f"Statement {sid!r}"
    unknown = sorted(set(raw) - _STATEMENT_FIELDS)
    if unknown:
        raise _malformed(f"{where} has an unknown element: {unknown[0]!r}")
    effect = raw.get("Effect")
    if effect is None:
        raise _malformed(f"{where} is missing the Effect element")
    if effect not in ("Allow", "Deny"):
        raise _malformed(f"{where} has an invalid Effect {effect!r}; use Allow or Deny")
    if "NotPrincipal" in raw:
        raise _malformed(f"{where} uses NotPrincipal, which is not supported; use Principal")
    if "Principal" not in raw:
        raise _malformed(f"{where} is missing the Principal element")
    principals = _parse_principal(raw["Principal"], where)

    actions: WildcardSet | None = None
    not_action = False
    found = _one_of(raw, "Action", "NotAction", where)
    # KMS PutKeyPolicy: a statement without Action or Resource is accepted but has no effect.
    if found is not None:
        value, not_action = found
        names = _strings(value, "NotAction" if not_action else "Action", where)
        bad = [name for name in names if not _ACTION.fullmatch(name)]
        if bad:
            raise _malformed(f"{where} has an invalid action: {bad[0]!r}")
        actions = compile_wildcards(names, ignore_case=True)  # IAM action names: any case

    variables_forbidden = version == "2012-10-17"
    resources: WildcardSet | None = None
    not_resource = False
    found = _one_of(raw, "Resource", "NotResource", where)
    if found is not None:
        value, not_resource = found
        element = "NotResource" if not_resource else "Resource"
        arns = _strings(value, element, where)
        bad = [arn for arn in arns if arn != "*" and not arn.startswith("arn:")]
        if bad:
            raise _malformed(f"{where} has an invalid {element}: {bad[0]!r}")
        if variables_forbidden and any("${" in arn for arn in arns):
            raise _malformed(f"{where} uses a policy variable in {element}, not supported")
        resources = compile_wildcards(arns, ignore_case=False)  # ARNs are case-sensitive

    conditions: tuple[ConditionTest, ...] = ()
    if "Condition" in raw:
        conditions = parse_conditions(
            raw["Condition"], where, variables_forbidden=variables_forbidden
        )
    return Statement(
        index=index,
        sid=sid,
        effect=effect,
        conditions=conditions,
        _principals=principals,
        _actions=actions,
        _not_action=not_action,
        _resources=resources,
        _not_resource=not_resource,
    )


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json would silently keep the last duplicate; two readers could then disagree on the policy.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _malformed(f"Policy document contains the key {key!r} more than once")
        result[key] = value
    return result


def parse_document(
    text: str, *, max_bytes: int
) -> tuple[str | None, str | None, tuple[Statement, ...]]:
    """Validate a key policy document and parse its statements.

    Returns:
        ``(Version or None, Id or None, statements)``.

    Raises:
        MalformedPolicyDocumentException: the document is not a valid key policy.
        LimitExceededException: the document is larger than ``max_bytes`` (UTF-8).
    """
    if not isinstance(text, str):
        raise _malformed("Policy document must be a string")
    if len(text.encode("utf-8")) > max_bytes:
        raise LimitExceededException(f"Policy document exceeds the limit of {max_bytes} bytes")
    if not text.strip():
        raise _malformed("Policy document is empty")
    if not _ALLOWED_CHARS.fullmatch(text):
        raise _malformed(
            "Policy document contains a character outside tab, line feed, carriage return "
            "and U+0020 through U+00FF"
        )
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise _malformed(f"Policy document is not valid JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:
        raise _malformed("Policy document is nested too deeply") from None
    if not isinstance(document, dict):
        raise _malformed("Policy document must be a JSON object")
    unknown = sorted(set(document) - _TOP_LEVEL)
    if unknown:
        raise _malformed(f"Policy document has an unknown element: {unknown[0]!r}")
    version = document.get("Version")
    if version is not None and version not in _VERSIONS:
        raise _malformed(f"Policy document has an unsupported Version {version!r}")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise _malformed("Policy document has an Id that is not a string")
    if "Statement" not in document:
        raise _malformed("Policy document is missing the Statement element")
    raw_statements = document["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]  # IAM allows a single statement object
    if not isinstance(raw_statements, list) or not raw_statements:
        raise _malformed("Policy document must contain at least one statement")
    statements = tuple(
        _parse_statement(raw, index, version) for index, raw in enumerate(raw_statements, 1)
    )
    return version, policy_id, statements
