"""The proxy's own exception hierarchy.

The proxy imports nothing else from the project, so it carries its own errors under one root,
:class:`ProxyError`. The CLI turns any of them into a one-line message and exit code 1.
Messages never contain credentials or relayed bytes.
"""

from __future__ import annotations

__all__ = [
    "AllowlistError",
    "EndpointError",
    "HandoffError",
    "ProxyConfigError",
    "ProxyError",
    "UpstreamUnavailableError",
    "VsockUnavailableError",
]


class ProxyError(Exception):
    """Root of every error the proxy and the credentials hand-off raise."""


class ProxyConfigError(ProxyError):
    """The configuration is invalid: a flag, a route, the allowlist file, a listener."""


class EndpointError(ProxyConfigError):
    """An endpoint string is not ``vsock:CID:PORT``, ``tcp:HOST:PORT`` or ``unix:PATH``."""


class VsockUnavailableError(ProxyConfigError):
    """AF_VSOCK was requested but this platform (or kernel) has none."""


class AllowlistError(ProxyError):
    """The upstream address and port are not in the allowlist (checked once at startup)."""


class UpstreamUnavailableError(ProxyError):
    """The upstream could not be resolved or connected to within the connect timeout."""


class HandoffError(ProxyError):
    """The credentials hand-off failed: malformed or oversized message, error reply, I/O."""
