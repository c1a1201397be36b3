"""Timing helper shared by the benchmarks (pytest puts this folder on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def min_time(fn: Callable[[], object], rounds: int) -> float:
    """Best wall time of ``rounds`` calls: the minimum is the least noisy statistic on a shared machine."""
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
