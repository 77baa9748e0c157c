"""Endpoint and route parsing."""

from __future__ import annotations

import pytest

from enclave_kms.proxy import (
    EndpointError,
    ProxyConfigError,
    Route,
    TcpEndpoint,
    UnixEndpoint,
    VsockEndpoint,
    parse_endpoint,
)
from enclave_kms.proxy.endpoints import VMADDR_CID_ANY


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("vsock:3:8000", VsockEndpoint(3, 8000)),
        ("vsock:any:8000", VsockEndpoint(VMADDR_CID_ANY, 8000)),
        ("vsock:-1:5", VsockEndpoint(VMADDR_CID_ANY, 5)),
        ("vsock:16:4294967295", VsockEndpoint(16, 0xFFFFFFFF)),
        ("tcp:127.0.0.1:443", TcpEndpoint("127.0.0.1", 443)),
        ("tcp:kms.us-east-1.amazonaws.com:443", TcpEndpoint("kms.us-east-1.amazonaws.com", 443)),
        ("tcp:[::1]:8443", TcpEndpoint("::1", 8443)),
        ("tcp:0.0.0.0:0", TcpEndpoint("0.0.0.0", 0)),
        ("unix:/run/x.sock", UnixEndpoint("/run/x.sock")),
        ("unix:rel/x:y.sock", UnixEndpoint("rel/x:y.sock")),
    ],
)
def test_parses_valid_endpoints(spec: str, expected: object) -> None:
    assert parse_endpoint(spec) == expected


@pytest.mark.parametrize(
    "spec",
    ["vsock:3:8000", "vsock:any:8000", "tcp:127.0.0.1:443", "tcp:[::1]:8443", "unix:/x.sock"],
)
def test_str_round_trips(spec: str) -> None:
    assert str(parse_endpoint(spec)) == spec


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("8000", "not an endpoint"),
        ("udp:1.2.3.4:53", "unknown scheme"),
        ("vsock:3", "expected vsock:CID:PORT"),
        ("vsock:x:80", "the CID must be a decimal number"),
        ("vsock:3:4294967296", "out of range"),
        ("tcp:host", "expected tcp:HOST:PORT"),
        ("tcp::80", "expected tcp:HOST:PORT"),
        ("tcp:host:65536", "out of range"),
        ("tcp:host:-1", "decimal number"),
        ("tcp:::1:80", "in brackets"),
        ("tcp:[::1:80", "IPv6 literal must be written"),
        ("unix:", "path is empty"),
    ],
)
def test_rejects_malformed_endpoints(spec: str, fragment: str) -> None:
    with pytest.raises(EndpointError, match=fragment):
        parse_endpoint(spec)


def test_endpoint_error_is_a_config_error() -> None:
    with pytest.raises(ProxyConfigError):
        parse_endpoint("nope")


def test_route_parse() -> None:
    route = Route.parse("tcp:0.0.0.0:8443=vsock:16:8443")
    assert route.listen == TcpEndpoint("0.0.0.0", 8443)
    assert route.upstream == VsockEndpoint(16, 8443)
    assert str(route) == "tcp:0.0.0.0:8443=vsock:16:8443"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("tcp:127.0.0.1:1", "LISTEN=UPSTREAM"),
        ("=tcp:127.0.0.1:1", "LISTEN=UPSTREAM"),
        ("tcp:127.0.0.1:1=", "LISTEN=UPSTREAM"),
        ("tcp:127.0.0.1:0=tcp:127.0.0.1:0", "must not be 0"),
    ],
)
def test_route_parse_errors(spec: str, fragment: str) -> None:
    with pytest.raises(EndpointError, match=fragment):
        Route.parse(spec)
