"""Benchmark of the parent proxy against a direct TCP connection, on loopback.

Usage: ``python bench/proxy.py [--bulk-mib 256] [--pings 2000] [--requests 20000]
[--loop asyncio|uvloop|both]``.

The proxy runs in its own process (``--serve-proxy``, as in production) and relays to sinks
run by this process; the same clients then talk to the sinks directly and through the proxy:

* throughput: one connection sends ``--bulk-mib`` MiB to a sink that discards it (MB/s);
* latency: sequential 64-byte request/response round trips (p50/p99, microseconds);
* request rate: round trips over 1, 10 and 100 concurrent connections (requests/s).

Targets: proxy throughput >= 0.7x direct; no collapse at 100 concurrent connections. The client
and sinks share one process, so on a small machine they compete with the proxy for CPU: the
ratios are a lower bound on what the proxy alone would show.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enclave_kms.proxy import Proxy, RelaySettings, Route

MESSAGE = b"x" * 64
CHUNK = b"\0" * (1 << 20)


# --- sinks (this process) ----------------------------------------------------------------------


class _Discard(asyncio.Protocol):
    """Counts and drops bytes; answers ``ok`` at EOF."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.received = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)

    def eof_received(self) -> bool:
        self.transport.write(b"ok")  # type: ignore[attr-defined]
        self.transport.close()
        return True


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


# --- clients -----------------------------------------------------------------------------------


async def bulk(port: int, total: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        writer.write(CHUNK)
        sent += len(CHUNK)
        await writer.drain()
    writer.write_eof()
    assert await reader.read() == b"ok"
    elapsed = time.perf_counter() - start
    writer.close()
    return total / elapsed / 1e6


async def pings(port: int, count: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        writer.write(MESSAGE)
        await reader.readexactly(len(MESSAGE))
        samples.append(time.perf_counter() - start)
    writer.close()
    return samples


async def rate(port: int, connections: int, requests: int) -> float:
    per_connection = max(1, requests // connections)

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(per_connection):
            writer.write(MESSAGE)
            await reader.readexactly(len(MESSAGE))
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return per_connection * connections / (time.perf_counter() - start)


# --- the proxy process -------------------------------------------------------------------------


def serve_proxy(loop_name: str, upstreams: list[int]) -> None:
    """Child process: relay 127.0.0.1:0 -> each upstream port; print the bound ports."""
    if loop_name == "uvloop":
        import uvloop

        uvloop.install()

    async def main() -> None:
        routes = [Route.parse(f"tcp:127.0.0.1:0=tcp:127.0.0.1:{port}") for port in upstreams]
        proxy = Proxy(routes, RelaySettings(max_connections=10_000, idle_timeout=None))
        await proxy.start()
        print(" ".join(str(address[1]) for address in proxy.addresses()), flush=True)  # type: ignore[index]
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await proxy.shutdown(drain_timeout=1)

    asyncio.run(main())


@contextlib.contextmanager
def proxy_process(loop_name: str, upstreams: list[int]):  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-proxy", loop_name, *map(str, upstreams)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield [int(port) for port in process.stdout.readline().split()]
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


# --- report ------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


async def measure(args: argparse.Namespace, loop_name: str) -> None:
    loop = asyncio.get_running_loop()
    discard = await loop.create_server(_Discard, "127.0.0.1", 0)
    echo = await loop.create_server(_Echo, "127.0.0.1", 0)
    sink_ports = [discard.sockets[0].getsockname()[1], echo.sockets[0].getsockname()[1]]
    total = args.bulk_mib << 20
    with proxy_process(loop_name, sink_ports) as (proxy_bulk, proxy_echo):
        print(f"\n== proxy event loop: {loop_name}")
        direct = await bulk(sink_ports[0], total)
        proxied = await bulk(proxy_bulk, total)
        print(
            f"throughput ({args.bulk_mib} MiB): direct {direct:8.1f} MB/s   proxy "
            f"{proxied:8.1f} MB/s   ratio {proxied / direct:.2f}x (target >= 0.70)"
        )
        d, p = await pings(sink_ports[1], args.pings), await pings(proxy_echo, args.pings)
        print(
            f"latency ({args.pings} round trips, us): direct p50 {percentile(d, 0.5):6.1f} "
            f"p99 {percentile(d, 0.99):6.1f}   proxy p50 {percentile(p, 0.5):6.1f} "
            f"p99 {percentile(p, 0.99):6.1f}   added p50 "
            f"{percentile(p, 0.5) - percentile(d, 0.5):6.1f}"
        )
        single = None
        for connections in (1, 10, 100):
            rd = await rate(sink_ports[1], connections, args.requests)
            rp = await rate(proxy_echo, connections, args.requests)
            single = single or rp
            print(
                f"request rate, {connections:3d} connections: direct {rd:9.0f}/s   proxy "
                f"{rp:9.0f}/s   ratio {rp / rd:.2f}x   proxy vs 1 conn {rp / single:.2f}x"
            )
    discard.close()
    echo.close()


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-proxy":
        serve_proxy(sys.argv[2], [int(port) for port in sys.argv[3:]])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bulk-mib", type=int, default=256, choices=range(1, 1025),
                        metavar="1..1024")  # fmt: skip
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "both"], default="both")
    args = parser.parse_args()
    loops = ["asyncio", "uvloop"] if args.loop == "both" else [args.loop]
    if "uvloop" in loops:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("uvloop is not installed: measuring the asyncio loop only")
            loops.remove("uvloop")
    print(f"machine: {machine()}")
    print("clients and sinks: this process (asyncio); proxy: a separate process")
    for loop_name in loops:
        asyncio.run(measure(args, loop_name))


if __name__ == "__main__":
    main()
