"""Event orders some loops produce: client bytes arriving around the upstream's creation.

uvloop delivers reads between a transport's ``connection_made`` and the resumption of the
``create_connection`` coroutine; these tests replay such orders with recording transports,
so they hold on any loop, deterministically.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from enclave_kms.proxy import RelaySettings, Route
from enclave_kms.proxy._connection import Hub
from enclave_kms.proxy._resolver import Resolver


class RecordingTransport(asyncio.Transport):
    """A transport that records what is done to it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(bytes(data))

    def write_eof(self) -> None:
        self.events.append("eof")

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.events.append("close")


def replay(script: str) -> tuple[list[Any], list[Any]]:
    """Run one event order on a fresh connection; return (client, upstream) transport events.

    ``script`` letters: ``d`` client data, ``u`` upstream connection made, ``e`` client EOF,
    ``s`` shutdown. The connect task is cancelled up front, since the test plays its part.
    """

    async def scenario() -> tuple[list[Any], list[Any]]:
        settings = RelaySettings()
        hub = Hub(settings, Resolver(), logging.getLogger("test.proxy"))
        side = hub.new_connection(Route.parse("tcp:127.0.0.1:1=tcp:127.0.0.1:2"))
        conn = side.conn
        client, upstream = RecordingTransport(), RecordingTransport()
        side.connection_made(client)
        assert conn._connect_task is not None
        conn._connect_task.cancel()
        chunks = iter([b"one", b"two", b"three", b"four", b"five"])
        for step in script:
            if step == "d":
                side.data_received(next(chunks))
            elif step == "u":
                conn.upstream.connection_made(upstream)
            elif step == "e":
                side.eof_received()
            elif step == "s":
                conn.finish("shutdown")
        return client.events, upstream.events

    return asyncio.run(scenario())


def test_bytes_before_the_upstream_go_first_then_later_bytes_follow() -> None:
    client, upstream = replay("dduddd")
    assert upstream == [b"onetwo", b"three", b"four", b"five"]
    assert client == ["pause", "resume"]


def test_eof_before_the_upstream_half_closes_after_the_pending_bytes() -> None:
    _, upstream = replay("ddeu")
    assert upstream == [b"onetwo", "eof"]


def test_eof_right_after_the_upstream_is_up_follows_the_pending_bytes() -> None:
    _, upstream = replay("dude")
    assert upstream == [b"one", b"two", "eof"]


def test_an_upstream_made_after_shutdown_is_closed_not_leaked() -> None:
    client, upstream = replay("dsu")
    assert upstream == ["close"]
    assert "close" in client
