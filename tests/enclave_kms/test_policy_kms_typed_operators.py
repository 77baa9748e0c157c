"""Numeric*, Date* and Arn* condition operators (IAM semantics), and the time keys KMS offers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest
from policy_support import Context, allowed, condition_policy
from signing_support import app, policy
from test_service_support import APP_CALLER, new_key
from test_service_support import PinnedClock as PinnedClock
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import AccessDeniedException, MalformedPolicyDocumentException
from enclave_kms.model import GenerateDataKeyRequest
from enclave_kms.policy import KeyPolicy
from enclave_kms.service import KmsService

ACCOUNT = "111122223333"


def _parse(condition: Mapping[str, object]) -> KeyPolicy:
    return condition_policy(condition)


_allowed = allowed


N = "test:Count"


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("NumericEquals", "10", {N: "10"}, True),
        ("NumericEquals", "10", {N: "10.0"}, True),  # numbers, not text
        ("NumericEquals", "0.1", {N: "0.10"}, True),  # decimal, no binary rounding
        ("NumericEquals", ["5", "10"], {N: "5"}, True),  # values ORed
        ("NumericNotEquals", ["5", "10"], {N: "5"}, False),  # negated: NORed
        ("NumericNotEquals", ["5", "10"], {N: "7"}, True),
        ("NumericLessThan", "10", {N: "9"}, True),  # request value < policy value
        ("NumericLessThan", "10", {N: "10"}, False),
        ("NumericLessThanEquals", "10", {N: "10"}, True),
        ("NumericGreaterThan", "10", {N: "11"}, True),
        ("NumericGreaterThan", "10", {N: "-11"}, False),
        ("NumericGreaterThanEquals", "10", {N: "10"}, True),
        ("NumericLessThan", 10, {N: "9"}, True),  # a JSON number as the policy value
        ("NumericLessThan", "10", {N: "nine"}, False),  # not a number: no match
        ("NumericNotEquals", "10", {N: "nine"}, True),
        ("NumericLessThan", "10", {}, False),  # absent key
        ("NumericLessThanIfExists", "10", {}, True),
        ("ForAllValues:NumericLessThan", "10", {N: ["1", "2"]}, True),
        ("ForAllValues:NumericLessThan", "10", {N: ["1", "20"]}, False),
        ("ForAnyValue:NumericLessThan", "10", {N: ["1", "20"]}, True),
    ],
)
def test_numeric_operators(operator: str, values: object, context: Context, expected: bool) -> None:
    assert _allowed({operator: {N: values}}, context) is expected


T = "aws:CurrentTime"
E = "aws:EpochTime"


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("DateLessThan", "2027-01-01T00:00:00Z", {T: "2026-11-24T10:00:00Z"}, True),
        ("DateLessThan", "2027-01-01T00:00:00Z", {T: "2027-01-01T00:00:00Z"}, False),
        ("DateLessThanEquals", "2027-01-01T00:00:00Z", {T: "2027-01-01T00:00:00Z"}, True),
        ("DateGreaterThan", "2026-01-01", {T: "2026-11-24T10:00:00Z"}, True),  # a date alone
        ("DateGreaterThan", "2026-11-24T11:00:00+02:00", {T: "2026-11-24T10:00:00Z"}, True),
        ("DateEquals", "2026-11-24T10:00:00Z", {T: "2026-11-24T10:00:00+00:00"}, True),
        ("DateNotEquals", "2026-11-24T10:00:00Z", {T: "2026-11-24T10:00:01Z"}, True),
        ("DateGreaterThanEquals", "1795514400", {E: "1795514400"}, True),  # epoch seconds
        ("DateLessThan", "2026-11-24T10:00:00Z", {E: "1795514399"}, True),  # mixed forms
        ("DateLessThan", "2027-01-01T00:00:00Z", {T: "soon"}, False),  # not a date
        ("DateLessThan", "2027-01-01T00:00:00Z", {}, False),
        ("DateLessThanIfExists", "2027-01-01T00:00:00Z", {}, True),
    ],
)
def test_date_operators(operator: str, values: object, context: Context, expected: bool) -> None:
    key = next(iter(context), T)
    assert _allowed({operator: {key: values}}, context) is expected


P = "aws:PrincipalArn"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/EnclaveApp"


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("ArnEquals", ROLE, {P: ROLE}, True),
        ("ArnLike", f"arn:aws:iam::{ACCOUNT}:role/Enclave*", {P: ROLE}, True),
        ("ArnEquals", f"arn:aws:iam::{ACCOUNT}:role/Enclave*", {P: ROLE}, True),  # as ArnLike
        ("ArnLike", "arn:aws:iam::*:role/EnclaveApp", {P: ROLE}, True),
        ("ArnLike", f"arn:aws:iam::{ACCOUNT}:user/Enclave*", {P: ROLE}, False),
        ("ArnLike", f"arn:aws:iam::{ACCOUNT}:role/enclave*", {P: ROLE}, False),  # case
        # A wildcard stays inside its component: "*" cannot stand for "iam::<account>".
        ("ArnLike", "arn:aws:*:role/EnclaveApp", {P: ROLE}, False),
        ("ArnLike", "*", {P: ROLE}, False),  # not six components: matches nothing
        ("ArnLike", f"arn:aws:iam::{ACCOUNT}:*", {P: ROLE}, True),  # resource keeps colons
        ("ArnLike", f"arn:aws:iam::{ACCOUNT}:role/*", {P: "not-an-arn"}, False),
        ("ArnNotLike", f"arn:aws:iam::{ACCOUNT}:role/Enclave*", {P: ROLE}, False),
        ("ArnNotEquals", f"arn:aws:iam::{ACCOUNT}:role/Other", {P: ROLE}, True),
        ("ArnLike", f"arn:aws:iam::{ACCOUNT}:role/*", {}, False),
        ("ArnNotLike", f"arn:aws:iam::{ACCOUNT}:role/*", {}, True),
    ],
)
def test_arn_operators(operator: str, values: object, context: Context, expected: bool) -> None:
    assert _allowed({operator: {P: values}}, context) is expected


def test_arn_resource_component_may_hold_colons() -> None:
    arn = "arn:aws:kms:us-east-1:111122223333:alias/app:blue"
    assert _allowed({"ArnLike": {P: "arn:aws:kms:us-east-1:111122223333:alias/*"}}, {P: arn})


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("NumericLessThan", "ten"),
        ("NumericEquals", "1e3"),  # IAM numbers have no exponent
        ("NumericEquals", "NaN"),
        ("DateLessThan", "next tuesday"),
        ("DateGreaterThan", True),
    ],
)
def test_a_policy_value_of_the_wrong_type_is_malformed(operator: str, value: object) -> None:
    with pytest.raises(MalformedPolicyDocumentException, match="needs a"):
        _parse({operator: {"aws:CurrentTime": value}})


# --- through the service: aws:CurrentTime, aws:EpochTime and aws:PrincipalArn ---------------


def _gdk(service: KmsService, key_id: str) -> None:
    service.generate_data_key(APP_CALLER, GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256"))


def test_access_until_a_date_follows_the_service_clock(
    service: KmsService, clock: PinnedClock
) -> None:
    deadline = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = new_key(
        service,
        policy=policy(app("kms:GenerateDataKey", {"DateLessThan": {"aws:CurrentTime": deadline}})),
    )
    _gdk(service, key)
    clock.advance(hours=1)
    with pytest.raises(AccessDeniedException):
        _gdk(service, key)


def test_epoch_time_is_offered_in_seconds(service: KmsService, clock: PinnedClock) -> None:
    start = int(clock.now.timestamp()) + 60
    key = new_key(
        service,
        policy=policy(
            app("kms:GenerateDataKey", {"DateGreaterThanEquals": {"aws:EpochTime": str(start)}})
        ),
    )
    with pytest.raises(AccessDeniedException):
        _gdk(service, key)
    clock.advance(seconds=60)
    _gdk(service, key)


def test_arn_like_on_the_caller(service: KmsService) -> None:
    role = APP_CALLER.principal_arn.rsplit("/", 1)[0]
    allowed = new_key(
        service,
        policy=policy(app("kms:GenerateDataKey", {"ArnLike": {"aws:PrincipalArn": role + "/*"}})),
    )
    _gdk(service, allowed)
    refused = new_key(
        service,
        policy=policy(
            app("kms:GenerateDataKey", {"ArnLike": {"aws:PrincipalArn": role + "/other-*"}})
        ),
    )
    with pytest.raises(AccessDeniedException):
        _gdk(service, refused)
