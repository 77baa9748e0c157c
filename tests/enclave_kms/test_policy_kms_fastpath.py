"""Evaluation shortcuts (precomputed decisions, lazy condition context) change no outcome.

``evaluate`` skips building the normalized condition context when no targeted statement has a
Condition block and returns decisions prepared at parse time. The reference below is the plain
reading of the IAM evaluation logic: build the whole context first, test every statement, and
construct each decision and reason afresh. Both must agree on every request, reason included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_kms._policy_conditions import normalize_context
from enclave_kms._policy_statements import Statement, request_identity
from enclave_kms.policy import (
    AuthorizationRequest,
    KeyPolicy,
    KeyPolicyAccessDenied,
    PolicyDecision,
    attestation_condition_keys,
    authorize,
    default_key_policy,
    evaluate,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
PCR0 = "ab" * 48


def _name(statement: Statement) -> str:
    return statement.sid if statement.sid is not None else f"#{statement.index}"


def _reference(policy: KeyPolicy, request: AuthorizationRequest) -> PolicyDecision:
    identity = request_identity(request.principal_arn, request.account_id)
    context = normalize_context(request.context)
    context.setdefault("kms:calleraccount", (request.account_id,))
    context.setdefault("aws:principalaccount", (request.account_id,))
    context.setdefault("aws:principalarn", (identity.principal_arn_key,))
    allow: Statement | None = None
    not_applied: list[str] = []
    for statement in policy.statements:
        if not statement.targets(identity, request.action, request.resource_arn):
            continue
        failed = statement.first_failed_condition(context)
        if failed is not None:
            if statement.effect == "Allow":
                not_applied.append(
                    f"Allow statement {_name(statement)}: condition {failed.describe()} "
                    "not satisfied"
                )
            continue
        if statement.effect == "Deny":
            return PolicyDecision(
                False, f"explicit deny by statement {_name(statement)}", _name(statement)
            )
        if allow is None:
            allow = statement
    if allow is not None:
        return PolicyDecision(True, f"allowed by statement {_name(allow)}", _name(allow))
    reason = "no statement allows"
    if not_applied:
        reason += " (" + "; ".join(not_applied) + ")"
    return PolicyDecision(False, reason, None)


# Statement building blocks: some with conditions, some without, Sid-less ones, Deny ones.
_PRINCIPALS = ["*", {"AWS": ROOT}, {"AWS": ACCOUNT}, {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"}]
_ACTIONS = [
    "kms:*",
    "kms:Decrypt",
    ["kms:Generate*", "kms:Decrypt"],
    ["kms:Create*", "kms:Describe*", "kms:Put*"],
    "kms:*DataKey*",
    "kms:Gen?rate*",
]
_RESOURCES = ["*", KEY_ARN, "arn:aws:kms:*:*:key/*", f"arn:aws:kms:us-east-1:{OTHER}:key/*"]
_CONDITIONS: list[dict[str, object] | None] = [
    None,
    {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": PCR0}},
    {"Null": {"kms:RecipientAttestation:ImageSha384": "true"}},
    {"StringEquals": {"kms:EncryptionContext:purpose": "bench"}},
    {"ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["purpose", "tenant*"]}},
    {"StringNotEquals": {"kms:CallerAccount": ACCOUNT}},
]

_STATEMENT = st.builds(
    lambda sid, effect, principal, action, resource, condition: {
        key: value
        for key, value in {
            "Sid": sid,
            "Effect": effect,
            "Principal": principal,
            "Action": action,
            "Resource": resource,
            "Condition": condition,
        }.items()
        if value is not None
    },
    st.sampled_from([None, "A", "B", "Enclave"]),
    st.sampled_from(["Allow", "Allow", "Deny"]),
    st.sampled_from(_PRINCIPALS),
    st.sampled_from(_ACTIONS),
    st.sampled_from(_RESOURCES),
    st.sampled_from(_CONDITIONS),
)
_CALLERS = [
    (ROOT, ACCOUNT),
    (f"arn:aws:sts::{ACCOUNT}:assumed-role/app/session-1", ACCOUNT),
    (f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT),
    (f"arn:aws:iam::{OTHER}:root", OTHER),
]
_CONTEXTS: list[Mapping[str, str | Sequence[str] | bool]] = [
    {},
    {"kms:EncryptionContext:purpose": "bench", "kms:EncryptionContextKeys": ("purpose",)},
    {"KMS:EncryptionContext:Purpose": "other", "kms:EncryptionContextKeys": ["Purpose"]},
    {**attestation_condition_keys({0: bytes.fromhex(PCR0), 1: b"\x01" * 48})},
    {"kms:CallerAccount": OTHER, "kms:EncryptionContextKeys": ()},
]


@settings(max_examples=200, deadline=None)
@given(
    statements=st.lists(_STATEMENT, min_size=1, max_size=4),
    caller=st.sampled_from(_CALLERS),
    action=st.sampled_from(["kms:Decrypt", "kms:GenerateDataKey", "KMS:CreateKey", "kms:Sign"]),
    context=st.sampled_from(_CONTEXTS),
)
def test_evaluate_agrees_with_the_plain_reference(
    statements: list[dict[str, object]],
    caller: tuple[str, str],
    action: str,
    context: Mapping[str, str | Sequence[str] | bool],
) -> None:
    policy = KeyPolicy.parse(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    request = AuthorizationRequest(caller[0], caller[1], action, KEY_ARN, context)
    assert evaluate(policy, request) == _reference(policy, request)


def test_bad_context_value_is_a_type_error_even_without_conditions() -> None:
    # The default policy has no Condition block, so the normalized context is never built;
    # a caller bug must still surface as the documented TypeError, not pass silently.
    policy = KeyPolicy.parse(default_key_policy(ACCOUNT))
    for bad in (1, [1], None):
        request = AuthorizationRequest(ROOT, ACCOUNT, "kms:Decrypt", KEY_ARN, {"k": bad})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="'k'"):
            evaluate(policy, request)


def test_not_applied_allow_reasons_are_listed_in_order() -> None:
    statements = [
        {"Sid": "First", "Effect": "Allow", "Principal": "*", "Action": "kms:*",
         "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:a": "1"}}},
        {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"Null": {"kms:RecipientAttestation:PCR0": "false"}}},
    ]  # fmt: skip
    policy = KeyPolicy.parse(json.dumps({"Statement": statements}))
    request = AuthorizationRequest(ROOT, ACCOUNT, "kms:Decrypt", KEY_ARN, {})
    with pytest.raises(KeyPolicyAccessDenied) as info:
        authorize(policy, request)
    assert info.value.decision == PolicyDecision(
        False,
        "no statement allows (Allow statement First: condition StringEquals on "
        "kms:EncryptionContext:a not satisfied; Allow statement #2: condition Null on "
        "kms:RecipientAttestation:PCR0 not satisfied)",
        None,
    )


def test_prepared_decisions_are_per_statement_and_policies_compare_by_content() -> None:
    text = default_key_policy(ACCOUNT)
    one, two = KeyPolicy.parse(text), KeyPolicy.parse(text)
    assert one == two  # the prepared rules are derived data, not part of equality
    assert "_rules" not in repr(one)
    request = AuthorizationRequest(ROOT, ACCOUNT, "kms:Encrypt", KEY_ARN, {})
    decision = authorize(one, request)
    assert decision == PolicyDecision(
        True, "allowed by statement Enable IAM User Permissions", "Enable IAM User Permissions"
    )
    # The same immutable decision is handed out again; it cannot be altered by a caller.
    assert authorize(one, request) is decision
    with pytest.raises(AttributeError):
        decision.allowed = False  # type: ignore[misc]


def test_cached_identity_keeps_request_semantics() -> None:
    # The parsed caller is cached; a root ARN with a mismatched account must still not match
    # the account principal, before and after the consistent request was cached.
    policy = KeyPolicy.parse(default_key_policy(ACCOUNT))
    good = AuthorizationRequest(ROOT, ACCOUNT, "kms:Decrypt", KEY_ARN, {})
    bad = AuthorizationRequest(ROOT, OTHER, "kms:Decrypt", KEY_ARN, {})
    assert evaluate(policy, good).allowed
    assert not evaluate(policy, bad).allowed
    assert evaluate(policy, good).allowed
    assert request_identity(ROOT, ACCOUNT).is_account_root
    assert not request_identity(ROOT, OTHER).is_account_root


def test_has_conditions_tells_whether_the_context_is_read() -> None:
    assert not KeyPolicy.parse(default_key_policy(ACCOUNT)).has_conditions
    gated = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:a": "1"}},
    }
    policy = KeyPolicy.parse(json.dumps({"Statement": [gated]}))
    assert policy.has_conditions
    # ... and it does read it: the same request is decided differently by its context.
    request = AuthorizationRequest(ROOT, ACCOUNT, "kms:Decrypt", KEY_ARN, {})
    assert not evaluate(policy, request).allowed
    with_context = AuthorizationRequest(
        ROOT, ACCOUNT, "kms:Decrypt", KEY_ARN, {"kms:EncryptionContext:a": "1"}
    )
    assert evaluate(policy, with_context).allowed
