"""Shared by the in-process benchmarks: interleaved rates, so ratios survive a noisy machine."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["rates"]


def rates(
    fns: dict[str, Callable[[], object]], seconds: float, *, rounds: int = 15
) -> dict[str, float]:
    """Operations per second of each function: the best of many short, interleaved slices.

    Interleaving means a burst of load from other processes hits every measurement alike, so
    the ratios stay meaningful on a shared machine; the best slice is the least disturbed one.
    Each function is called once first, as a warm-up.
    """
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, 0.0)
    for _ in range(rounds):
        for name, fn in fns.items():
            n, start = 0, time.perf_counter()
            deadline = start + seconds / rounds / len(fns)
            while True:
                fn()
                n += 1
                now = time.perf_counter()
                if now >= deadline:
                    break
            best[name] = max(best[name], n / (now - start))
    return best
