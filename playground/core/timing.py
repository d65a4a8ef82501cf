"""Timing through `torch.utils.benchmark` (warm-up, repeated blocks, median), for speed probes and
benchmarks. Never used for pass/fail in tests.

`torch.utils.benchmark.Timer` runs on one thread unless told otherwise; we give it the process's
thread count, so the figure is what a user of this process sees.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils import benchmark


def median_seconds(fn: Callable[[], object], *, min_run_time: float = 0.3, warmup: int = 1) -> float:
    """Median seconds of one call of `fn()` after `warmup` calls (blocked_autorange)."""
    for _ in range(warmup):
        fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)
