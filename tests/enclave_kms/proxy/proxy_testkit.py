"""Helpers for the proxy tests: loopback upstreams, a proxy in front of them, clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from enclave_kms.proxy import Proxy, RelaySettings, Route

T = TypeVar("T")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run a test coroutine with an overall bound, so a hang fails instead of blocking CI."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


@contextlib.contextmanager
def short_socket_dir() -> Iterator[str]:
    """A short directory for unix sockets (sun_path is limited to 108 bytes)."""
    path = tempfile.mkdtemp(prefix="ekp-")
    try:
        yield path
    finally:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo everything; on EOF, send ``b"BYE"`` and close (so half-close is observable)."""
    while data := await reader.read(1 << 16):
        writer.write(data)
        await writer.drain()
    writer.write(b"BYE")
    await writer.drain()
    writer.close()


async def tcp_upstream(handler: Handler = echo) -> tuple[asyncio.Server, str]:
    """A loopback TCP server and its ``tcp:`` endpoint string."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"tcp:127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def start_proxy(
    upstream: str, *, listen: str = "tcp:127.0.0.1:0", **settings: Any
) -> tuple[Proxy, Any]:
    """A started proxy with one route; returns it and its bound listen address."""
    proxy = Proxy([Route.parse(f"{listen}={upstream}")], RelaySettings(**settings))
    await proxy.start()
    return proxy, proxy.addresses()[0]


async def connect(address: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a client connection to a proxy listener (tcp tuple or unix path)."""
    if isinstance(address, str):
        return await asyncio.open_unix_connection(address)
    return await asyncio.open_connection(address[0], address[1])


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Read until EOF; a reset counts as EOF (the proxy closed us)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while data := await reader.read(1 << 18):
            chunks.append(data)
    return b"".join(chunks)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the loop until true (state changes happen in callbacks)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def blackhole_listener() -> tuple[socket.socket, list[socket.socket], int]:
    """A loopback listener that never accepts, with its backlog filled: connects hang.

    Linux drops SYNs to a listener whose accept queue is full, so a further connect neither
    succeeds nor fails until its own timeout. Loopback only.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    return listener, fillers, port


def closed_port() -> int:
    """A loopback port with no listener (bound then closed): connects are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
