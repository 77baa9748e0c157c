"""The asyncio relay: routes, settings, counters and the :class:`Proxy` that runs them.

One process serves any number of routes (vsock-proxy runs one process per destination). An
outbound route is ``vsock:3:8000 -> tcp:kms.us-east-1.amazonaws.com:443``; an inbound route is
simply ``tcp:0.0.0.0:8443 -> vsock:16:8443``. The relay is pure L4: TLS passes through
untouched, so the enclave sees the real certificate and must send the real SNI.

Example::

    proxy = Proxy([Route.parse("tcp:127.0.0.1:8000=tcp:127.0.0.1:9000")],
                  RelaySettings(max_connections=100))
    await proxy.start()
    ...
    await proxy.shutdown()   # stop accepting, drain up to drain_timeout, then close

Concurrency: one event loop, no thread per connection. ``max_connections`` caps concurrent
connections across all routes; a connection beyond it is closed at once, logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from . import _sockets
from ._connection import Hub
from ._resolver import DEFAULT_DNS_TTL, Resolver
from .endpoints import Endpoint, UnixEndpoint, VsockEndpoint, parse_endpoint
from .errors import EndpointError, ProxyConfigError

__all__ = ["Proxy", "ProxyStats", "RelaySettings", "Route"]

_LOG = logging.getLogger("enclave_kms.proxy")


@dataclass(frozen=True)
class Route:
    """A listener and the upstream its connections are relayed to."""

    listen: Endpoint
    upstream: Endpoint

    @classmethod
    def parse(cls, spec: str) -> Route:
        """Parse ``LISTEN=UPSTREAM``, e.g. ``vsock:3:8000=tcp:kms.eu-west-1.amazonaws.com:443``.

        Raises:
            EndpointError: not ``LISTEN=UPSTREAM`` or either endpoint is malformed.
        """
        listen, sep, upstream = spec.partition("=")
        if not sep or not listen or not upstream:
            raise EndpointError(f"route {spec!r}: expected LISTEN=UPSTREAM")
        route = cls(parse_endpoint(listen), parse_endpoint(upstream))
        if not isinstance(route.upstream, UnixEndpoint) and route.upstream.port == 0:
            raise EndpointError(f"route {spec!r}: the upstream port must not be 0")
        return route

    def __str__(self) -> str:
        return f"{self.listen}={self.upstream}"


@dataclass(frozen=True, kw_only=True)
class RelaySettings:
    """Relay limits and timeouts (seconds). Validated when built.

    Attributes:
        max_connections: concurrent connections across all routes; beyond it, refuse.
        connect_timeout: resolution plus connecting to the upstream.
        idle_timeout: close a connection with no traffic for this long; ``None`` disables.
        drain_timeout: at shutdown, how long open connections may finish before being closed.
        dns_ttl: how long a resolved upstream name is reused (getaddrinfo hides the record
            TTL, so this is our own cache time).
        family: ``AF_UNSPEC``, ``AF_INET`` (``-4``) or ``AF_INET6`` (``-6``) for upstreams.
        backlog: listen backlog.
        write_buffer_high: per-socket write buffer high-water mark (bytes) before the other
            side's reading is paused; at least one 256 KiB read fits without churn.
    """

    max_connections: int = 1024
    connect_timeout: float = 5.0
    idle_timeout: float | None = 300.0
    drain_timeout: float = 10.0
    dns_ttl: float = DEFAULT_DNS_TTL
    family: int = socket.AF_UNSPEC
    backlog: int = 1024
    write_buffer_high: int = 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ProxyConfigError("max_connections must be at least 1")
        if self.connect_timeout <= 0:
            raise ProxyConfigError("connect_timeout must be positive")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise ProxyConfigError("idle_timeout must be positive (or None to disable)")
        if self.drain_timeout < 0 or self.dns_ttl < 0:
            raise ProxyConfigError("drain_timeout and dns_ttl must not be negative")
        if self.family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
            raise ProxyConfigError("family must be AF_UNSPEC, AF_INET or AF_INET6")
        if self.backlog < 1 or self.write_buffer_high < 64 * 1024:
            raise ProxyConfigError("backlog must be >= 1 and write_buffer_high >= 64 KiB")


@dataclass(frozen=True)
class ProxyStats:
    """A snapshot of the counters.

    Attributes:
        active: connections open now.
        total: connections admitted since start (refused ones are not included).
        refused: connections closed at once because ``max_connections`` were open.
        failed_connects: admitted connections whose upstream could not be reached.
        bytes_up: bytes relayed client to upstream.
        bytes_down: bytes relayed upstream to client.
    """

    active: int
    total: int
    refused: int
    failed_connects: int
    bytes_up: int
    bytes_down: int


class Proxy:
    """Relay every route's connections to its upstream.

    Args:
        routes: at least one route.
        settings: limits and timeouts.
        resolver: upstream name resolution; by default a :class:`Resolver` with the
            settings' TTL and family.
        logger: where per-connection records go (default ``enclave_kms.proxy``).
    """

    def __init__(
        self,
        routes: Sequence[Route],
        settings: RelaySettings | None = None,
        *,
        resolver: Resolver | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if not routes:
            raise ProxyConfigError("at least one route is required")
        self.routes = tuple(routes)
        self.settings = settings or RelaySettings()
        self._resolver = resolver or Resolver(
            ttl=self.settings.dns_ttl, family=self.settings.family
        )
        self._log = logger or _LOG
        self._hub: Hub | None = None
        self._servers: list[tuple[Route, asyncio.Server]] = []

    @property
    def _state(self) -> Hub:
        if self._hub is None:
            raise ProxyConfigError("the proxy is not started")
        return self._hub

    async def start(self) -> None:
        """Bind every listener and start accepting.

        Raises:
            ProxyConfigError: a listener cannot be bound (the cause is in the message).
            VsockUnavailableError: a vsock endpoint on a platform without AF_VSOCK.
        """
        loop = asyncio.get_running_loop()
        self._hub = Hub(self.settings, self._resolver, self._log)
        hub = self._hub
        try:
            for route in self.routes:
                if isinstance(route.upstream, VsockEndpoint):
                    _sockets.vsock_family()  # fail at startup, not on the first connection
                sock = _sockets.listen_socket(route.listen, backlog=self.settings.backlog)

                def factory(route: Route = route) -> asyncio.BaseProtocol:
                    return hub.new_connection(route)

                if isinstance(route.listen, UnixEndpoint):
                    server = await loop.create_unix_server(factory, sock=sock)
                else:
                    server = await loop.create_server(factory, sock=sock)
                self._servers.append((route, server))
                self._log.info("listening route=%s", route)
        except BaseException:
            self._close_listeners()
            raise

    def addresses(self) -> list[object]:
        """The bound address of each route's listener, in route order (port 0 resolved)."""
        return [server.sockets[0].getsockname() for _, server in self._servers]

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        hub = self._state
        return ProxyStats(
            active=hub.active,
            total=hub.total,
            refused=hub.refused,
            failed_connects=hub.failed_connects,
            bytes_up=hub.bytes_up,
            bytes_down=hub.bytes_down,
        )

    def _close_listeners(self) -> None:
        for route, server in self._servers:
            server.close()
            _sockets.remove_unix_socket(route.listen)
        self._servers.clear()

    async def shutdown(self, drain_timeout: float | None = None) -> ProxyStats:
        """Stop accepting, let open connections finish, then close what remains.

        Args:
            drain_timeout: overrides the settings' drain timeout.

        Returns:
            The counters after shutdown.
        """
        hub = self._state
        self._close_listeners()
        timeout = self.settings.drain_timeout if drain_timeout is None else drain_timeout
        if hub.active:
            self._log.info("draining active=%d timeout=%.1fs", hub.active, timeout)
            try:
                async with asyncio.timeout(timeout):
                    await hub.drained.wait()
            except TimeoutError:
                for conn in list(hub.connections):
                    conn.finish("shutdown", abort=True)
        await asyncio.sleep(0)  # let the transports run their close callbacks
        stats = self.stats()
        self._log.info(
            "stopped total=%d refused=%d failed_connects=%d bytes_up=%d bytes_down=%d",
            stats.total, stats.refused, stats.failed_connects, stats.bytes_up, stats.bytes_down,
        )  # fmt: skip
        return stats

    async def serve(self, stop: asyncio.Event) -> ProxyStats:
        """Start, run until ``stop`` is set, then shut down gracefully."""
        await self.start()
        await stop.wait()
        return await self.shutdown()
