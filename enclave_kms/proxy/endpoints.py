"""Endpoint strings: ``vsock:CID:PORT``, ``tcp:HOST:PORT`` and ``unix:PATH``.

Examples::

    vsock:3:8000          the parent's CID (what vsock-proxy binds), port 8000
    vsock:any:8000        VMADDR_CID_ANY (listen on every CID); ``-1`` is accepted too
    vsock:16:5000         an enclave with CID 16
    tcp:127.0.0.1:8443    IPv4
    tcp:[::1]:8443        IPv6 literals go in brackets
    tcp:kms.us-east-1.amazonaws.com:443
    unix:/run/enclave-kms/kms.sock

Port 0 is accepted for listeners (the kernel picks a port; tests use it).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EndpointError

__all__ = [
    "VMADDR_CID_ANY",
    "Endpoint",
    "TcpEndpoint",
    "UnixEndpoint",
    "VsockEndpoint",
    "parse_endpoint",
]

#: linux/vm_sockets.h: bind to any CID. Python exports it as socket.VMADDR_CID_ANY on Linux
#: only; the value is fixed by the kernel ABI, so it is spelled out for other platforms.
VMADDR_CID_ANY = 0xFFFFFFFF
_U32_MAX = 0xFFFFFFFF
_U16_MAX = 0xFFFF


@dataclass(frozen=True)
class VsockEndpoint:
    """An AF_VSOCK address: context id and port (both u32)."""

    cid: int
    port: int

    def __str__(self) -> str:
        cid = "any" if self.cid == VMADDR_CID_ANY else str(self.cid)
        return f"vsock:{cid}:{self.port}"


@dataclass(frozen=True)
class TcpEndpoint:
    """A TCP address: a host name or IP literal, and a u16 port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"


@dataclass(frozen=True)
class UnixEndpoint:
    """A Unix-domain stream socket path."""

    path: str

    def __str__(self) -> str:
        return f"unix:{self.path}"


Endpoint = VsockEndpoint | TcpEndpoint | UnixEndpoint


def _int_field(text: str, what: str, maximum: int, spec: str) -> int:
    if not text.isdigit():
        raise EndpointError(f"{spec!r}: {what} must be a decimal number, got {text!r}")
    value = int(text)
    if value > maximum:
        raise EndpointError(f"{spec!r}: {what} {value} is out of range (0..{maximum})")
    return value


def parse_endpoint(spec: str) -> Endpoint:
    """Parse an endpoint string.

    Args:
        spec: ``vsock:CID:PORT``, ``tcp:HOST:PORT`` (IPv6 in brackets) or ``unix:PATH``.

    Returns:
        The endpoint object.

    Raises:
        EndpointError: the scheme is unknown or a part is missing, malformed or out of range.
    """
    scheme, sep, rest = spec.partition(":")
    if not sep:
        raise EndpointError(
            f"{spec!r} is not an endpoint; use vsock:CID:PORT, tcp:HOST:PORT or unix:PATH"
        )
    if scheme == "unix":
        if not rest:
            raise EndpointError(f"{spec!r}: the unix socket path is empty")
        if "\0" in rest:
            raise EndpointError(f"{spec!r}: the unix socket path contains a NUL byte")
        return UnixEndpoint(rest)
    if scheme == "vsock":
        cid_text, sep, port_text = rest.partition(":")
        if not sep or not cid_text or not port_text:
            raise EndpointError(f"{spec!r}: expected vsock:CID:PORT")
        if cid_text in ("any", "-1"):
            cid = VMADDR_CID_ANY
        else:
            cid = _int_field(cid_text, "the CID", _U32_MAX, spec)
        return VsockEndpoint(cid, _int_field(port_text, "the port", _U32_MAX, spec))
    if scheme == "tcp":
        host, sep, port_text = rest.rpartition(":")
        if not sep or not host or not port_text:
            raise EndpointError(f"{spec!r}: expected tcp:HOST:PORT")
        if host.startswith("["):
            if not host.endswith("]") or len(host) < 3:
                raise EndpointError(f"{spec!r}: an IPv6 literal must be written [ADDR]")
            host = host[1:-1]
        elif ":" in host:
            raise EndpointError(f"{spec!r}: write an IPv6 literal in brackets, tcp:[ADDR]:PORT")
        return TcpEndpoint(host, _int_field(port_text, "the port", _U16_MAX, spec))
    raise EndpointError(f"{spec!r}: unknown scheme {scheme!r}; use vsock:, tcp: or unix:")
