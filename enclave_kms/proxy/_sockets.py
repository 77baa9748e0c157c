"""Socket creation for listeners and upstream connections (vsock, tcp, unix).

asyncio has no AF_VSOCK helpers, so every socket is created here and handed to
``loop.create_server(sock=...)`` / ``loop.create_connection(sock=...)``. Doing the same for TCP
and unix keeps one code path, so the relay tested over TCP/unix in CI is the one that runs over
vsock in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat

from .endpoints import Endpoint, TcpEndpoint, UnixEndpoint, VsockEndpoint
from .errors import ProxyConfigError, UpstreamUnavailableError, VsockUnavailableError

__all__ = [
    "connect_socket",
    "listen_socket",
    "new_vsock_socket",
    "remove_unix_socket",
    "upstream_family",
    "vsock_family",
]


def vsock_family() -> int:
    """Return ``socket.AF_VSOCK`` or raise a clear error where the platform has none."""
    family = getattr(socket, "AF_VSOCK", None)
    if family is None:
        raise VsockUnavailableError(
            "vsock endpoints need AF_VSOCK, which this platform does not provide "
            "(Linux only); use tcp: or unix: endpoints here"
        )
    return int(family)


def new_vsock_socket() -> socket.socket:
    """A new AF_VSOCK stream socket, or a clear error where vsock is unavailable."""
    family = vsock_family()
    try:
        return socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        # Python has the constant but the kernel lacks the vsock transport (containers, CI).
        raise VsockUnavailableError(
            f"cannot create an AF_VSOCK socket ({exc.strerror or exc}); is the vsock "
            "driver loaded (vhost_vsock on the parent, vsock_loopback for local tests)?"
        ) from exc


def listen_socket(endpoint: Endpoint, *, backlog: int = 1024) -> socket.socket:
    """Create, bind and listen on a non-blocking socket for ``endpoint``.

    Raises:
        ProxyConfigError: the address cannot be bound (in use, permission, unresolvable).
        VsockUnavailableError: a vsock endpoint on a platform without AF_VSOCK.
    """
    if isinstance(endpoint, VsockEndpoint):
        sock = new_vsock_socket()
        address: object = (endpoint.cid, endpoint.port)
    elif isinstance(endpoint, UnixEndpoint):
        _remove_stale_unix_socket(endpoint.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = endpoint.path
    else:
        try:
            infos = socket.getaddrinfo(
                endpoint.host,
                endpoint.port,
                type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE,
            )
        except OSError as exc:
            raise ProxyConfigError(f"cannot resolve listen address {endpoint}: {exc}") from exc
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)  # type: ignore[arg-type]
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        # vsock-proxy #699 reports "Could not bind" with no cause; always say why.
        hint = " (is another proxy already listening there?)" if exc.errno == 98 else ""
        raise ProxyConfigError(f"cannot listen on {endpoint}: {exc.strerror or exc}{hint}") from exc
    return sock


def _remove_stale_unix_socket(path: str) -> None:
    # A socket file left by a previous run makes bind fail; remove it only if it is a socket,
    # never a regular file someone pointed us at by mistake.
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ProxyConfigError(f"cannot inspect {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISSOCK(mode):
        raise ProxyConfigError(f"{path} exists and is not a socket; refusing to replace it")
    os.unlink(path)


def remove_unix_socket(endpoint: Endpoint) -> None:
    """Remove the socket file of a unix listener (after it is closed); ignore if gone."""
    if isinstance(endpoint, UnixEndpoint):
        with contextlib.suppress(OSError):
            _remove_stale_unix_socket(endpoint.path)


async def connect_socket(family: int, address: object) -> socket.socket:
    """Connect a new non-blocking stream socket of ``family`` to ``address``.

    The caller bounds the time (``asyncio.timeout``); on cancellation the socket is closed.

    Raises:
        UpstreamUnavailableError: the connection was refused or failed.
        VsockUnavailableError: AF_VSOCK requested where the platform has none.
    """
    if family == getattr(socket, "AF_VSOCK", None):
        sock = new_vsock_socket()
    else:
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)  # type: ignore[arg-type]
    except OSError as exc:
        sock.close()
        raise UpstreamUnavailableError(f"connect failed: {exc.strerror or exc}") from exc
    except BaseException:
        sock.close()
        raise
    if family in (socket.AF_INET, socket.AF_INET6):
        # Small request/response exchanges (TLS handshakes, KMS calls) must not wait on Nagle.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def upstream_family(endpoint: TcpEndpoint | UnixEndpoint | VsockEndpoint) -> int:
    """The address family used to reach a non-TCP endpoint (TCP goes through the resolver)."""
    if isinstance(endpoint, VsockEndpoint):
        return vsock_family()
    return int(socket.AF_UNIX)
