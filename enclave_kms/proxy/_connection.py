"""One relayed connection: two asyncio protocols wired back to back.

Protocols (not streams) are used so that each chunk read is handed straight to the other
transport's ``write`` with no per-chunk await; back-pressure is the transports' own flow
control: when one side's write buffer passes its high-water mark, reading from the other side
pauses until it drains (``pause_writing``/``resume_writing``).

Half-close (vsock-proxy has none: EOF on either side ends both directions): EOF from one side
becomes ``write_eof()`` on the other, and the connection ends when both directions are done,
when either side fails, on the idle timeout, or at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from . import _sockets
from .endpoints import Endpoint, TcpEndpoint, VsockEndpoint
from .errors import ProxyError

if TYPE_CHECKING:
    from ._resolver import Address, Resolver
    from .relay import RelaySettings, Route

__all__ = ["Connection", "Hub"]


@dataclass
class Hub:
    """State shared by the connections of one proxy: settings, resolver, counters, registry."""

    settings: RelaySettings
    resolver: Resolver
    log: logging.Logger
    active: int = 0
    total: int = 0
    refused: int = 0
    failed_connects: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    next_id: int = 0
    connections: set[Connection] = field(default_factory=set)
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    def new_connection(self, route: Route) -> _Side:
        """Protocol factory for a listener: a new connection, returning its client side."""
        self.next_id += 1
        return Connection(self, route, self.next_id).client


class _Side(asyncio.Protocol):
    """One socket of a relayed connection; forwards every event to the connection."""

    __slots__ = ("conn", "eof", "name", "paused", "peer", "transport")

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.eof = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses, hence the cast).
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self.conn.hub.settings.write_buffer_high)
        if self.name == "client":
            self.conn.admit()
        else:
            self.conn.upstream_made()

    def data_received(self, data: bytes) -> None:
        self.conn.relay(self, data)

    def eof_received(self) -> bool:
        self.conn.side_eof(self)
        return True  # keep the transport open: the other direction may still be flowing

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.side_lost(self, exc)

    # Our write buffer is full: stop reading from the peer until it drains.
    def pause_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.eof:
            peer.paused = True
            peer.transport.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and peer.paused:
            peer.paused = False
            if not peer.eof:
                peer.transport.resume_reading()


def _describe(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        if isinstance(host, int):  # AF_VSOCK peers are (cid, port)
            return f"vsock:{host}:{port}"
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address) if address else "unix"


class Connection:
    """A client connection and its upstream connection."""

    def __init__(self, hub: Hub, route: Route, conn_id: int) -> None:
        self.hub = hub
        self.route = route
        self.id = conn_id
        self.client = _Side(self, "client")
        self.upstream = _Side(self, "upstream")
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.peer = "-"
        self.upstream_address = str(route.upstream)
        self.bytes_up = 0
        self.bytes_down = 0
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.last_activity = self.started
        self.finished = False
        self._connect_task: asyncio.Task[None] | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def admit(self) -> None:
        """Called when the client socket is accepted: refuse beyond the cap, else connect."""
        hub, transport = self.hub, self.client.transport
        assert transport is not None  # noqa: S101 - set by connection_made
        self.peer = _describe(transport.get_extra_info("peername"))
        if hub.active >= hub.settings.max_connections:
            # Refuse now rather than queue: a queued connection looks like a hang to the
            # client (vsock-proxy's fixed worker pool, #413).
            self.finished = True
            hub.refused += 1
            transport.close()
            hub.log.warning(
                "refused conn=%d route=%s peer=%s reason=max-connections active=%d max=%d",
                self.id, self.route, self.peer, hub.active, hub.settings.max_connections,
                extra={"event": "refused", "conn": self.id, "route": str(self.route)},
            )  # fmt: skip
            return
        hub.active += 1
        hub.total += 1
        hub.drained.clear()
        hub.connections.add(self)
        transport.pause_reading()  # nothing to forward to until the upstream is up
        self._connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        settings = self.hub.settings
        try:
            async with asyncio.timeout(settings.connect_timeout):
                sock = await self._open_upstream(self.route.upstream)
        except TimeoutError:
            self._connect_failed("connect-timeout", f"no connection in {settings.connect_timeout}s")
            return
        except ProxyError as exc:
            self._connect_failed("connect-failed", str(exc))
            return
        if self.finished:  # shut down while connecting
            sock.close()
            return
        try:
            await self.loop.create_connection(lambda: self.upstream, sock=sock)
        except OSError as exc:
            sock.close()
            self._connect_failed("connect-failed", exc.strerror or str(exc))
            return

    def upstream_made(self) -> None:
        """The upstream socket is up: flush what the client sent meanwhile, then relay.

        This runs inside the upstream's ``connection_made``, not after ``create_connection``
        returns: on some loops (uvloop) client bytes can be delivered between the two, and
        they would overtake the pending ones if the flush waited for the coroutine to resume.
        """
        client, upstream = self.client.transport, self.upstream.transport
        assert client is not None and upstream is not None  # noqa: S101
        if self.finished:  # shut down while connecting: finish() could not close it yet
            upstream.close()
            return
        self.last_activity = self.loop.time()
        if self._pending:
            pending, self._pending, self._pending_size = self._pending, [], 0
            upstream.write(b"".join(pending))  # may pause the client (pause_writing) at once
        if self.client.eof:
            upstream.write_eof()
        elif not self.client.paused:
            client.resume_reading()
        settings = self.hub.settings
        if settings.idle_timeout is not None:
            self._idle_handle = self.loop.call_later(settings.idle_timeout, self._check_idle)

    async def _open_upstream(self, endpoint: Endpoint) -> socket.socket:
        addresses: tuple[Address, ...]
        if isinstance(endpoint, TcpEndpoint):
            addresses = await self.hub.resolver.resolve(endpoint.host, endpoint.port)
        elif isinstance(endpoint, VsockEndpoint):
            addresses = ((_sockets.vsock_family(), (endpoint.cid, endpoint.port)),)
        else:
            addresses = ((int(socket.AF_UNIX), (endpoint.path,)),)
        last: ProxyError | None = None
        for family, address in addresses:
            target = address[0] if family == socket.AF_UNIX else address
            try:
                sock = await _sockets.connect_socket(family, target)
            except ProxyError as exc:
                last = exc
                continue
            self.upstream_address = _describe(address) if family != socket.AF_UNIX else str(target)
            return sock
        assert last is not None  # noqa: S101 - addresses is never empty
        raise last

    def _connect_failed(self, reason: str, detail: str) -> None:
        self.hub.failed_connects += 1
        self.finish(reason, detail=detail)

    def _check_idle(self) -> None:
        timeout = self.hub.settings.idle_timeout
        assert timeout is not None  # noqa: S101
        idle = self.loop.time() - self.last_activity
        if idle >= timeout:
            # No traffic either way, so nothing is buffered: a plain close is a clean FIN.
            self.finish("idle-timeout")
        else:
            self._idle_handle = self.loop.call_later(timeout - idle, self._check_idle)

    def finish(self, reason: str, *, detail: str | None = None, abort: bool = False) -> None:
        """End the connection (idempotent): close both sockets, update counters, log once.

        ``close()`` still flushes what is buffered; ``abort`` (forced shutdown) drops it.
        """
        if self.finished:
            return
        self.finished = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        task = self._connect_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                if abort:
                    side.transport.abort()
                else:
                    side.transport.close()
        hub = self.hub
        hub.active -= 1
        hub.connections.discard(self)
        if hub.active == 0:
            hub.drained.set()
        duration = self.loop.time() - self.started
        level = logging.WARNING if reason.startswith("connect-") else logging.INFO
        hub.log.log(
            level,
            "closed conn=%d route=%s peer=%s upstream=%s bytes_up=%d bytes_down=%d "
            "duration=%.3f reason=%s%s",
            self.id, self.route, self.peer, self.upstream_address, self.bytes_up,
            self.bytes_down, duration, reason, f" detail={detail!r}" if detail else "",
            extra={
                "event": "closed", "conn": self.id, "route": str(self.route),
                "peer": self.peer, "upstream": self.upstream_address,
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                "duration": duration, "reason": reason,
            },
        )  # fmt: skip

    # --- events from the two sides -----------------------------------------------------------

    def relay(self, side: _Side, data: bytes) -> None:
        """Forward a chunk to the other side; the transport buffers what the socket refuses."""
        peer = side.peer
        assert peer is not None  # noqa: S101
        if peer.transport is not None:
            peer.transport.write(data)
        else:
            # Client bytes before the upstream is up: some loops (uvloop) start reading before
            # our pause in connection_made takes effect. Keep them, bounded, and pause again.
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= self.hub.settings.write_buffer_high and side.transport:
                side.transport.pause_reading()
        self.last_activity = self.loop.time()
        if side is self.client:
            self.bytes_up += len(data)
            self.hub.bytes_up += len(data)
        else:
            self.bytes_down += len(data)
            self.hub.bytes_down += len(data)

    def side_eof(self, side: _Side) -> None:
        """EOF from one side: half-close the other; finish once both directions are done."""
        side.eof = True
        self.last_activity = self.loop.time()
        peer = side.peer
        assert peer is not None  # noqa: S101
        if peer.eof:
            self.finish("eof")
        elif peer.transport is None:
            pass  # the client finished before the upstream is up: half-closed after connecting
        elif peer.transport is not None and peer.transport.can_write_eof():
            peer.transport.write_eof()  # sent after the buffered bytes
        else:
            self.finish(f"{side.name}-eof")

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        """A socket closed under us (reset, write to a closed peer): end the connection."""
        if exc is None:
            self.finish(f"{side.name}-closed")
        else:
            self.finish(f"{side.name}-error", detail=type(exc).__name__)
