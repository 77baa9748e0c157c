"""Policy evaluation: deny wins, implicit deny, principals, actions, resources, authorize()."""

from __future__ import annotations

import json

import pytest

from enclave_kms.errors import AccessDeniedException, MalformedPolicyDocumentException
from enclave_kms.policy import (
    AuthorizationRequest,
    KeyPolicy,
    KeyPolicyAccessDenied,
    PolicyDecision,
    authorize,
    check_lockout_safety,
    default_key_policy,
    evaluate,
)

ACCOUNT = "111122223333"
OTHER = "444455556666"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def _policy(*statements: dict[str, object]) -> KeyPolicy:
    return KeyPolicy.parse(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def _stmt(sid: str, effect: str = "Allow", **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "Sid": sid,
        "Effect": effect,
        "Principal": {"AWS": "*"},
        "Action": "kms:*",
        "Resource": "*",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def _req(
    principal: str = ALICE,
    account: str = ACCOUNT,
    action: str = "kms:Decrypt",
    resource: str = KEY_ARN,
    **context: str,
) -> AuthorizationRequest:
    return AuthorizationRequest(principal, account, action, resource, dict(context))


def test_explicit_deny_wins_over_allow() -> None:
    policy = _policy(_stmt("AllowAll"), _stmt("DenyDecrypt", "Deny", Action="kms:Decrypt"))
    decision = evaluate(policy, _req())
    assert decision == PolicyDecision(
        False, "explicit deny by statement DenyDecrypt", "DenyDecrypt"
    )
    assert evaluate(policy, _req(action="kms:Encrypt")).allowed


def test_implicit_deny_when_nothing_matches() -> None:
    policy = _policy(_stmt("EncryptOnly", Action="kms:Encrypt"))
    decision = evaluate(policy, _req())
    assert decision == PolicyDecision(False, "no statement allows", None)


def test_deny_with_negated_condition_applies_when_key_absent() -> None:
    # "Deny unless dept is hr": requests without the key are denied (negated op on absent = true).
    deny = _stmt(
        "DenyUnlessHr", "Deny", Condition={"StringNotEquals": {"kms:EncryptionContext:dept": "hr"}}
    )
    policy = _policy(_stmt("AllowAll"), deny)
    assert evaluate(policy, _req()).matched_sid == "DenyUnlessHr"
    hr = AuthorizationRequest(
        ALICE, ACCOUNT, "kms:Decrypt", KEY_ARN, {"kms:EncryptionContext:dept": "hr"}
    )
    assert evaluate(policy, hr) == PolicyDecision(True, "allowed by statement AllowAll", "AllowAll")


def test_sidless_statement_named_by_position() -> None:
    unnamed = _stmt("x", "Deny")
    del unnamed["Sid"]
    policy = _policy(_stmt("A", Action="kms:Encrypt"), unnamed)
    assert evaluate(policy, _req()).matched_sid == "#2"


@pytest.mark.parametrize(
    ("principal", "caller", "caller_account", "expected"),
    [
        ("*", ALICE, ACCOUNT, True),
        ({"AWS": "*"}, f"arn:aws:iam::{OTHER}:user/eve", OTHER, True),
        # The account principal delegates to IAM, which this service does not have: it admits
        # the account's root user only, never other identities of the account.
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, ALICE, ACCOUNT, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, f"arn:aws:iam::{OTHER}:user/eve", OTHER, False),
        ({"AWS": f"arn:aws-cn:iam::{ACCOUNT}:root"}, ALICE, ACCOUNT, False),  # other partition
        ({"AWS": ACCOUNT}, ALICE, ACCOUNT, False),
        ({"AWS": ACCOUNT}, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, True),
        ({"AWS": [OTHER, ACCOUNT]}, ALICE, ACCOUNT, False),
        ({"AWS": [OTHER, ACCOUNT]}, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, True),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, f"arn:aws:iam::{OTHER}:root", OTHER, False),
        ({"AWS": OTHER}, ALICE, ACCOUNT, False),
        ({"AWS": ALICE}, ALICE, ACCOUNT, True),
        ({"AWS": ALICE}, f"arn:aws:iam::{ACCOUNT}:user/bob", ACCOUNT, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/Alice"}, ALICE, ACCOUNT, False),
        # A role ARN matches the role's sessions (path ignored: session ARNs carry no path).
        (
            {"AWS": f"arn:aws:iam::{ACCOUNT}:role/team/app"},
            f"arn:aws:sts::{ACCOUNT}:assumed-role/app/i-0abc",
            ACCOUNT,
            True,
        ),
        (
            {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"},
            f"arn:aws:sts::{ACCOUNT}:assumed-role/other/i-0abc",
            ACCOUNT,
            False,
        ),
        (
            {"AWS": f"arn:aws:iam::{OTHER}:role/app"},
            f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s",
            ACCOUNT,
            False,
        ),
        (
            {"AWS": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"},
            f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s2",
            ACCOUNT,
            False,
        ),
        ({"Service": "logs.amazonaws.com"}, ALICE, ACCOUNT, False),
    ],
)
def test_principal_matching(
    principal: object, caller: str, caller_account: str, expected: bool
) -> None:
    policy = _policy(_stmt("P", Principal=principal))
    assert evaluate(policy, _req(principal=caller, account=caller_account)).allowed is expected


@pytest.mark.parametrize(
    ("action", "requested", "expected"),
    [
        ("kms:*", "kms:GenerateDataKey", True),
        ("*", "kms:GenerateDataKey", True),
        ("kms:Generate*", "kms:GenerateDataKeyPair", True),
        ("kms:Generate*", "kms:Decrypt", False),
        ("kms:Decryp?", "kms:Decrypt", True),
        ("kms:Decryp?", "kms:Decrypts", False),
        ("kms:decrypt", "kms:Decrypt", True),  # action names are case-insensitive in IAM
        ("KMS:DECRYPT", "kms:Decrypt", True),
        ("kms:Decrypt", "kms:ReEncryptFrom", False),
        ("s3:*", "kms:Decrypt", False),
        (["kms:Encrypt", "kms:Decrypt"], "kms:Decrypt", True),
    ],
)
def test_action_matching(action: object, requested: str, expected: bool) -> None:
    policy = _policy(_stmt("A", Action=action))
    assert evaluate(policy, _req(action=requested)).allowed is expected


def test_not_action_and_not_resource() -> None:
    policy = _policy(_stmt("A", Action=None, NotAction="kms:ScheduleKeyDeletion"))
    assert evaluate(policy, _req(action="kms:Decrypt")).allowed
    assert not evaluate(policy, _req(action="kms:ScheduleKeyDeletion")).allowed
    policy = _policy(_stmt("R", Resource=None, NotResource="arn:aws:kms:*:*:key/other"))
    assert evaluate(policy, _req()).allowed
    assert not evaluate(policy, _req(resource="arn:aws:kms:us-east-1:1:key/other")).allowed


def test_resource_wildcards_are_case_sensitive() -> None:
    policy = _policy(_stmt("R", Resource=f"arn:aws:kms:*:{ACCOUNT}:key/1234*"))
    assert evaluate(policy, _req()).allowed
    assert not evaluate(policy, _req(resource=KEY_ARN.replace("key/", "KEY/"))).allowed
    assert not evaluate(policy, _req(resource=KEY_ARN.replace(ACCOUNT, OTHER))).allowed


def test_statement_without_action_has_no_effect() -> None:
    policy = _policy(_stmt("NoAction", Action=None), _stmt("NoResource", "Deny", Resource=None))
    assert evaluate(policy, _req()) == PolicyDecision(False, "no statement allows", None)


def test_default_policy_allows_the_account_root_only() -> None:
    policy = KeyPolicy.parse(default_key_policy(ACCOUNT))
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert evaluate(policy, _req(principal=root, action="kms:PutKeyPolicy")).allowed
    assert not evaluate(policy, _req(action="kms:PutKeyPolicy")).allowed  # alice: not named
    assert not evaluate(policy, _req(principal=f"arn:aws:iam::{OTHER}:root", account=OTHER)).allowed


def test_authorize_returns_allow_decision() -> None:
    decision = authorize(_policy(_stmt("AllowAll")), _req())
    assert decision == PolicyDecision(True, "allowed by statement AllowAll", "AllowAll")


def test_authorize_implicit_deny_message_is_aws_generic() -> None:
    policy = _policy(
        _stmt("Cond", Condition={"StringEquals": {"kms:EncryptionContext:dept": "hr"}})
    )
    with pytest.raises(AccessDeniedException) as info:
        authorize(policy, _req(action="kms:GenerateDataKey"))
    error = info.value
    assert isinstance(error, KeyPolicyAccessDenied)
    assert error.aws_type == "AccessDeniedException"
    assert error.http_status == 400
    assert error.message == (
        f"User: {ALICE} is not authorized to perform: kms:GenerateDataKey on resource: "
        f"{KEY_ARN} because no resource-based policy allows the kms:GenerateDataKey action"
    )
    assert error.decision.matched_sid is None
    assert "StringEquals on kms:EncryptionContext:dept" in error.decision.reason
    assert "dept" not in error.message and "dept" not in repr(error)


def test_authorize_explicit_deny_message() -> None:
    policy = _policy(_stmt("AllowAll"), _stmt("NoDecrypt", "Deny", Action="kms:Decrypt"))
    with pytest.raises(KeyPolicyAccessDenied) as info:
        authorize(policy, _req())
    assert info.value.message.endswith("with an explicit deny in a resource-based policy")
    assert "NoDecrypt" not in info.value.message
    assert info.value.decision.matched_sid == "NoDecrypt"


def test_account_principal_needs_a_consistent_caller_account() -> None:
    # The ARN names another account than account_id: account principals fail closed.
    policy = KeyPolicy.parse(default_key_policy(ACCOUNT))
    inconsistent = _req(principal=f"arn:aws:iam::{OTHER}:user/eve", account=ACCOUNT)
    assert not evaluate(policy, inconsistent).allowed


def test_lockout_safety_check() -> None:
    policy = _policy(_stmt("DecryptOnly", Action="kms:Decrypt"))
    with pytest.raises(MalformedPolicyDocumentException, match="will not allow you to update"):
        check_lockout_safety(policy, _req(action="kms:CreateKey"))
    admin = KeyPolicy.parse(default_key_policy(ACCOUNT))
    with pytest.raises(MalformedPolicyDocumentException, match="will not allow you to update"):
        check_lockout_safety(admin, _req(action="kms:CreateKey"))  # alice is not the root user
    root = f"arn:aws:iam::{ACCOUNT}:root"
    decision = check_lockout_safety(admin, _req(principal=root, action="kms:CreateKey"))
    assert decision.matched_sid == "Enable IAM User Permissions"
