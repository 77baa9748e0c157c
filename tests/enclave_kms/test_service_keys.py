"""Key lifecycle, states, aliases, tags, policies and pagination through the service methods."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_service_support import (
    ACCOUNT,
    APP_CALLER,
    REGION,
    ROOT_CALLER,
    STRANGER,
    PinnedClock,
    make_service,
    new_key,
)
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import (
    AccessDeniedException,
    AlreadyExistsException,
    DisabledException,
    InvalidAliasNameException,
    InvalidArnException,
    InvalidMarkerException,
    KMSInvalidStateException,
    MalformedPolicyDocumentException,
    NotFoundException,
    TagException,
    UnsupportedOperationException,
    ValidationException,
)
from enclave_kms.model import (
    Caller,
    CancelKeyDeletionRequest,
    CreateAliasRequest,
    CreateKeyRequest,
    DeleteAliasRequest,
    DescribeKeyRequest,
    DisableKeyRequest,
    EnableKeyRequest,
    EncryptRequest,
    GenerateDataKeyRequest,
    GetKeyPolicyRequest,
    ListAliasesRequest,
    ListKeyPoliciesRequest,
    ListKeysRequest,
    ListResourceTagsRequest,
    PutKeyPolicyRequest,
    ScheduleKeyDeletionRequest,
    Tag,
    TagResourceRequest,
    UntagResourceRequest,
    UpdateAliasRequest,
    UpdateKeyDescriptionRequest,
)
from enclave_kms.service import KmsService


def arn(key_id: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"


def gdk(service: KmsService, key_id: str) -> object:
    return service.generate_data_key(
        ROOT_CALLER, GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256")
    )


def test_describe_key_metadata_is_aws_shaped(service: KmsService, clock: PinnedClock) -> None:
    kid = new_key(service, description="orders")
    meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=kid)).key_metadata
    assert meta is not None
    assert (meta.aws_account_id, meta.arn, meta.creation_date) == (ACCOUNT, arn(kid), clock.now)
    assert (meta.enabled, meta.key_state, meta.description) == (True, "Enabled", "orders")
    assert (meta.key_usage, meta.key_spec, meta.customer_master_key_spec) == (
        "ENCRYPT_DECRYPT",
        "SYMMETRIC_DEFAULT",
        "SYMMETRIC_DEFAULT",
    )
    assert (meta.origin, meta.key_manager, meta.multi_region) == ("AWS_KMS", "CUSTOMER", False)
    assert meta.encryption_algorithms == ("SYMMETRIC_DEFAULT",)
    assert meta.deletion_date is None and meta.pending_deletion_window_in_days is None


def test_key_id_forms(service: KmsService) -> None:
    kid = new_key(service)
    service.create_alias(ROOT_CALLER, CreateAliasRequest(alias_name="alias/app", target_key_id=kid))
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"
    for form in (kid, arn(kid), "alias/app", alias_arn):
        meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=form)).key_metadata
        assert meta is not None and meta.key_id == kid
    # Key-management operations take only a key id or key ARN.
    for form in ("alias/app", alias_arn):
        with pytest.raises(NotFoundException):
            service.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=form))
    with pytest.raises(InvalidArnException):
        service.enable_key(ROOT_CALLER, EnableKeyRequest(key_id="arn:aws:kms:bad"))
    with pytest.raises(NotFoundException, match="does not exist"):
        service.describe_key(
            ROOT_CALLER, DescribeKeyRequest(key_id="00000000-0000-4000-8000-000000000000")
        )
    with pytest.raises(NotFoundException, match="is not found"):
        service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id="alias/missing"))


def test_disabled_key_refuses_crypto_but_not_management(service: KmsService) -> None:
    kid = new_key(service)
    service.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=kid))
    with pytest.raises(DisabledException, match="is disabled"):
        gdk(service, kid)
    with pytest.raises(DisabledException):
        service.encrypt(ROOT_CALLER, EncryptRequest(key_id=kid, plaintext=b"x"))
    service.update_key_description(
        ROOT_CALLER, UpdateKeyDescriptionRequest(key_id=kid, description="still manageable")
    )
    service.enable_key(ROOT_CALLER, EnableKeyRequest(key_id=kid))
    gdk(service, kid)


def test_schedule_cancel_and_lazy_deletion(service: KmsService, clock: PinnedClock) -> None:
    kid = new_key(service)
    with pytest.raises(ValidationException, match="pendingWindowInDays"):
        service.schedule_key_deletion(
            ROOT_CALLER, ScheduleKeyDeletionRequest(key_id=kid, pending_window_in_days=6)
        )
    resp = service.schedule_key_deletion(ROOT_CALLER, ScheduleKeyDeletionRequest(key_id=kid))
    assert resp.pending_window_in_days == 30
    assert resp.key_state == "PendingDeletion"
    assert resp.deletion_date is not None and (resp.deletion_date - clock.now).days == 30
    meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=kid)).key_metadata
    assert meta is not None and meta.pending_deletion_window_in_days == 30
    assert meta.deletion_date == resp.deletion_date and meta.enabled is False
    with pytest.raises(KMSInvalidStateException, match="pending deletion"):
        gdk(service, kid)
    with pytest.raises(KMSInvalidStateException):
        service.enable_key(ROOT_CALLER, EnableKeyRequest(key_id=kid))
    assert service.cancel_key_deletion(
        ROOT_CALLER, CancelKeyDeletionRequest(key_id=kid)
    ).key_id == arn(kid)
    meta = service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=kid)).key_metadata
    assert meta is not None and meta.key_state == "Disabled"  # AWS: back to Disabled
    with pytest.raises(KMSInvalidStateException):
        service.cancel_key_deletion(ROOT_CALLER, CancelKeyDeletionRequest(key_id=kid))

    service.create_alias(
        ROOT_CALLER, CreateAliasRequest(alias_name="alias/gone", target_key_id=kid)
    )
    service.schedule_key_deletion(
        ROOT_CALLER, ScheduleKeyDeletionRequest(key_id=kid, pending_window_in_days=7)
    )
    clock.advance(days=7, seconds=-1)
    service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=kid))  # still there
    clock.advance(seconds=1)
    with pytest.raises(NotFoundException):
        service.describe_key(ROOT_CALLER, DescribeKeyRequest(key_id=kid))
    assert service.list_aliases(ROOT_CALLER, ListAliasesRequest()).aliases == ()


def test_list_keys_pagination(service: KmsService) -> None:
    ids = sorted(new_key(service) for _ in range(5))
    seen: list[str] = []
    marker = None
    while True:
        page = service.list_keys(ROOT_CALLER, ListKeysRequest(limit=2, marker=marker))
        assert page.keys is not None
        seen += [k.key_id or "" for k in page.keys]
        assert all(k.key_arn == arn(k.key_id or "") for k in page.keys)
        if not page.truncated:
            assert page.next_marker is None
            break
        marker = page.next_marker
    assert seen == ids
    with pytest.raises(InvalidMarkerException):
        service.list_keys(ROOT_CALLER, ListKeysRequest(marker="garbage"))
    with pytest.raises(ValidationException, match="'limit'"):
        service.list_keys(ROOT_CALLER, ListKeysRequest(limit=0))


def test_aliases(service: KmsService) -> None:
    a, b = new_key(service), new_key(service)
    service.create_alias(ROOT_CALLER, CreateAliasRequest(alias_name="alias/x", target_key_id=a))
    with pytest.raises(AlreadyExistsException):
        service.create_alias(ROOT_CALLER, CreateAliasRequest(alias_name="alias/x", target_key_id=b))
    with pytest.raises(InvalidAliasNameException):
        service.create_alias(
            ROOT_CALLER, CreateAliasRequest(alias_name="alias/aws/x", target_key_id=a)
        )
    with pytest.raises(InvalidAliasNameException):
        service.create_alias(ROOT_CALLER, CreateAliasRequest(alias_name="x", target_key_id=a))
    with pytest.raises(NotFoundException):  # an alias is not a valid TargetKeyId
        service.create_alias(
            ROOT_CALLER, CreateAliasRequest(alias_name="alias/y", target_key_id="alias/x")
        )
    with pytest.raises(ValidationException, match="aliasName"):
        service.create_alias(
            ROOT_CALLER, CreateAliasRequest(alias_name="alias/" + "a" * 251, target_key_id=a)
        )
    service.update_alias(ROOT_CALLER, UpdateAliasRequest(alias_name="alias/x", target_key_id=b))
    only_b = service.list_aliases(ROOT_CALLER, ListAliasesRequest(key_id=b)).aliases
    assert only_b is not None and [x.alias_name for x in only_b] == ["alias/x"]
    assert only_b[0].alias_arn == f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/x"
    service.delete_alias(ROOT_CALLER, DeleteAliasRequest(alias_name="alias/x"))
    with pytest.raises(NotFoundException):
        service.delete_alias(ROOT_CALLER, DeleteAliasRequest(alias_name="alias/x"))


def test_tags(service: KmsService) -> None:
    kid = new_key(service, tags=(Tag("team", "a"),))
    service.tag_resource(
        ROOT_CALLER, TagResourceRequest(key_id=kid, tags=(Tag("env", "prod"), Tag("team", "b")))
    )
    tags = service.list_resource_tags(ROOT_CALLER, ListResourceTagsRequest(key_id=kid)).tags
    assert tags == (Tag("env", "prod"), Tag("team", "b"))
    service.untag_resource(ROOT_CALLER, UntagResourceRequest(key_id=kid, tag_keys=("env", "none")))
    page = service.list_resource_tags(ROOT_CALLER, ListResourceTagsRequest(key_id=kid, limit=1))
    assert page.tags == (Tag("team", "b"),) and page.truncated is False
    with pytest.raises(TagException):
        service.tag_resource(ROOT_CALLER, TagResourceRequest(key_id=kid, tags=(Tag("aws:x", "1"),)))


def test_key_policy_round_trip_and_enforcement(service: KmsService) -> None:
    kid = new_key(service)
    default = service.get_key_policy(ROOT_CALLER, GetKeyPolicyRequest(key_id=kid))
    assert default.policy_name == "default" and ACCOUNT in (default.policy or "")
    names = service.list_key_policies(ROOT_CALLER, ListKeyPoliciesRequest(key_id=kid))
    assert names.policy_names == ("default",)
    # The default policy admits the account's root user only (the account principal delegates
    # to IAM, which this service does not have): a role must be named to get rights.
    admin = Caller(principal_arn=f"arn:aws:iam::{ACCOUNT}:role/admin", account_id=ACCOUNT)
    with pytest.raises(AccessDeniedException):
        service.describe_key(admin, DescribeKeyRequest(key_id=kid))
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admin",
                "Effect": "Allow",
                "Principal": {"AWS": admin.principal_arn},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "AppEncrypt",
                "Effect": "Allow",
                "Principal": {"AWS": APP_CALLER.principal_arn},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
            {
                "Sid": "NoRootAppDecrypt",
                "Effect": "Deny",
                "Principal": {"AWS": APP_CALLER.principal_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ],
    }
    # The root user hands administration to the admin role (bypassing the lockout check,
    # since the new policy no longer names the root user).
    service.put_key_policy(
        ROOT_CALLER,
        PutKeyPolicyRequest(
            key_id=kid, policy=json.dumps(policy), bypass_policy_lockout_safety_check=True
        ),
    )
    service.describe_key(admin, DescribeKeyRequest(key_id=kid))
    service.encrypt(APP_CALLER, EncryptRequest(key_id=kid, plaintext=b"x"))
    with pytest.raises(AccessDeniedException) as denied:
        service.generate_data_key(
            APP_CALLER, GenerateDataKeyRequest(key_id=kid, key_spec="AES_256")
        )
    assert "no statement allows" not in denied.value.message  # reason is audit-only
    with pytest.raises(NotFoundException):
        service.get_key_policy(admin, GetKeyPolicyRequest(key_id=kid, policy_name="other"))
    with pytest.raises(MalformedPolicyDocumentException):
        service.put_key_policy(admin, PutKeyPolicyRequest(key_id=kid, policy="{not json"))
    # Lockout safety check: a policy that would stop the caller from PutKeyPolicy.
    lockout = {"Version": "2012-10-17", "Statement": [policy["Statement"][1]]}  # type: ignore[index]
    with pytest.raises(MalformedPolicyDocumentException, match="will not allow"):
        service.put_key_policy(admin, PutKeyPolicyRequest(key_id=kid, policy=json.dumps(lockout)))
    service.put_key_policy(
        admin,
        PutKeyPolicyRequest(
            key_id=kid, policy=json.dumps(lockout), bypass_policy_lockout_safety_check=True
        ),
    )
    with pytest.raises(AccessDeniedException):
        service.describe_key(admin, DescribeKeyRequest(key_id=kid))


def test_other_accounts_are_denied_by_the_default_policy(service: KmsService) -> None:
    kid = new_key(service)
    with pytest.raises(AccessDeniedException):
        service.describe_key(STRANGER, DescribeKeyRequest(key_id=kid))
    with pytest.raises(AccessDeniedException):
        service.create_key(STRANGER, CreateKeyRequest())


@pytest.mark.parametrize(
    ("request_", "error", "text"),
    [
        (
            CreateKeyRequest(key_spec="NOPE"),
            ValidationException,
            "Member must satisfy enum value set",
        ),
        (
            CreateKeyRequest(key_spec="ML_DSA_44", key_usage="SIGN_VERIFY"),
            UnsupportedOperationException,
            "ML_DSA_44",
        ),
        (
            CreateKeyRequest(key_spec="SYMMETRIC_DEFAULT", key_usage="SIGN_VERIFY"),
            ValidationException,
            "not compatible",
        ),
        (
            CreateKeyRequest(key_spec="ECC_NIST_EDWARDS25519", key_usage="SIGN_VERIFY"),
            UnsupportedOperationException,
            "ECC_NIST_EDWARDS25519",
        ),
        (
            CreateKeyRequest(key_spec="RSA_2048", customer_master_key_spec="RSA_2048"),
            ValidationException,
            "cannot specify",
        ),
        (CreateKeyRequest(origin="EXTERNAL"), UnsupportedOperationException, "Origin"),
        (CreateKeyRequest(multi_region=True), UnsupportedOperationException, "Multi-Region"),
        (CreateKeyRequest(description="x" * 8193), ValidationException, "'description'"),
        (CreateKeyRequest(tags=(Tag("", "v"),)), ValidationException, "tagKey"),
    ],
)
def test_create_key_refusals(
    service: KmsService, request_: CreateKeyRequest, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        service.create_key(ROOT_CALLER, request_)
    assert service.list_keys(ROOT_CALLER, ListKeysRequest()).keys == ()


def test_required_member_message(service: KmsService) -> None:
    with pytest.raises(ValidationException) as err:
        service.describe_key(ROOT_CALLER, DescribeKeyRequest())
    assert err.value.message == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_two_services_on_one_file_see_each_others_writes(db_path: Path, clock: PinnedClock) -> None:
    first, second = make_service(db_path, clock), make_service(db_path, clock)
    kid = new_key(first)
    blob = gdk(first, kid).ciphertext_blob  # type: ignore[attr-defined]
    second.disable_key(ROOT_CALLER, DisableKeyRequest(key_id=kid))
    with pytest.raises(DisabledException):
        gdk(first, kid)
    second.enable_key(ROOT_CALLER, EnableKeyRequest(key_id=kid))
    from enclave_kms.model import DecryptRequest

    assert second.decrypt(ROOT_CALLER, DecryptRequest(ciphertext_blob=blob)).plaintext is not None
    first.close()
    second.close()
