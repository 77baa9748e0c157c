"""Every benchmark still runs: each is started with tiny sizes and must finish and print ratios.

Benchmarks are not timed here (timings never decide a test); this only keeps them from rotting
when the code they drive changes. They run side by side to keep the suite short.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

RUNS = {
    "verify.py": (["--seconds", "0.05"], "steady"),
    "core.py": (["--seconds", "0.05"], "everything else"),
    "formats.py": (["--iterations", "3"], "blob open"),
    "server.py": (["--requests", "12"], "ratio"),
    "proxy.py": (["--bulk-mib", "1", "--pings", "20", "--requests", "200", "--loop", "asyncio"],
                 "ratio"),
    "soak.py": (["--seconds", "3", "--interval", "1"], "RSS"),
    "scale.py": (["--seconds", "0.5", "--no-pg"], "worker"),
}  # fmt: skip


@pytest.mark.slow
def test_every_benchmark_runs_to_completion() -> None:
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(BENCH / name), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, (args, _) in RUNS.items()
    }
    failures = []
    for name, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            failures.append(f"{name}: did not finish\n{out[-2000:]}")
            continue
        expected = RUNS[name][1]
        if proc.returncode != 0 or expected.lower() not in out.lower():
            failures.append(f"{name}: exit {proc.returncode}, no {expected!r}\n{out[-2000:]}")
    assert not failures, "\n\n".join(failures)
