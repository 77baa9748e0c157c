"""Key id / ARN / alias parsing and the forms each operation accepts."""

from __future__ import annotations

import pytest

from enclave_kms._keyids import KeyRef, alias_arn, check_alias_name, key_arn, parse_key_id
from enclave_kms.errors import InvalidAliasNameException, InvalidArnException, NotFoundException

UUID = "1234abcd-12ab-34cd-56ef-1234567890ab"
R, A = "eu-west-1", "111122223333"


def parse(text: str, allow_alias: bool = True) -> KeyRef:
    return parse_key_id(text, region=R, account_id=A, allow_alias=allow_alias)


def test_arn_builders() -> None:
    assert key_arn(R, A, UUID) == f"arn:aws:kms:{R}:{A}:key/{UUID}"
    assert alias_arn(R, A, "alias/x") == f"arn:aws:kms:{R}:{A}:alias/x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (UUID, KeyRef("key", UUID)),
        (f"arn:aws:kms:{R}:{A}:key/{UUID}", KeyRef("key", UUID)),
        ("alias/app/prod", KeyRef("alias", "alias/app/prod")),
        (f"arn:aws:kms:{R}:{A}:alias/app", KeyRef("alias", "alias/app")),
    ],
)
def test_all_four_forms_parse_where_aliases_are_allowed(text: str, expected: KeyRef) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["alias/app", f"arn:aws:kms:{R}:{A}:alias/app"])
def test_alias_forms_are_not_found_where_aliases_are_not_accepted(text: str) -> None:
    with pytest.raises(NotFoundException, match="Invalid keyId"):
        parse(text, allow_alias=False)


@pytest.mark.parametrize(
    "text", ["arn:aws:kms:eu-west-1:1111:key/x", "arn:aws:s3:::bucket", "arn:nonsense"]
)
def test_malformed_arns_are_invalid_arn(text: str) -> None:
    with pytest.raises(InvalidArnException):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        f"arn:aws:kms:us-east-1:{A}:key/{UUID}",  # another region
        f"arn:aws:kms:{R}:999999999999:key/{UUID}",  # another account
        "not-a-key",
        UUID.upper(),
        f"arn:aws:kms:{R}:{A}:key/not-a-uuid",
    ],
)
def test_other_references_are_not_found(text: str) -> None:
    with pytest.raises(NotFoundException):
        parse(text)


def test_alias_name_rules() -> None:
    check_alias_name("alias/ok_name-1/x", creating=True)
    with pytest.raises(InvalidAliasNameException, match="prefix"):
        check_alias_name("app", creating=True)
    with pytest.raises(InvalidAliasNameException, match="characters"):
        check_alias_name("alias/bad name", creating=True)
    with pytest.raises(InvalidAliasNameException, match="alias/aws/"):
        check_alias_name("alias/aws/s3", creating=True)
    # the reserved prefix only blocks creation
    check_alias_name("alias/aws/s3", creating=False)
