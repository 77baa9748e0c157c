"""The scale benchmark's load generators: pre-signed requests on keep-alive sockets.

- :class:`PythonLoad` (the default): ``clients`` processes, each holding ``connections``
  sockets in one ``selectors`` loop, one request in flight per socket.
- :class:`WrkLoad`: the same requests replayed by wrk (C, epoll; ``bench/scale_wrk.lua``),
  ``clients`` threads over ``clients x connections`` sockets. It shows how much of the client's
  share of the cores is Python and how much is the kernel's loopback TCP, which any client
  on the same machine pays.

Both report every request's latency, the errors and their own CPU time, so the benchmark can
pool slices and say what the client took from the cores the server needed.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _servers import RawConnection

__all__ = ["LoadResult", "PythonLoad", "WrkLoad", "wrk_available"]

_WRK_SCRIPT = Path(__file__).resolve().parent / "scale_wrk.lua"


@dataclass
class LoadResult:
    latencies: list[float]  # seconds, one per completed request
    errors: int  # non-200 answers and socket errors
    cpu_s: float  # the client's user + system CPU seconds
    seconds: float  # how long the load ran


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _client(
    port: int, requests: list[bytes], conns: int, start: float, end: float, out: Any
) -> None:
    """One client process: ``conns`` sockets, each with one request in flight."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(conns):
        # Staggered, so that each accept can land on whichever worker is free: opened in one
        # burst, every socket tends to be accepted by the same worker.
        socks.append(RawConnection(port))
        time.sleep(0.02)
    latencies: list[float] = []
    errors = 0
    n = 0
    while time.time() < start:
        time.sleep(0.001)
    cpu0 = time.process_time()
    sent_at: dict[int, float] = {}
    for i, c in enumerate(socks):
        c.send(requests[(n + i) % len(requests)])
        sent_at[i] = time.perf_counter()
        sel.register(c.sock, selectors.EVENT_READ, i)
    n += conns
    while sel.get_map():
        for key, _ in sel.select(timeout=1):
            i = key.data
            c = socks[i]
            done = c.feed()
            if done is None:
                continue
            now = time.perf_counter()
            if time.time() <= end:
                latencies.append(now - sent_at[i])
                errors += done[0] != 200
                c.send(requests[n % len(requests)])
                n += 1
                sent_at[i] = now
            else:
                sel.unregister(c.sock)
    cpu = time.process_time() - cpu0
    for c in socks:
        c.close()
    out.put((latencies, errors, cpu))


class PythonLoad:
    """``clients`` forked processes of :func:`_client`, started together at one instant."""

    def __init__(
        self, port: int, requests: list[bytes], clients: int, connections: int, seconds: float
    ) -> None:
        ctx = mp.get_context("fork")
        self._out = ctx.Queue()
        # Time for every process to open its staggered sockets before the clock starts.
        self._start = time.time() + 0.3 + 0.02 * connections
        self._end = self._start + seconds
        self._seconds = seconds
        self._procs = [
            ctx.Process(
                target=_client,
                args=(port, requests, connections, self._start, self._end, self._out),
            )
            for _ in range(clients)
        ]

    def start(self) -> None:
        """Start the processes; return when the timed load begins."""
        for p in self._procs:
            p.start()
        while time.time() < self._start:
            time.sleep(0.001)

    def wait(self) -> None:
        """Return when the timed load ends."""
        time.sleep(max(0.0, self._end - time.time()))

    def result(self) -> LoadResult:
        results = [self._out.get(timeout=60) for _ in self._procs]
        for p in self._procs:
            p.join()
        return LoadResult(
            latencies=[x for r in results for x in r[0]],
            errors=sum(r[1] for r in results),
            cpu_s=sum(r[2] for r in results),
            seconds=self._seconds,
        )


class WrkLoad:
    """wrk with ``clients`` threads and ``clients x connections`` sockets.

    wrk takes whole seconds, so ``seconds`` is rounded (at least 1); the result carries the
    duration wrk measured.
    """

    def __init__(
        self, port: int, requests: list[bytes], clients: int, connections: int, seconds: float
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="enclave-kms-wrk-"))
        for k, request in enumerate(requests, 1):
            (self._dir / f"req{k}").write_bytes(request)
        self._argv = [
            "wrk", f"-t{clients}", f"-c{clients * connections}",
            f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(_WRK_SCRIPT),
            f"http://127.0.0.1:{port}/", "--", str(self._dir), str(len(requests)),
        ]  # fmt: skip
        self._proc: subprocess.Popen[str] | None = None
        self._stdout = ""

    def start(self) -> None:
        """Start wrk (it connects and begins at once)."""
        self._rusage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._proc = subprocess.Popen(self._argv, stdout=subprocess.PIPE, text=True)

    def wait(self) -> None:
        """Return when wrk has finished."""
        assert self._proc is not None
        self._stdout, _ = self._proc.communicate(timeout=600)
        self._rusage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._proc.returncode != 0:
            raise RuntimeError(f"wrk exited {self._proc.returncode}: {self._stdout[-500:]}")

    def result(self) -> LoadResult:
        # The last line is the script's JSON; wrk's own summary comes before it.
        report = json.loads(self._stdout.strip().splitlines()[-1])
        r0, r1 = self._rusage0, self._rusage1
        return LoadResult(
            latencies=[us / 1e6 for us, n in report["latency_us"] for _ in range(n)],
            errors=report["status_errors"] + report["socket_errors"],
            cpu_s=(r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
            seconds=report["duration_us"] / 1e6,
        )
