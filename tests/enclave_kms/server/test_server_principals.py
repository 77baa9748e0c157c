"""Principals from the credentials file, and what key policies see of them."""

from __future__ import annotations

import json

import pytest

from enclave_kms.errors import ValidationException
from enclave_kms.policy import AuthorizationRequest, KeyPolicy, evaluate
from enclave_kms.server._credentials import principal_arn

ACCOUNT = "111122223333"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("root", f"arn:aws:iam::{ACCOUNT}:root"),
        ("user/alice", f"arn:aws:iam::{ACCOUNT}:user/alice"),
        ("role/team/app", f"arn:aws:iam::{ACCOUNT}:role/team/app"),
        (f"arn:aws:iam::{ACCOUNT}:role/team/app", f"arn:aws:iam::{ACCOUNT}:role/team/app"),
    ],
)
def test_principals_name_iam_identities_with_their_paths(given: str, expected: str) -> None:
    assert principal_arn(given, ACCOUNT) == expected


def test_an_sts_session_arn_is_refused() -> None:
    # A session ARN drops the role's path, so a Deny on aws:PrincipalArn could not match it.
    with pytest.raises(ValidationException, match="not an STS session"):
        principal_arn(f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1", ACCOUNT)


def test_a_deny_on_a_role_with_a_path_applies_to_that_role() -> None:
    bad = principal_arn("role/team/bad", ACCOUNT)
    policy = KeyPolicy.parse(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*",
                     "Resource": "*"},
                    {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*",
                     "Resource": "*",
                     "Condition": {"StringEquals": {"aws:PrincipalArn": bad}}},
                ],
            }
        )
    )  # fmt: skip
    request = AuthorizationRequest(
        principal_arn=bad,
        account_id=ACCOUNT,
        action="kms:Decrypt",
        resource_arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k",
        context={},
    )
    assert not evaluate(policy, request).allowed
