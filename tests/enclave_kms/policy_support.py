"""One-statement key policies for the condition-operator tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from enclave_kms.policy import AuthorizationRequest, KeyPolicy, evaluate

ACCOUNT = "111122223333"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
Context = Mapping[str, str | Sequence[str] | bool]


def condition_policy(condition: Mapping[str, object], effect: str = "Allow") -> KeyPolicy:
    """A policy whose one statement lets anyone Decrypt under ``condition``."""
    statement = {
        "Sid": "Cond",
        "Effect": effect,
        "Principal": {"AWS": "*"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": condition,
    }
    return KeyPolicy.parse(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


def allowed(condition: Mapping[str, object], context: Context, effect: str = "Allow") -> bool:
    """Whether that policy allows a Decrypt by a user of the account with ``context``."""
    request = AuthorizationRequest(
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        account_id=ACCOUNT,
        action="kms:Decrypt",
        resource_arn=KEY_ARN,
        context=context,
    )
    return evaluate(condition_policy(condition, effect), request).allowed
