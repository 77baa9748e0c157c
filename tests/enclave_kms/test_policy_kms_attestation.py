"""Attestation condition keys, the AWS Nitro example policy, and a property test of authorize()."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_kms.errors import AccessDeniedException
from enclave_kms.policy import (
    AuthorizationRequest,
    KeyPolicy,
    KeyPolicyAccessDenied,
    attestation_condition_keys,
    authorize,
    default_key_policy,
    evaluate,
)

ACCOUNT = "111122223333"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# An EC2 instance role session: the parent instance calls KMS with the enclave's document.
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/data-processing/i-020b6af9246d90e92"


@pytest.fixture(scope="module")
def pcrs(fixtures_dir: Path) -> dict[int, bytes]:
    """The non-zero PCRs of a genuine production-mode Nitro attestation document."""
    sidecar = json.loads((fixtures_dir / "nitro" / "evervault-beta-valid.json").read_text())
    return {int(i): bytes.fromhex(value) for i, value in sidecar["nonzero_pcrs"].items()}


def _nitro_example_policy(
    pcrs: Mapping[int, bytes], operator: str = "StringEqualsIgnoreCase"
) -> KeyPolicy:
    # The shape of the KMS Developer Guide's Nitro Enclaves example; the policy values are written
    # in upper case to show that StringEqualsIgnoreCase (what AWS's examples use) ignores case.
    statement = {
        "Sid": "Enable enclave data processing",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/data-processing"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {
            operator: {
                "kms:RecipientAttestation:ImageSha384": pcrs[0].hex().upper(),
                "kms:RecipientAttestation:PCR1": pcrs[1].hex().upper(),
                "kms:RecipientAttestation:PCR2": pcrs[2].hex().upper(),
            }
        },
    }
    admin = json.loads(default_key_policy(ACCOUNT))["Statement"][0]
    admin["Action"] = ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:Get*"]
    return KeyPolicy.parse(json.dumps({"Version": "2012-10-17", "Statement": [admin, statement]}))


def _decrypt(context: Mapping[str, str | Sequence[str] | bool]) -> AuthorizationRequest:
    return AuthorizationRequest(SESSION, ACCOUNT, "kms:Decrypt", KEY_ARN, context)


def test_condition_keys_are_lowercase_hex(pcrs: dict[int, bytes]) -> None:
    keys = attestation_condition_keys(pcrs)
    assert set(keys) == {f"kms:RecipientAttestation:PCR{i}" for i in pcrs} | {
        "kms:RecipientAttestation:ImageSha384"
    }
    for value in keys.values():
        assert len(value) == 96
        assert value == value.lower()
        assert bytes.fromhex(value) in pcrs.values()
    assert keys["kms:RecipientAttestation:ImageSha384"] == pcrs[0].hex()
    assert keys["kms:RecipientAttestation:PCR8"] == pcrs[8].hex()


def test_condition_keys_without_pcr0_have_no_image_digest() -> None:
    assert attestation_condition_keys({4: b"\xab" * 48}) == {
        "kms:RecipientAttestation:PCR4": "ab" * 48
    }


@pytest.mark.parametrize("bad", [{32: b"\x00" * 48}, {-1: b"\x00" * 48}, {1: b""}])
def test_condition_keys_reject_bad_pcrs(bad: dict[int, bytes]) -> None:
    with pytest.raises(ValueError, match="PCR"):
        attestation_condition_keys(bad)


def test_nitro_example_allows_matching_document(pcrs: dict[int, bytes]) -> None:
    decision = authorize(_nitro_example_policy(pcrs), _decrypt(attestation_condition_keys(pcrs)))
    assert decision.allowed
    assert decision.matched_sid == "Enable enclave data processing"


def test_nitro_example_denies_mismatching_pcr(pcrs: dict[int, bytes]) -> None:
    tampered = dict(pcrs)
    tampered[1] = bytes([pcrs[1][0] ^ 1]) + pcrs[1][1:]
    with pytest.raises(KeyPolicyAccessDenied) as info:
        authorize(_nitro_example_policy(pcrs), _decrypt(attestation_condition_keys(tampered)))
    reason = info.value.decision.reason
    assert "StringEqualsIgnoreCase on kms:RecipientAttestation:PCR1 not satisfied" in reason
    assert "Enable enclave data processing" in reason
    # The client sees AWS's generic text only.
    assert "PCR" not in info.value.message
    assert "Attestation" not in info.value.message
    assert info.value.message.endswith(
        "because no resource-based policy allows the kms:Decrypt action"
    )


def test_nitro_example_denies_without_attestation(pcrs: dict[int, bytes]) -> None:
    # No Recipient: the keys are absent, so the String condition is false (KMS documents this).
    decision = evaluate(_nitro_example_policy(pcrs), _decrypt({}))
    assert not decision.allowed
    assert "kms:RecipientAttestation:ImageSha384 not satisfied" in decision.reason


def test_nitro_example_other_role_denied(pcrs: dict[int, bytes]) -> None:
    other = f"arn:aws:sts::{ACCOUNT}:assumed-role/web/i-1"
    request = AuthorizationRequest(
        other, ACCOUNT, "kms:Decrypt", KEY_ARN, attestation_condition_keys(pcrs)
    )
    assert not evaluate(_nitro_example_policy(pcrs), request).allowed


def test_string_equals_is_case_sensitive_for_pcrs(pcrs: dict[int, bytes]) -> None:
    # The policy holds upper-case hex; the request side is lower-case, so StringEquals fails.
    policy = _nitro_example_policy(pcrs, operator="StringEquals")
    assert not evaluate(policy, _decrypt(attestation_condition_keys(pcrs))).allowed


_POLICIES = [
    KeyPolicy.parse(default_key_policy(ACCOUNT)),
    KeyPolicy.parse(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "Mixed",
                        "Effect": "Allow",
                        "Principal": {"AWS": ["*", ACCOUNT]},
                        "Action": ["kms:Gen*", "kms:Decrypt"],
                        "Resource": "*",
                        "Condition": {
                            "StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "ab" * 48},
                            "ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["a*", "?"]},
                            "ForAnyValue:StringNotEquals": {"kms:EncryptionContext:x": "y"},
                            "BoolIfExists": {"aws:SecureTransport": "true"},
                            "Null": {"kms:ViaService": "true"},
                            "StringNotLikeIfExists": {"aws:PrincipalArn": "*:root"},
                        },
                    },
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "NotAction": "kms:Describe*",
                        "NotResource": "arn:aws:kms:*:*:key/?",
                        "Condition": {"StringNotEqualsIgnoreCase": {"kms:CallerAccount": ACCOUNT}},
                    },
                ],
            }
        )
    ),
]

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
_keys = st.one_of(
    _text,
    st.sampled_from(
        [
            "kms:RecipientAttestation:PCR0",
            "KMS:recipientattestation:pcr0",
            "kms:EncryptionContextKeys",
            "kms:EncryptionContext:x",
            "kms:CallerAccount",
            "aws:SecureTransport",
            "kms:ViaService",
            "aws:PrincipalArn",
        ]
    ),
)
_values = st.one_of(_text, st.booleans(), st.lists(_text, max_size=4), st.just("ab" * 48))


@settings(max_examples=200, deadline=None)
@given(
    policy=st.sampled_from(_POLICIES),
    principal=st.one_of(_text, st.sampled_from([SESSION, f"arn:aws:iam::{ACCOUNT}:root"])),
    account=st.one_of(_text, st.just(ACCOUNT)),
    action=st.one_of(_text, st.sampled_from(["kms:Decrypt", "kms:GenerateDataKey"])),
    resource=st.one_of(_text, st.just(KEY_ARN)),
    context=st.dictionaries(_keys, _values, max_size=6),
)
def test_authorize_only_ever_raises_access_denied(
    policy: KeyPolicy,
    principal: str,
    account: str,
    action: str,
    resource: str,
    context: dict[str, str | Sequence[str] | bool],
) -> None:
    request = AuthorizationRequest(principal, account, action, resource, context)
    try:
        decision = authorize(policy, request)
    except AccessDeniedException as error:
        assert isinstance(error, KeyPolicyAccessDenied)
        assert not error.decision.allowed
        assert error.decision == evaluate(policy, request)
    else:
        assert decision.allowed
        assert decision.matched_sid is not None


@settings(max_examples=200, deadline=None)
@given(
    operator=st.sampled_from(["StringEquals", "StringEqualsIgnoreCase", "StringLike"]),
    policy_values=st.lists(_text, min_size=1, max_size=3),
    request_value=st.one_of(st.none(), _text, st.lists(_text, min_size=1, max_size=3)),
)
def test_negated_operator_is_the_complement_when_key_present(
    operator: str, policy_values: list[str], request_value: str | list[str] | None
) -> None:
    negated = operator.replace("String", "StringNot", 1)

    def allowed(op: str) -> bool:
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {op: {"kms:EncryptionContext:k": policy_values}},
        }
        policy = KeyPolicy.parse(json.dumps({"Statement": statement}))
        context = {} if request_value is None else {"kms:EncryptionContext:k": request_value}
        return evaluate(policy, _decrypt(context)).allowed

    if request_value is None:
        # IAM: absent key -> positive operator false, negated operator true.
        assert (allowed(operator), allowed(negated)) == (False, True)
    else:
        assert allowed(negated) is not allowed(operator)
