"""Condition operators: each one, IfExists, set qualifiers, Null and absent keys (IAM rules)."""

from __future__ import annotations

import pytest
from policy_support import ACCOUNT, Context, allowed

_allowed = allowed


K = "kms:EncryptionContext:dept"


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("StringEquals", "hr", {K: "hr"}, True),
        ("StringEquals", "hr", {K: "HR"}, False),
        ("StringEquals", ["it", "hr"], {K: "hr"}, True),  # values are ORed
        ("StringEquals", "hr", {}, False),  # absent key: false
        ("StringNotEquals", "hr", {K: "it"}, True),
        ("StringNotEquals", "hr", {K: "hr"}, False),
        ("StringNotEquals", ["it", "hr"], {K: "hr"}, False),  # negated values are NORed
        ("StringNotEquals", ["it", "hr"], {K: "ops"}, True),
        ("StringNotEquals", "hr", {}, True),  # IAM: negated operator on an absent key is true
        ("StringEqualsIgnoreCase", "hr", {K: "HR"}, True),
        ("StringEqualsIgnoreCase", "hr", {K: "hrx"}, False),
        ("StringEqualsIgnoreCase", "hr", {}, False),
        ("StringNotEqualsIgnoreCase", "hr", {K: "HR"}, False),
        ("StringNotEqualsIgnoreCase", "hr", {K: "it"}, True),
        ("StringNotEqualsIgnoreCase", "hr", {}, True),
        ("StringLike", "h*", {K: "hr"}, True),
        ("StringLike", "h?", {K: "hr"}, True),
        ("StringLike", "h?", {K: "hrx"}, False),
        ("StringLike", "H*", {K: "hr"}, False),  # StringLike is case-sensitive
        ("StringLike", "a.c", {K: "abc"}, False),  # only * and ? are special
        ("StringLike", "a.c", {K: "a.c"}, True),
        ("StringLike", "h*", {}, False),
        ("StringNotLike", "h*", {K: "it"}, True),
        ("StringNotLike", "h*", {K: "hr"}, False),
        ("StringNotLike", "h*", {}, True),
        ("StringEqualsIfExists", "hr", {}, True),
        ("StringEqualsIfExists", "hr", {K: "it"}, False),
        ("StringEqualsIfExists", "hr", {K: "hr"}, True),
        ("StringNotEqualsIfExists", "hr", {K: "hr"}, False),
        ("StringLikeIfExists", "x*", {}, True),
        ("Bool", "true", {K: True}, True),
        ("Bool", "true", {K: False}, False),
        ("Bool", "false", {K: "false"}, True),
        ("Bool", "TRUE", {K: "true"}, True),
        ("Bool", "true", {}, False),
        ("BoolIfExists", "true", {}, True),
        ("Null", "true", {}, True),
        ("Null", "true", {K: "hr"}, False),
        ("Null", "false", {K: "hr"}, True),
        ("Null", "false", {}, False),
        ("Null", "true", {K: []}, True),  # an empty multi-valued key counts as absent
    ],
)
def test_operator(operator: str, values: object, context: Context, expected: bool) -> None:
    assert _allowed({operator: {K: values}}, context) is expected


MULTI = "kms:EncryptionContextKeys"


@pytest.mark.parametrize(
    ("operator", "values", "request_values", "expected"),
    [
        ("ForAnyValue:StringEquals", ["a", "b"], ["b", "z"], True),
        ("ForAnyValue:StringEquals", ["a", "b"], ["y", "z"], False),
        ("ForAnyValue:StringEquals", ["a"], None, False),  # absent: ForAnyValue is false
        ("ForAnyValue:StringEquals", ["a"], [], False),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "z"], False),
        # The ForAllValues trap: absent or empty key -> true.
        ("ForAllValues:StringEquals", ["a"], None, True),
        ("ForAllValues:StringEquals", ["a"], [], True),
        ("ForAllValues:StringLike", ["key1*"], ["key1:a", "key1:b"], True),
        # IAM example: Deny ForAllValues:StringNotLike key1* matches key2:audit, not key1:legal.
        ("ForAllValues:StringNotLike", ["key1*"], ["key2:audit"], True),
        ("ForAllValues:StringNotLike", ["key1*"], ["key1:legal"], False),
        ("ForAllValues:StringNotLike", ["key1*"], None, True),
        ("ForAnyValue:StringNotEquals", ["a"], ["a", "b"], True),
        ("ForAnyValue:StringNotEquals", ["a"], ["a"], False),
        ("ForAnyValue:StringNotEquals", ["a"], None, False),
        ("ForAnyValue:StringEqualsIgnoreCase", ["A"], ["a"], True),
        ("ForAnyValue:StringEqualsIfExists", ["a"], None, True),
        # No qualifier on a multi-valued request value: positive = any, negated = complement.
        ("StringEquals", ["a"], ["a", "b"], True),
        ("StringNotEquals", ["a"], ["a", "b"], False),
        ("StringNotEquals", ["a"], ["b", "c"], True),
    ],
)
def test_set_qualifiers(
    operator: str, values: list[str], request_values: list[str] | None, expected: bool
) -> None:
    context: Context = {} if request_values is None else {MULTI: request_values}
    assert _allowed({operator: {MULTI: values}}, context) is expected


def test_keys_under_one_operator_are_anded() -> None:
    cond = {"StringEquals": {"kms:EncryptionContext:a": "1", "kms:EncryptionContext:b": "2"}}
    assert _allowed(cond, {"kms:EncryptionContext:a": "1", "kms:EncryptionContext:b": "2"})
    assert not _allowed(cond, {"kms:EncryptionContext:a": "1", "kms:EncryptionContext:b": "3"})
    assert not _allowed(cond, {"kms:EncryptionContext:a": "1"})


def test_operators_are_anded() -> None:
    cond = {"StringEquals": {K: "hr"}, "Null": {"kms:EncryptionContext:x": "true"}}
    assert _allowed(cond, {K: "hr"})
    assert not _allowed(cond, {K: "hr", "kms:EncryptionContext:x": "1"})
    assert not _allowed(cond, {K: "it"})


def test_condition_key_names_are_case_insensitive() -> None:
    assert _allowed({"StringEquals": {"KMS:CALLERACCOUNT": ACCOUNT}}, {})
    assert _allowed({"StringEquals": {"kms:encryptioncontext:Dept": "hr"}}, {K: "hr"})
    # ...but values keep the operator's case rule.
    assert not _allowed({"StringEquals": {"kms:encryptioncontext:Dept": "HR"}}, {K: "hr"})


def test_encryption_context_key_spelling_needs_encryption_context_keys() -> None:
    # The <key> part is case-insensitive; StringEquals on kms:EncryptionContextKeys is exact.
    cond = {"ForAnyValue:StringEquals": {MULTI: "Dept"}}
    assert _allowed(cond, {MULTI: ["Dept"]})
    assert not _allowed(cond, {MULTI: ["dept"]})


def test_request_derived_keys_are_filled_in() -> None:
    assert _allowed({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {})
    assert _allowed(
        {"StringEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/alice"}}, {}
    )
    # kms:ViaService is never filled in: we are called directly.
    assert _allowed({"Null": {"kms:ViaService": "true"}}, {})
    # A context value supplied by the service wins.
    assert not _allowed(
        {"StringEquals": {"kms:CallerAccount": ACCOUNT}}, {"kms:CallerAccount": "9"}
    )


def test_numbers_and_booleans_in_policy_compare_as_text() -> None:
    assert _allowed({"StringEquals": {"kms:CallerAccount": 111122223333}}, {})
    assert _allowed({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": True})


def test_bad_context_value_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="kms:EncryptionContext:dept"):
        _allowed({"StringEquals": {K: "1"}}, {K: 1})  # type: ignore[dict-item]
