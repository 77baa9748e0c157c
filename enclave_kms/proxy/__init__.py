"""The parent-instance relay (a better vsock-proxy) and the credentials hand-off.

Imports nothing else from the project. Relay between ``vsock:CID:PORT``, ``tcp:HOST:PORT`` and
``unix:PATH`` endpoints with an asyncio event loop::

    import asyncio
    from enclave_kms.proxy import Proxy, RelaySettings, Route

    async def run(stop: asyncio.Event) -> None:
        proxy = Proxy([Route.parse("vsock:3:8000=tcp:kms.eu-west-1.amazonaws.com:443")],
                      RelaySettings(max_connections=256, connect_timeout=3))
        await proxy.serve(stop)

Hand temporary credentials to an enclave (kmstool-instance's SetClient message)::

    send_credentials("vsock:16:9000", Credentials.from_boto3())   # parent
    creds = receive_credentials("vsock:any:9000")                   # enclave

The command line is ``enclave-kms proxy`` (see :mod:`enclave_kms.proxy.cli`).
"""

from __future__ import annotations

from .allowlist import Allowlist, AllowlistEntry, AllowlistMatch
from .endpoints import Endpoint, TcpEndpoint, UnixEndpoint, VsockEndpoint, parse_endpoint
from .errors import (
    AllowlistError,
    EndpointError,
    HandoffError,
    ProxyConfigError,
    ProxyError,
    UpstreamUnavailableError,
    VsockUnavailableError,
)
from .handoff import (
    Credentials,
    CredentialsReceiver,
    HandoffReply,
    receive_credentials,
    send_credentials,
)
from .relay import Proxy, ProxyStats, RelaySettings, Route

__all__ = [
    "Allowlist",
    "AllowlistEntry",
    "AllowlistError",
    "AllowlistMatch",
    "Credentials",
    "CredentialsReceiver",
    "Endpoint",
    "EndpointError",
    "HandoffError",
    "HandoffReply",
    "Proxy",
    "ProxyConfigError",
    "ProxyError",
    "ProxyStats",
    "RelaySettings",
    "Route",
    "TcpEndpoint",
    "UnixEndpoint",
    "UpstreamUnavailableError",
    "VsockEndpoint",
    "VsockUnavailableError",
    "parse_endpoint",
    "receive_credentials",
    "send_credentials",
]
