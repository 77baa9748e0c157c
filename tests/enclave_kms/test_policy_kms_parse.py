"""KeyPolicy.parse: valid documents round-trip, each malformed case names its problem."""

from __future__ import annotations

import json

import pytest

from enclave_kms.errors import LimitExceededException, MalformedPolicyDocumentException
from enclave_kms.policy import MAX_POLICY_BYTES, KeyPolicy, default_key_policy

ACCOUNT = "111122223333"


def _doc(*statements: dict[str, object], **top: object) -> str:
    document: dict[str, object] = {"Version": "2012-10-17", **top}
    document["Statement"] = list(statements)
    return json.dumps(document)


def _stmt(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "Sid": "S",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def _malformed(text: str) -> str:
    with pytest.raises(MalformedPolicyDocumentException) as info:
        KeyPolicy.parse(text)
    return info.value.message


def test_default_policy_is_aws_layout_and_parses() -> None:
    text = default_key_policy(ACCOUNT)
    document = json.loads(text)
    assert document == {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    policy = KeyPolicy.parse(text)
    assert policy.version == "2012-10-17"
    assert policy.policy_id == "key-default-1"
    assert [s.sid for s in policy.statements] == ["Enable IAM User Permissions"]


def test_default_policy_rejects_bad_account() -> None:
    with pytest.raises(ValueError, match="12 digits"):
        default_key_policy("1234")
    assert "arn:aws-cn:iam::" in default_key_policy(ACCOUNT, partition="aws-cn")


def test_to_json_returns_the_exact_text_put() -> None:
    text = (
        '{ "Statement" :{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt",\n"Resource":"*"}}'
    )
    policy = KeyPolicy.parse(text)
    assert policy.to_json() == text
    assert policy.version is None  # absent Version is allowed (AWS defaults to 2008-10-17)
    assert len(policy.statements) == 1  # a single statement object is accepted


def test_old_version_accepted() -> None:
    assert KeyPolicy.parse(_doc(_stmt(), Version="2008-10-17")).version == "2008-10-17"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "not valid JSON"),
        ("", "empty"),
        ("[]", "must be a JSON object"),
        (_doc(_stmt(), Version="2020-01-01"), "unsupported Version"),
        (_doc(_stmt(), Extra=1), "unknown element: 'Extra'"),
        (json.dumps({"Version": "2012-10-17"}), "missing the Statement"),
        (_doc(), "at least one statement"),
        (_doc(_stmt(Effect=None)), "missing the Effect"),
        (_doc(_stmt(Effect="allow")), "invalid Effect 'allow'"),
        (_doc(_stmt(Principal=None)), "missing the Principal"),
        (_doc(_stmt(Principal={"AWS": "arn:aws:iam::*:root"})), "invalid principals"),
        (_doc(_stmt(Principal={"AWS": "alice"})), "invalid principals"),
        (_doc(_stmt(Principal={"Federated": "cognito"})), "invalid principals"),
        (_doc(_stmt(Principal="someone")), "invalid principals"),
        (_doc(_stmt(NotPrincipal={"AWS": "*"})), "NotPrincipal"),
        (_doc(_stmt(NotAction="kms:Decrypt")), "both Action and NotAction"),
        (_doc(_stmt(NotResource="*")), "both Resource and NotResource"),
        (_doc(_stmt(Action="Decrypt")), "invalid action: 'Decrypt'"),
        (_doc(_stmt(Action=[])), "Action must be a non-empty"),
        (_doc(_stmt(Action=["kms:Decrypt", 5])), "Action must be a non-empty"),
        (_doc(_stmt(Resource="key/*")), "invalid Resource"),
        (_doc(_stmt(Sid=7)), "Sid that is not a string"),
        (_doc(_stmt(Actions="kms:*")), "unknown element: 'Actions'"),
        (_doc(_stmt(Condition={"StringEqualz": {"kms:CallerAccount": "1"}})), "StringEqualz"),
        # IAM defines BinaryEquals but no negated binary operator.
        (_doc(_stmt(Condition={"BinaryNotEquals": {"a:b": "QUJD"}})), "unsupported"),
        (_doc(_stmt(Condition={"ForSomeValues:StringLike": {"a:b": "x"}})), "ForSomeValues"),
        (_doc(_stmt(Condition={"NullIfExists": {"a:b": "true"}})), "NullIfExists"),
        (_doc(_stmt(Condition={"Bool": {"a:b": "yes"}})), "true or false"),
        (_doc(_stmt(Condition={"StringEquals": {"a:b": []}})), "has no values"),
        (_doc(_stmt(Condition={"StringEquals": {"a:b": {"x": 1}}})), "not a string"),
        (_doc(_stmt(Condition={"StringEquals": "x"})), "must map condition keys"),
        (_doc(_stmt(Condition=[])), "Condition element"),
        (
            _doc(_stmt(Condition={"StringEquals": {"aws:PrincipalArn": "${aws:username}"}})),
            "policy variable",
        ),
        ('{"Statement": [], "Statement": []}', "more than once"),
        ('{"Statement": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ('{"Statement": [{"Sid": "caf\u00e9 \u2603"}]}', "character outside"),
    ],
)
def test_malformed_documents_name_the_problem(text: str, needle: str) -> None:
    message = _malformed(text)
    assert needle in message


def test_statement_is_named_by_sid_in_messages() -> None:
    assert "Statement 'Admin'" in _malformed(_doc(_stmt(Sid="Admin", Effect="Maybe")))
    assert "Statement #2" in _malformed(_doc(_stmt(), _stmt(Sid=None, Effect=None)))


def test_policy_variables_are_literal_in_2008_version() -> None:
    cond = {"StringEquals": {"aws:PrincipalArn": "${aws:username}"}}
    KeyPolicy.parse(_doc(_stmt(Condition=cond), Version="2008-10-17"))


def test_size_limit_is_32768_bytes() -> None:
    base = _doc(_stmt(Sid=""))
    pad = MAX_POLICY_BYTES - len(base.encode())
    at_limit = base.replace('"Sid": ""', '"Sid": "' + "x" * pad + '"')
    assert len(at_limit.encode()) == MAX_POLICY_BYTES
    KeyPolicy.parse(at_limit)
    over = base.replace('"Sid": ""', '"Sid": "' + "x" * (pad + 1) + '"')
    with pytest.raises(LimitExceededException, match="32768 bytes"):
        KeyPolicy.parse(over)


def test_latin1_counts_two_bytes_towards_the_limit() -> None:
    base = _doc(_stmt(Sid=""))
    pad = (MAX_POLICY_BYTES - len(base.encode())) // 2 + 1
    text = base.replace('"Sid": ""', '"Sid": "' + "\u00e9" * pad + '"')
    assert len(text) <= MAX_POLICY_BYTES < len(text.encode())
    with pytest.raises(LimitExceededException):
        KeyPolicy.parse(text)


def test_statement_without_action_or_resource_is_accepted() -> None:
    # KMS PutKeyPolicy documents that such a statement is accepted and has no effect.
    policy = KeyPolicy.parse(_doc(_stmt(Action=None), _stmt(Sid="T", Resource=None)))
    assert len(policy.statements) == 2


def test_service_principal_accepted_and_operators_case_insensitive() -> None:
    policy = KeyPolicy.parse(
        _doc(
            _stmt(
                Principal={"Service": ["logs.amazonaws.com"], "AWS": ACCOUNT},
                Condition={
                    "forAnyValue:stringlikeIfExists": {"kms:EncryptionContextKeys": "a*"},
                    "Bool": {"kms:GrantIsForAWSResource": True},
                    "StringEquals": {"kms:CallerAccount": 111122223333},
                },
            )
        )
    )
    operators = [t.operator for t in policy.statements[0].conditions]
    assert operators == ["ForAnyValue:StringLikeIfExists", "Bool", "StringEquals"]
    assert policy.statements[0].conditions[2].values == ("111122223333",)


def test_parse_is_frozen() -> None:
    policy = KeyPolicy.parse(default_key_policy(ACCOUNT))
    with pytest.raises(AttributeError):
        policy.text = "{}"  # type: ignore[misc]
