"""vsock-proxy allowlist: YAML format and matching."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path

import pytest

from enclave_kms.proxy import Allowlist, AllowlistEntry, AllowlistError, ProxyConfigError
from enclave_kms.proxy.allowlist import NOT_ALLOWED, system_resolve

SHIPPED_STYLE = """\
allowlist:
- {address: kms.us-east-1.amazonaws.com, port: 443}
- {address: kms-fips.us-east-1.amazonaws.com, port: 443}
- {address: localhost, port: 8443}
"""


def no_dns(host: str, family: int) -> Iterable[str]:
    raise AssertionError(f"unexpected resolution of {host}")


def fake_dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, family: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def test_parses_vsock_proxy_format() -> None:
    allowlist = Allowlist.from_yaml(SHIPPED_STYLE)
    assert allowlist.entries == (
        AllowlistEntry("kms.us-east-1.amazonaws.com", 443),
        AllowlistEntry("kms-fips.us-east-1.amazonaws.com", 443),
        AllowlistEntry("localhost", 8443),
    )


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "vsock-proxy.yaml"
    path.write_text(SHIPPED_STYLE)
    assert len(Allowlist.load(path).entries) == 3


def test_load_missing_file_names_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(ProxyConfigError, match="--unsafe-skip-allowlist"):
        Allowlist.load(tmp_path / "absent.yaml")


def test_empty_allowlist_parses_and_allows_nothing() -> None:
    allowlist = Allowlist.from_yaml("allowlist:\n")
    assert allowlist.entries == ()
    with pytest.raises(AllowlistError):
        allowlist.check("localhost", 443, resolve=no_dns)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("allowlist: [", "not valid YAML"),
        ("- {address: a, port: 1}", "'allowlist' key"),
        ("other: 1", "'allowlist' key"),
        ("allowlist: {address: a, port: 1}", "must be a list"),
        ("allowlist: [a]", r"allowlist\[0\] must be a mapping"),
        ("allowlist: [{port: 443}]", r"allowlist\[0\].address"),
        ("allowlist: [{address: a, port: '443'}]", r"allowlist\[0\].port"),
        ("allowlist: [{address: a, port: 0}]", r"allowlist\[0\].port"),
        ("allowlist: [{address: a, port: 70000}]", r"allowlist\[0\].port"),
        ("allowlist: [{address: a, port: yes}]", r"allowlist\[0\].port"),
    ],
)
def test_rejects_malformed_yaml(text: str, fragment: str) -> None:
    with pytest.raises(ProxyConfigError, match=fragment):
        Allowlist.from_yaml(text)


def test_string_match_needs_no_dns() -> None:
    match = Allowlist.from_yaml(SHIPPED_STYLE).check(
        "kms.us-east-1.amazonaws.com", 443, resolve=no_dns
    )
    assert match.by == "address"
    assert match.entry.address == "kms.us-east-1.amazonaws.com"


def test_resolution_match_localhost_to_loopback_ip() -> None:
    # The real system resolver: localhost resolves to 127.0.0.1 via /etc/hosts.
    match = Allowlist.from_yaml(SHIPPED_STYLE).check("127.0.0.1", 8443, family=socket.AF_INET)
    assert match.by == "resolved-ip"
    assert match.entry == AllowlistEntry("localhost", 8443)
    assert match.ip == "127.0.0.1"


def test_resolution_match_uses_ip_intersection() -> None:
    allowlist = Allowlist.from_yaml("allowlist: [{address: kms.example, port: 443}]")
    dns = fake_dns({"kms.example": ["10.0.0.1", "10.0.0.2"], "alias.example": ["10.0.0.2"]})
    match = allowlist.check("alias.example", 443, resolve=dns)
    assert (match.by, match.ip) == ("resolved-ip", "10.0.0.2")
    with pytest.raises(AllowlistError):
        allowlist.check("10.0.0.3", 443, resolve=dns)


def test_port_mismatch_is_refused_even_when_address_matches() -> None:
    with pytest.raises(AllowlistError, match=NOT_ALLOWED):
        Allowlist.from_yaml(SHIPPED_STYLE).check("kms.us-east-1.amazonaws.com", 80)


def test_unlisted_host_is_refused_with_vsock_proxy_wording() -> None:
    dns = fake_dns({"evil.example": ["192.0.2.1"], "localhost": ["127.0.0.1"]})
    with pytest.raises(AllowlistError) as info:
        Allowlist.from_yaml(SHIPPED_STYLE).check("evil.example", 8443, resolve=dns)
    assert str(info.value).startswith("The given address and port are not allowed")
    assert "evil.example:8443" in str(info.value)


def test_unresolvable_entries_are_skipped() -> None:
    text = "allowlist: [{address: gone.example, port: 443}, {address: kms.example, port: 443}]"
    dns = fake_dns({"kms.example": ["10.0.0.1"]})
    match = Allowlist.from_yaml(text).check("10.0.0.1", 443, resolve=dns)
    assert match.entry.address == "kms.example"


def test_unresolvable_remote_is_refused_with_the_reason() -> None:
    with pytest.raises(AllowlistError, match="does not resolve"):
        Allowlist.from_yaml(SHIPPED_STYLE).check("nowhere.example", 443, resolve=fake_dns({}))


@pytest.mark.parametrize("remote", ["19", "3", "16"])
def test_numeric_remote_address_points_to_vsock_syntax(remote: str) -> None:
    with pytest.raises(ProxyConfigError, match=f"vsock:{remote}:PORT"):
        Allowlist.from_yaml(SHIPPED_STYLE).check(remote, 443, resolve=no_dns)


def test_system_resolve_skips_dns_for_literals() -> None:
    assert system_resolve("192.0.2.7", socket.AF_UNSPEC) == ["192.0.2.7"]
    assert system_resolve("::1", socket.AF_UNSPEC) == ["::1"]
