"""The asyncio relay over TCP and unix sockets on loopback (vsock is absent in CI)."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from proxy_testkit import (
    blackhole_listener,
    closed_port,
    connect,
    echo,
    read_all,
    run,
    short_socket_dir,
    start_proxy,
    tcp_upstream,
    wait_until,
)

from enclave_kms.proxy import Proxy, ProxyConfigError, RelaySettings, Route


def test_relays_both_directions_and_half_close() -> None:
    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream)
        reader, writer = await connect(address)
        writer.write(b"hello")
        writer.write_eof()  # the client is done sending ...
        # ... and still receives everything the upstream sends after seeing that EOF.
        assert await read_all(reader) == b"helloBYE"
        writer.close()
        await wait_until(lambda: proxy.stats().active == 0)
        stats = await proxy.shutdown()
        assert (stats.total, stats.bytes_up, stats.bytes_down) == (1, 5, 8)
        server.close()

    run(scenario())


def test_half_close_request_then_reply() -> None:
    """A server that answers only after the request's EOF (vsock-proxy tears this down)."""

    async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # until EOF
        await asyncio.sleep(0.05)  # the reply comes after the client's half-close
        writer.write(b"reply to " + request)
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        server, upstream = await tcp_upstream(answer_after_eof)
        proxy, address = await start_proxy(upstream)
        reader, writer = await connect(address)
        writer.write(b"request")
        await writer.drain()
        writer.write_eof()
        assert await read_all(reader) == b"reply to request"
        writer.close()
        await proxy.shutdown()
        server.close()

    run(scenario())


def test_large_transfer_both_ways_is_byte_exact() -> None:
    payload = os.urandom(1 << 20) * 12  # 12 MiB, more than every buffer on the path

    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream)
        reader, writer = await connect(address)
        receiving = asyncio.create_task(read_all(reader))
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        assert await receiving == payload + b"BYE"
        writer.close()
        await wait_until(lambda: proxy.stats().active == 0)
        stats = await proxy.shutdown()
        assert stats.bytes_up == len(payload)
        assert stats.bytes_down == len(payload) + 3
        server.close()

    run(scenario())


def test_many_concurrent_connections() -> None:
    async def one(address: object, index: int) -> None:
        reader, writer = await connect(address)
        message = f"connection {index} ".encode() * 2000
        writer.write(message)
        writer.write_eof()
        assert await read_all(reader) == message + b"BYE"
        writer.close()

    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream)
        await asyncio.gather(*(one(address, i) for i in range(100)))
        await wait_until(lambda: proxy.stats().active == 0)
        stats = await proxy.shutdown()
        assert (stats.total, stats.refused, stats.failed_connects) == (100, 0, 0)
        server.close()

    run(scenario())


def test_unix_listener_and_unix_upstream() -> None:
    async def scenario(directory: str) -> None:
        upstream_path = os.path.join(directory, "up.sock")
        server = await asyncio.start_unix_server(echo, upstream_path)
        inbound = os.path.join(directory, "in.sock")
        proxy, address = await start_proxy(f"unix:{upstream_path}", listen=f"unix:{inbound}")
        assert address == inbound
        reader, writer = await connect(address)
        writer.write(b"over unix")
        writer.write_eof()
        assert await read_all(reader) == b"over unixBYE"
        writer.close()
        await proxy.shutdown()
        assert not os.path.exists(inbound)  # the listener's socket file is removed
        server.close()

    with short_socket_dir() as directory:
        run(scenario(directory))


def test_connection_cap_refuses_immediately_and_counts() -> None:
    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream, max_connections=2)
        held = []
        for _ in range(2):
            reader, writer = await connect(address)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"  # admitted and relaying
            held.append((reader, writer))
        reader, writer = await connect(address)
        assert await read_all(reader) == b""  # closed at once, not queued
        writer.close()
        stats = proxy.stats()
        assert (stats.active, stats.total, stats.refused) == (2, 2, 1)
        held[0][1].close()  # a slot frees up, and the next connection is served
        await wait_until(lambda: proxy.stats().active == 1)
        reader, writer = await connect(address)
        writer.write(b"again")
        assert await reader.readexactly(5) == b"again"
        writer.close()
        held[1][1].close()
        await proxy.shutdown()
        server.close()

    run(scenario())


def test_connect_timeout_to_blackholed_upstream(caplog: pytest.LogCaptureFixture) -> None:
    listener, fillers, port = blackhole_listener()

    async def scenario() -> None:
        proxy, address = await start_proxy(f"tcp:127.0.0.1:{port}", connect_timeout=0.3)
        reader, writer = await connect(address)
        assert await read_all(reader) == b""  # a clean close, not a hang
        writer.close()
        await wait_until(lambda: proxy.stats().failed_connects == 1)
        await proxy.shutdown()

    caplog.set_level(logging.INFO, logger="enclave_kms.proxy")
    try:
        run(scenario())
    finally:
        for sock in (*fillers, listener):
            sock.close()
    assert "reason=connect-timeout" in caplog.text


def test_idle_timeout_closes_quiet_connections(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream, idle_timeout=0.3)
        reader, writer = await connect(address)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        assert await read_all(reader) == b""  # then silence until the proxy closes it
        writer.close()
        await wait_until(lambda: proxy.stats().active == 0)
        await proxy.shutdown()
        server.close()

    caplog.set_level(logging.INFO, logger="enclave_kms.proxy")
    run(scenario())
    assert "reason=idle-timeout" in caplog.text


def test_refused_upstream_closes_client_and_proxy_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        server, live = await tcp_upstream(echo)
        dead = f"tcp:127.0.0.1:{closed_port()}"
        proxy = Proxy(
            [Route.parse(f"tcp:127.0.0.1:0={dead}"), Route.parse(f"tcp:127.0.0.1:0={live}")]
        )
        await proxy.start()
        dead_address, live_address = proxy.addresses()
        for _ in range(3):
            reader, writer = await connect(dead_address)
            assert await read_all(reader) == b""
            writer.close()
        reader, writer = await connect(live_address)
        writer.write(b"still here")
        writer.write_eof()
        assert await read_all(reader) == b"still hereBYE"
        writer.close()
        await wait_until(lambda: proxy.stats().active == 0)
        stats = await proxy.shutdown()
        assert (stats.total, stats.failed_connects) == (4, 3)
        server.close()

    caplog.set_level(logging.INFO, logger="enclave_kms.proxy")
    run(scenario())
    assert caplog.text.count("reason=connect-failed") == 3


def test_upstream_closing_mid_stream() -> None:
    async def partial(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(3)
        writer.write(b"partial")
        await writer.drain()
        writer.close()  # gone before the client is done

    async def scenario() -> None:
        server, upstream = await tcp_upstream(partial)
        proxy, address = await start_proxy(upstream)
        reader, writer = await connect(address)
        writer.write(b"abc")
        assert await read_all(reader) == b"partial"  # what was sent, then EOF
        writer.close()
        await wait_until(lambda: proxy.stats().active == 0)
        await proxy.shutdown()
        server.close()

    run(scenario())


def test_graceful_shutdown_drains_open_connections() -> None:
    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream)
        reader, writer = await connect(address)
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        shutting_down = asyncio.create_task(proxy.shutdown(drain_timeout=10))
        await asyncio.sleep(0.05)
        with pytest.raises(OSError):  # no longer accepting
            await connect(address)
        assert not shutting_down.done()  # waiting for the open connection
        writer.write(b"during")
        writer.write_eof()
        assert await read_all(reader) == b"duringBYE"
        writer.close()
        stats = await shutting_down
        assert (stats.active, stats.total) == (0, 1)
        server.close()

    run(scenario())


def test_shutdown_closes_what_does_not_drain_in_time(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream)
        reader, writer = await connect(address)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        stats = await proxy.shutdown(drain_timeout=0.2)
        assert stats.active == 0
        assert await read_all(reader) == b""
        writer.close()
        server.close()

    caplog.set_level(logging.INFO, logger="enclave_kms.proxy")
    run(scenario())
    assert "reason=shutdown" in caplog.text


def test_per_connection_log_record(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream)
        reader, writer = await connect(address)
        writer.write(b"12345")
        writer.write_eof()
        await read_all(reader)
        writer.close()
        await wait_until(lambda: proxy.stats().active == 0)
        await proxy.shutdown()
        server.close()

    caplog.set_level(logging.INFO, logger="enclave_kms.proxy")
    run(scenario())
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "closed"]
    assert record.bytes_up == 5  # type: ignore[attr-defined]
    assert record.bytes_down == 8  # type: ignore[attr-defined]
    assert record.reason == "eof"  # type: ignore[attr-defined]
    assert record.peer.startswith("127.0.0.1:")  # type: ignore[attr-defined]
    assert record.upstream.startswith("127.0.0.1:")  # type: ignore[attr-defined]
    assert "conn=1 " in record.getMessage()


def test_listen_failure_is_a_clear_config_error() -> None:
    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        port = server.sockets[0].getsockname()[1]
        proxy = Proxy([Route.parse(f"tcp:127.0.0.1:{port}={upstream}")])
        with pytest.raises(ProxyConfigError, match=f"cannot listen on tcp:127.0.0.1:{port}"):
            await proxy.start()
        server.close()

    run(scenario())


@pytest.mark.parametrize(
    "settings",
    [
        {"max_connections": 0},
        {"connect_timeout": 0},
        {"idle_timeout": 0},
        {"drain_timeout": -1},
        {"family": 12345},
    ],
)
def test_invalid_settings_are_rejected(settings: dict[str, float]) -> None:
    with pytest.raises(ProxyConfigError):
        RelaySettings(**settings)  # type: ignore[arg-type]


def test_relay_under_uvloop() -> None:
    """uvloop starts reading before connection_made's pause: early bytes must not be lost."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        server, upstream = await tcp_upstream(echo)
        proxy, address = await start_proxy(upstream)
        payload = os.urandom(3 << 20)
        reader, writer = await connect(address)
        writer.write(payload)  # sent at once, before the upstream connection exists
        writer.write_eof()
        assert await read_all(reader) == payload + b"BYE"
        writer.close()
        await wait_until(lambda: proxy.stats().active == 0)
        await proxy.shutdown()
        server.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(scenario(), 20))
