"""The vectorized closed-form screen of many cycles at once.

Hops compose as Möbius maps: `(K1, M1, N1) ∘ (K2, M2, N2) = (K1·K2, M1·M2, M2·N1 + N2·K1)`.
For a cycle `f(x) = K·x / (M + N·x)` the profit `f(x) − x` is maximal at
`x* = (√(K·M) − M) / N`, positive only when `K > M`. Concentrated hops are capped: the
input is clipped so that no hop receives more than its `cap` (the amount that reaches
the current tick range's boundary). No Python loop runs per cycle.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from pathfinder.cycle_graph import MAX_HOPS, CycleGraph
from pathfinder.hop_params import FloatArray, HopParams


class ScreenResult(NamedTuple):
    cycles: npt.NDArray[np.int64]  # the cycle ids screened (usable ones only)
    amount_in: FloatArray  # optimal input, start-token units
    profit: FloatArray  # f(amount_in) - amount_in, start-token units


# Cycles per pass: the ~20 temporaries of a pass stay in the CPU cache.
CHUNK: Final = 16384


def screen(graph: CycleGraph, params: HopParams, cycles: npt.NDArray[np.int64]) -> ScreenResult:
    """Optimal input and profit of every given cycle whose pools are all usable."""
    count = len(cycles)
    amount_in: FloatArray = np.empty(count)
    profit: FloatArray = np.empty(count)
    usable: npt.NDArray[np.bool_] = np.empty(count, np.bool_)
    # Flat views indexed by hop slot `2·pool + direction`; a missing hop (NO_POOL, -1)
    # gives slot -1 or -2, which is the identity row: the last one.
    flat = (
        params.m.reshape(-1),
        params.k.reshape(-1),
        params.n.reshape(-1),
        params.cap.reshape(-1),
    )
    for start in range(0, count, CHUNK):
        part = slice(start, start + CHUNK)
        usable[part], amount_in[part], profit[part] = _screen_part(
            graph, params, flat, cycles[part]
        )
    if not usable.all():
        cycles, amount_in, profit = cycles[usable], amount_in[usable], profit[usable]
    return ScreenResult(cycles, amount_in, profit)


def _screen_part(
    graph: CycleGraph,
    params: HopParams,
    flat: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    cycles: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
    # take(axis=0) gathers whole rows, several times faster than graph.pools[cycles].
    slots = np.take(graph.pools, cycles, axis=0).astype(np.int64)
    slots *= 2
    slots += ~np.take(graph.zero_for_one, cycles, axis=0)
    hop_slots = slots.T  # (hop, cycle): each hop's column contiguous after the takes
    usable: npt.NDArray[np.bool_] = np.logical_and.reduce(
        np.take(params.usable, hop_slots >> 1), axis=0
    )
    m, k, n, cap = (np.take(values, hop_slots) for values in flat)

    ck, cm, cn = k[0], m[0], n[0]
    # bound: the largest cycle input for which every hop's input stays within its cap.
    # An infinite cap gives a non-positive or NaN denominator, hence no bound.
    bound = cap[0].copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for h in range(1, MAX_HOPS):
            denominator = ck - cn * cap[h]
            reach = np.full_like(bound, np.inf)
            np.divide(cm * cap[h], denominator, out=reach, where=denominator > 0)
            np.minimum(bound, reach, out=bound)
            ck, cm, cn = ck * k[h], cm * m[h], m[h] * cn + n[h] * ck
        optimum = (np.sqrt(ck * cm) - cm) / cn
        x = np.minimum(optimum, bound)
        good = (ck > cm) & (x > 0) & np.isfinite(x)
        amount_in: FloatArray = np.where(good, x, 0.0)
        x = amount_in
        profit: FloatArray = np.where(good, ck * x / (cm + cn * x) - x, 0.0)
    return usable, amount_in, profit


def top_candidates(result: ScreenResult, k: int, min_profit: FloatArray | float) -> ScreenResult:
    """The best `k` cycles by screened profit above `min_profit` (per cycle or scalar)."""
    keep = result.profit > min_profit
    idx = np.flatnonzero(keep)
    if len(idx) > k:
        part = np.argpartition(result.profit[idx], -k)[-k:]
        idx = idx[part]
    idx = idx[np.argsort(-result.profit[idx], kind="stable")]
    return ScreenResult(result.cycles[idx], result.amount_in[idx], result.profit[idx])
