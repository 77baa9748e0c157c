"""aws:SourceIp and aws:SecureTransport through a real ``enclave-kms serve``.

Each is what the connection shows (the TCP peer; plain HTTP here), or what a trusted proxy
says in ``X-Forwarded-For`` / ``X-Forwarded-Proto``, and never what any other client claims.
Serving HTTPS itself is tested in ``test_server_tls``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kms_server_helpers import ACCOUNT
from kms_server_process import (
    TLS_ONLY_POLICY,
    RunningServer,
    audit_rows,
    generates_data_key,
    kms_client,
    running_server,
    with_header,
)

pytestmark = pytest.mark.interop

ADMIN = f"arn:aws:iam::{ACCOUNT}:root"


def _policy(network: str) -> str:
    """The account root may administer the key; GenerateDataKey only from ``network``."""
    admin = {
        "Sid": "Admin",
        "Effect": "Allow",
        "Principal": {"AWS": ADMIN},
        "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"],
        "Resource": "*",
    }
    use = {
        "Sid": "UseFromNetwork",
        "Effect": "Allow",
        "Principal": {"AWS": ADMIN},
        "Action": "kms:GenerateDataKey",
        "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": network}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [admin, use]})


def _client(server: RunningServer, forwarded_for: str | None = None) -> Any:
    kms = kms_client(server)
    return kms if forwarded_for is None else with_header(kms, "X-Forwarded-For", forwarded_for)


def _key_usable_from(kms: Any, network: str) -> str:
    return str(kms.create_key(Policy=_policy(network))["KeyMetadata"]["KeyId"])


def _audited_source_ips(server: RunningServer, key_id: str) -> dict[str, str | None]:
    """Each operation on ``key_id`` that ``enclave-kms audit`` lists, with its source address."""
    return {row["operation"]: row.get("source_ip") for row in audit_rows(server, key_id)}


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("kms-source-ip")) as srv:
        yield srv


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work: Path = tmp_path_factory.mktemp("kms-source-ip-proxied")
    with running_server(work, ["--trusted-proxy", "127.0.0.1"]) as srv:
        yield srv


def test_the_tcp_peer_is_the_source_ip(plain_server: RunningServer) -> None:
    kms = _client(plain_server)
    assert generates_data_key(kms, _key_usable_from(kms, "127.0.0.0/8"))
    assert not generates_data_key(kms, _key_usable_from(kms, "10.20.0.0/16"))


def test_x_forwarded_for_is_not_believed_by_default(plain_server: RunningServer) -> None:
    kms = _client(plain_server, forwarded_for="10.20.0.5")
    assert not generates_data_key(kms, _key_usable_from(kms, "10.20.0.0/16"))
    assert generates_data_key(kms, _key_usable_from(kms, "127.0.0.0/8"))


def test_a_trusted_proxy_names_the_client(proxied_server: RunningServer) -> None:
    kms = _client(proxied_server, forwarded_for="10.20.0.5")
    assert generates_data_key(kms, _key_usable_from(kms, "10.20.0.0/16"))
    assert not generates_data_key(kms, _key_usable_from(kms, "127.0.0.0/8"))
    # The right-most untrusted address wins: a client cannot prepend one of its choosing.
    spoofing = _client(proxied_server, forwarded_for="10.20.0.5, 198.51.100.7")
    assert not generates_data_key(spoofing, _key_usable_from(kms, "10.20.0.0/16"))


def test_the_audit_record_keeps_the_address_the_policy_saw(
    plain_server: RunningServer, proxied_server: RunningServer
) -> None:
    direct = _client(plain_server, forwarded_for="10.20.0.5")  # not believed: no trusted proxy
    key_id = _key_usable_from(direct, "127.0.0.0/8")
    assert generates_data_key(direct, key_id)
    assert _audited_source_ips(plain_server, key_id)["GenerateDataKey"] == "127.0.0.1"

    relayed = _client(proxied_server, forwarded_for="10.20.0.5")
    key_id = _key_usable_from(relayed, "127.0.0.0/8")
    assert not generates_data_key(relayed, key_id)  # denied requests are audited with it too
    audited = _audited_source_ips(proxied_server, key_id)
    assert audited == {"CreateKey": "10.20.0.5", "GenerateDataKey": "10.20.0.5"}


def test_plain_http_is_not_tls_whatever_the_client_claims(plain_server: RunningServer) -> None:
    kms = kms_client(plain_server)
    key_id = kms.create_key(Policy=TLS_ONLY_POLICY)["KeyMetadata"]["KeyId"]
    assert not generates_data_key(kms, key_id)
    claiming = with_header(kms_client(plain_server), "X-Forwarded-Proto", "https")
    assert not generates_data_key(claiming, key_id)  # believed only from a trusted proxy


def test_a_trusted_tls_terminating_proxy_counts_as_tls(proxied_server: RunningServer) -> None:
    kms = kms_client(proxied_server)
    key_id = kms.create_key(Policy=TLS_ONLY_POLICY)["KeyMetadata"]["KeyId"]
    assert not generates_data_key(kms, key_id)  # the proxy did not say it terminated TLS
    relayed = with_header(kms_client(proxied_server), "X-Forwarded-Proto", "https")
    assert generates_data_key(relayed, key_id)
