"""How both sides of `bench_quote` time a quote: ours in the project's venv, degenbot's in
its own. Standard library only, so that `degenbot_quote.py` can import it from its venv.
"""

from __future__ import annotations

import time
from collections.abc import Callable

REPEATS = 25
BATCH_SECONDS = 0.01


def per_call_us(quote: Callable[[int], object], base: int, *, distinct: bool) -> float:
    """Best of REPEATS batches, in µs of this process's CPU time per call (the machine
    is shared: wall time counts the others). `distinct`: every call quotes a new amount
    (base + a counter), so no memoized result can answer it."""
    counter = 0
    start = time.process_time()
    for _ in range(10):
        quote(base)
    once = max((time.process_time() - start) / 10, 1e-7)
    calls = max(20, int(BATCH_SECONDS / once))
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        for _ in range(calls):
            if distinct:
                counter += 1
            quote(base + counter)
        best = min(best, (time.process_time() - start) / calls)
    return best * 1e6
