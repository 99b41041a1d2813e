"""The vectorized closed-form screen of many cycles at once.

Hops compose as Möbius maps: `(K1, M1, N1) ∘ (K2, M2, N2) = (K1·K2, M1·M2, M2·N1 + N2·K1)`.
For a cycle `f(x) = K·x / (M + N·x)` the profit `f(x) − x` is maximal at
`x* = (√(K·M) − M) / N`, positive only when `K > M`. Concentrated hops are capped: the
input is clipped so that no hop receives more than its `cap` (the amount that reaches
the current tick range's boundary). No Python loop runs per cycle.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from pathfinder.cycle_graph import MAX_HOPS, NO_POOL, CycleGraph
from pathfinder.hop_params import FloatArray, HopParams


class ScreenResult(NamedTuple):
    cycles: npt.NDArray[np.int64]  # the cycle ids screened (usable ones only)
    amount_in: FloatArray  # optimal input, start-token units
    profit: FloatArray  # f(amount_in) - amount_in, start-token units


def screen(graph: CycleGraph, params: HopParams, cycles: npt.NDArray[np.int64]) -> ScreenResult:
    """Optimal input and profit of every given cycle whose pools are all usable."""
    pools = graph.pools[cycles].astype(np.int64)
    direction = (~graph.zero_for_one[cycles]).astype(np.int64)
    rows = np.where(pools == NO_POOL, params.identity_row, pools)
    ok = params.usable[rows].all(axis=1)
    if not ok.all():
        cycles, rows, direction = cycles[ok], rows[ok], direction[ok]
    m = params.m[rows, direction]
    k = params.k[rows, direction]
    n = params.n[rows, direction]
    cap = params.cap[rows, direction]

    # bound[:, h]: the largest cycle input for which hop h's input stays within its cap
    bound = np.empty_like(cap)
    ck, cm, cn = k[:, 0].copy(), m[:, 0].copy(), n[:, 0].copy()
    bound[:, 0] = cap[:, 0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for h in range(1, MAX_HOPS):
            denominator = ck - cn * cap[:, h]
            reach = np.where(denominator > 0, cm * cap[:, h] / denominator, np.inf)
            bound[:, h] = np.where(np.isfinite(cap[:, h]), reach, np.inf)
            ck, cm, cn = ck * k[:, h], cm * m[:, h], m[:, h] * cn + n[:, h] * ck
        optimum = (np.sqrt(ck * cm) - cm) / cn
        x = np.minimum(optimum, bound.min(axis=1))
        x = np.where((ck > cm) & (x > 0) & np.isfinite(x), x, 0.0)
        profit = ck * x / (cm + cn * x) - x
    profit = np.where(x > 0, profit, 0.0)
    return ScreenResult(cycles, x, profit)


def top_candidates(result: ScreenResult, k: int, min_profit: FloatArray | float) -> ScreenResult:
    """The best `k` cycles by screened profit above `min_profit` (per cycle or scalar)."""
    keep = result.profit > min_profit
    idx = np.flatnonzero(keep)
    if len(idx) > k:
        part = np.argpartition(result.profit[idx], -k)[-k:]
        idx = idx[part]
    idx = idx[np.argsort(-result.profit[idx], kind="stable")]
    return ScreenResult(result.cycles[idx], result.amount_in[idx], result.profit[idx])
