"""IpAddress / NotIpAddress on aws:SourceIp, Bool on aws:SecureTransport, BinaryEquals (IAM)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from policy_support import Context, allowed, condition_policy
from signing_support import app, policy
from test_service_support import APP_CALLER, ROOT_CALLER, new_key
from test_service_support import PinnedClock as PinnedClock
from test_service_support import clock as clock
from test_service_support import db_path as db_path
from test_service_support import service as service

from enclave_kms.errors import AccessDeniedException, MalformedPolicyDocumentException
from enclave_kms.model import GenerateDataKeyRequest, PutKeyPolicyRequest
from enclave_kms.service import KmsService

IP = "aws:SourceIp"
B = "test:Blob"


@pytest.mark.parametrize(
    ("operator", "values", "context", "expected"),
    [
        ("IpAddress", "203.0.113.0/24", {IP: "203.0.113.7"}, True),
        ("IpAddress", "203.0.113.0/24", {IP: "203.0.114.7"}, False),
        ("IpAddress", "203.0.113.7", {IP: "203.0.113.7"}, True),  # an address alone: /32
        ("IpAddress", "203.0.113.7", {IP: "203.0.113.8"}, False),
        ("IpAddress", "203.0.113.7/24", {IP: "203.0.113.200"}, True),  # host bits ignored
        ("IpAddress", ["10.0.0.0/8", "192.0.2.0/24"], {IP: "192.0.2.1"}, True),  # ORed
        ("IpAddress", "2001:db8::/32", {IP: "2001:db8:1::5"}, True),
        ("IpAddress", "2001:db8::/32", {IP: "2001:db9::5"}, False),
        ("IpAddress", "0.0.0.0/0", {IP: "2001:db8::5"}, False),  # other IP version
        # A dual-stack socket reports an IPv4 peer in its IPv6-mapped form.
        ("IpAddress", "203.0.113.0/24", {IP: "::ffff:203.0.113.7"}, True),
        ("IpAddress", "203.0.113.0/24", {IP: "not-an-address"}, False),
        ("IpAddress", "203.0.113.0/24", {}, False),  # in-process caller: no address
        ("IpAddressIfExists", "203.0.113.0/24", {}, True),
        ("NotIpAddress", ["10.0.0.0/8", "192.0.2.0/24"], {IP: "192.0.2.1"}, False),  # NORed
        ("NotIpAddress", ["10.0.0.0/8", "192.0.2.0/24"], {IP: "198.51.100.1"}, True),
        ("NotIpAddress", "10.0.0.0/8", {}, True),  # negated on an absent key
    ],
)
def test_ip_address_operators(
    operator: str, values: object, context: Context, expected: bool
) -> None:
    assert allowed({operator: {IP: values}}, context) is expected


@pytest.mark.parametrize(
    ("values", "context", "expected"),
    [
        ("QUJD", {B: "QUJD"}, True),
        (["eHl6", "QUJD"], {B: "QUJD"}, True),
        ("QUJD", {B: "QUJE"}, False),
        ("QUJD", {B: "ABC"}, False),  # not base64: no match
        ("QUJD", {}, False),
    ],
)
def test_binary_equals_compares_bytes(values: object, context: Context, expected: bool) -> None:
    assert allowed({"BinaryEquals": {B: values}}, context) is expected


@pytest.mark.parametrize(
    ("operator", "value", "needle"),
    [
        ("IpAddress", "10.0.0.0/33", "IP address or a CIDR range"),
        ("IpAddress", "10.0.0.0/255.0.0.0", "IP address or a CIDR range"),  # CIDR only
        ("NotIpAddress", "intranet", "IP address or a CIDR range"),
        ("IpAddress", True, "IP address or a CIDR range"),
        ("BinaryEquals", "QUJD!", "base64"),
    ],
)
def test_a_policy_value_that_is_not_an_address_or_base64_is_malformed(
    operator: str, value: object, needle: str
) -> None:
    with pytest.raises(MalformedPolicyDocumentException, match=needle):
        condition_policy({operator: {IP: value}})


# --- through the service: the caller's address is aws:SourceIp --------------------------------


def _gdk(service: KmsService, key_id: str, source_ip: str | None) -> None:
    caller = replace(APP_CALLER, source_ip=source_ip)
    service.generate_data_key(caller, GenerateDataKeyRequest(key_id=key_id, key_spec="AES_256"))


def test_a_key_policy_can_admit_only_one_network(service: KmsService) -> None:
    key = new_key(
        service,
        policy=policy(app("kms:GenerateDataKey", {"IpAddress": {IP: "10.20.0.0/16"}})),
    )
    _gdk(service, key, "10.20.3.4")
    with pytest.raises(AccessDeniedException):
        _gdk(service, key, "10.21.3.4")
    with pytest.raises(AccessDeniedException):
        _gdk(service, key, None)  # no address: IpAddress cannot hold
    # Each record keeps the address its decision saw, allowed or denied.
    records = service.query_audit(since=None, key_arn=None, limit=100)
    assert [(r.operation, r.outcome, r.source_ip) for r in records[-3:]] == [
        ("GenerateDataKey", "success", "10.20.3.4"),
        ("GenerateDataKey", "AccessDeniedException", "10.21.3.4"),
        ("GenerateDataKey", "AccessDeniedException", None),
    ]


def test_a_deny_outside_a_network_refuses_other_addresses(service: KmsService) -> None:
    deny = {
        "Sid": "OnlyFromTheVpc",
        "Effect": "Deny",
        "Principal": {"AWS": APP_CALLER.principal_arn},
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"NotIpAddress": {IP: ["10.20.0.0/16", "2001:db8::/32"]}},
    }
    key = new_key(service, policy=policy(app("kms:GenerateDataKey"), deny))
    _gdk(service, key, "2001:db8::7")
    with pytest.raises(AccessDeniedException):
        _gdk(service, key, "198.51.100.9")
    with pytest.raises(AccessDeniedException):
        _gdk(service, key, None)  # no address: a negated operator holds, so the deny applies


def test_the_lockout_check_sees_the_callers_address(service: KmsService) -> None:
    """PutKeyPolicy refuses a policy that would lock out the caller from where it calls."""
    admin = replace(ROOT_CALLER, source_ip="10.20.0.5")
    only_vpc = {
        "Sid": "OnlyFromTheVpc",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"NotIpAddress": {IP: "10.20.0.0/16"}},
    }
    key = new_key(service)
    request = PutKeyPolicyRequest(key_id=key, policy=policy(only_vpc))
    service.put_key_policy(admin, request)
    outside = replace(ROOT_CALLER, source_ip="198.51.100.9")
    with pytest.raises(AccessDeniedException):
        service.put_key_policy(outside, request)
    # From outside the range, a policy that would shut the caller out is refused as such.
    other = new_key(service)
    with pytest.raises(MalformedPolicyDocumentException, match="will not allow you"):
        service.put_key_policy(outside, PutKeyPolicyRequest(key_id=other, policy=policy(only_vpc)))


# AWS's usual statement for keys that must only be used over TLS.
DENY_WITHOUT_TLS = {
    "Sid": "DenyWithoutTls",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "kms:*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_a_key_policy_can_require_tls(service: KmsService) -> None:
    key = new_key(service, policy=policy(app("kms:GenerateDataKey"), DENY_WITHOUT_TLS))
    request = GenerateDataKeyRequest(key_id=key, key_spec="AES_256")
    service.generate_data_key(replace(APP_CALLER, secure_transport=True), request)
    with pytest.raises(AccessDeniedException):
        service.generate_data_key(replace(APP_CALLER, secure_transport=False), request)
    # In-process callers came over no transport: the key is absent and Bool does not hold.
    service.generate_data_key(APP_CALLER, request)


def test_the_lockout_check_sees_how_the_caller_calls(service: KmsService) -> None:
    """Over plain HTTP, a policy that admits administrators only over TLS is refused."""
    plain = replace(ROOT_CALLER, secure_transport=False)
    tls_only = policy(DENY_WITHOUT_TLS)
    with pytest.raises(MalformedPolicyDocumentException, match="will not allow you"):
        service.put_key_policy(plain, PutKeyPolicyRequest(key_id=new_key(service), policy=tls_only))
    over_tls = replace(ROOT_CALLER, secure_transport=True)
    service.put_key_policy(over_tls, PutKeyPolicyRequest(key_id=new_key(service), policy=tls_only))
