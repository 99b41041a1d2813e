"""Per-pool, per-direction Möbius parameters for the vectorized screen.

A swap hop maps an input x to `K·x / (M + N·x)`. A V2 pool is exactly that with
`M = reserve_in`, `K = γ·reserve_out`, `N = γ` (γ = 1 − fee). A V3/V4 pool is that over
its in-range virtual reserves (`L/√P` and `L·√P`), valid up to `cap`: the input that
moves the price to the current tick range's boundary. A Curve StableSwap-NG pool's row
is a map that never promises more than the pool pays, up to its cap (`curve_hop`). Rows
are refreshed only for the pools a block changed. Direction 0 is zero_for_one (token0
in), direction 1 the other.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final, final

import numpy as np
import numpy.typing as npt

from arena.engine import ArenaEngine, PoolStatus
from arena.registry import PoolKind
from arena.state_table import limbs_to_float
from pathfinder.balancer_hops import balancer_mobius
from pathfinder.coin_pair_edges import PairEdge
from pathfinder.curve_hop import read_curve, screen_row
from pathfinder.tick_math import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick

Q96: Final = float(1 << 96)
DEFAULT_V2_FEE: Final = 3000  # hundredths of a bip: 0.3 %
# The caps stop this far (relative to the boundary's virtual reserve) short of the range
# boundary: float64 prices carry ~1e-16 relative error, and an input that crossed the
# boundary by a hair can meet no liquidity at all on the other side.
CAP_MARGIN: Final = 1e-12
FloatArray = npt.NDArray[np.float64]


def sqrt_price_at_tick(ticks: npt.NDArray[np.int64]) -> FloatArray:
    """√price of each tick, from TickMath's exact sqrt ratio (1.0001**(t/2) in float64
    is off by up to ~1e-11 at the far ticks, enough to put a cap past its boundary)."""
    return np.array([get_sqrt_ratio_at_tick(t) for t in ticks.tolist()], np.float64) / Q96


@final
class HopParams:
    """Arrays `m, k, n, cap` of shape (pools + 1, 2); the last row is the identity hop."""

    def __init__(self, capacity: int = 1024) -> None:
        self.m: FloatArray = np.ones((0, 2))
        self.k: FloatArray = np.ones((0, 2))
        self.n: FloatArray = np.zeros((0, 2))
        self.cap: FloatArray = np.full((0, 2), np.inf)
        self.usable: npt.NDArray[np.bool_] = np.zeros(0, np.bool_)
        self._ticks_cache: dict[int, tuple[int, list[int]]] = {}
        # pool -> (tick-map version, lower tick, upper tick, √P at lower, √P at upper):
        # valid while the map is unchanged and the price stays in [lower, upper).
        self._range_cache: dict[int, tuple[int, int, int, float, float]] = {}
        self._fees: FloatArray = np.zeros(0)
        self._fees_version = -1
        self._resize(capacity)

    @property
    def identity_row(self) -> int:
        return len(self.usable) - 1

    def _resize(self, pools: int) -> None:
        old = len(self.usable) - 1 if len(self.usable) else 0
        size = pools + 1
        m, k = np.ones((size, 2)), np.ones((size, 2))
        n, cap = np.zeros((size, 2)), np.full((size, 2), np.inf)
        usable = np.zeros(size, np.bool_)
        if old:
            m[:old], k[:old], n[:old] = self.m[:old], self.k[:old], self.n[:old]
            cap[:old], usable[:old] = self.cap[:old], self.usable[:old]
        usable[-1] = True
        self.m, self.k, self.n, self.cap, self.usable = m, k, n, cap, usable

    def ensure_rows(self, rows: int) -> None:
        """Room for edge ids below `rows` (besides the identity row)."""
        if rows + 1 > len(self.usable):
            self._resize(max(rows, 2 * (len(self.usable) - 1)))

    def refresh_pairs(self, engine: ArenaEngine, edges: list[PairEdge]) -> None:
        """Recompute the rows of multi-coin pools' extra pair edges."""
        if not edges:
            return
        self.ensure_rows(max(e.edge for e in edges) + 1)
        status, active = engine.status, engine.registry.active
        for e in edges:
            self.usable[e.edge] = status[e.pool] == PoolStatus.LIVE and active[e.pool]
        kind_of = engine.registry.kind_of
        rows = [(e.edge, e.pool, (e.token0, e.token1)) for e in edges]
        balancer = [r for r in rows if kind_of(r[1]) is PoolKind.BALANCER_WEIGHTED]
        self._set_balancer(engine, balancer)
        self._set_curve(
            engine, [r for r in rows if kind_of(r[1]) is not PoolKind.BALANCER_WEIGHTED]
        )

    def refresh(self, engine: ArenaEngine, indices: npt.NDArray[np.int64]) -> None:
        """Recompute the rows of `indices` (registry indices) from the arena's state."""
        pools = len(engine.registry)
        self.ensure_rows(pools)
        if not len(indices):
            return
        kinds = engine.registry.kind[indices]
        live = (engine.status[indices] == PoolStatus.LIVE) & engine.registry.active[indices]
        self.usable[indices] = live
        records = engine.table.gather(indices)
        gamma = 1.0 - self._fee_array(engine)[indices] / 1e6
        v2 = kinds == PoolKind.V2
        if v2.any():
            self._set_v2(indices[v2], records[v2], gamma[v2])
        concentrated = (kinds == PoolKind.V3) | (kinds == PoolKind.V4)
        if concentrated.any():
            self._set_concentrated(
                engine, indices[concentrated], records[concentrated], gamma[concentrated]
            )
        curve = kinds == PoolKind.CURVE_STABLE
        if curve.any():
            listed = engine.registry.pools
            self._set_curve(
                engine,
                [
                    (i, i, (listed[i].token0.address, listed[i].token1.address))
                    for i in indices[curve].tolist()
                ],
            )
        balancer = kinds == PoolKind.BALANCER_WEIGHTED
        if balancer.any():
            listed = engine.registry.pools
            self._set_balancer(
                engine,
                [
                    (i, i, (listed[i].token0.address, listed[i].token1.address))
                    for i in indices[balancer].tolist()
                ],
            )
        self.usable[indices[~(v2 | concentrated | curve | balancer)]] = False  # no screen row

    def _set_curve(
        self, engine: ArenaEngine, edges: list[tuple[int, int, tuple[bytes, bytes]]]
    ) -> None:
        """Rows of Curve edges: (edge id, pool index, (token0, token1) of the edge)."""
        coins = engine.coins
        for edge, index, tokens in edges:
            state = coins.state(index)
            read = None if state is None else read_curve(state, tokens, coins.clock)
            rows = [None, None] if read is None else [screen_row(read, z) for z in (True, False)]
            for direction, row in enumerate(rows):
                if row is None:
                    self.usable[edge] = False
                    continue
                self.k[edge, direction], self.m[edge, direction] = row.k, row.m
                self.n[edge, direction], self.cap[edge, direction] = row.n, row.cap

    def _set_balancer(
        self, engine: ArenaEngine, edges: list[tuple[int, int, tuple[bytes, bytes]]]
    ) -> None:
        """Rows of Balancer weighted-pool edges (`balancer_hops`): (edge id, pool index,
        (token0, token1) of the edge)."""
        for edge, index, (token0, token1) in edges:
            state = engine.coins.state(index)
            a = state.coin_index(token0) if state is not None else None
            b = state.coin_index(token1) if state is not None else None
            hops = (
                (balancer_mobius(state, a, b), balancer_mobius(state, b, a))
                if state is not None and a is not None and b is not None
                else (None, None)
            )
            for direction, hop in enumerate(hops):
                if hop is None:
                    self.usable[edge] = False
                    continue
                self.m[edge, direction], self.k[edge, direction] = hop.m, hop.k
                self.n[edge, direction], self.cap[edge, direction] = hop.n, hop.cap

    def _set_v2(self, idx: npt.NDArray[np.int64], rec: npt.NDArray[np.void], g: FloatArray) -> None:
        r0 = limbs_to_float(rec["reserve0"], 16)
        r1 = limbs_to_float(rec["reserve1"], 16)
        self.m[idx, 0], self.k[idx, 0], self.n[idx, 0] = r0, g * r1, g
        self.m[idx, 1], self.k[idx, 1], self.n[idx, 1] = r1, g * r0, g
        self.cap[idx] = np.inf
        self.usable[idx] &= (r0 > 0) & (r1 > 0)

    def _set_concentrated(
        self,
        engine: ArenaEngine,
        idx: npt.NDArray[np.int64],
        rec: npt.NDArray[np.void],
        g: FloatArray,
    ) -> None:
        s = limbs_to_float(rec["sqrt_price_x96"], 32) / Q96
        liq = limbs_to_float(rec["liquidity"], 16)
        s_lo, s_hi = self._range_sqrt_prices(engine, idx, rec["tick"].astype(np.int64))
        with np.errstate(divide="ignore", invalid="ignore"):
            x_virtual, y_virtual = liq / s, liq * s
            self.m[idx, 0], self.k[idx, 0], self.n[idx, 0] = x_virtual, g * y_virtual, g
            self.m[idx, 1], self.k[idx, 1], self.n[idx, 1] = y_virtual, g * x_virtual, g
            to_lower = liq * (1.0 / s_lo - 1.0 / s) - CAP_MARGIN * liq / s_lo
            to_upper = liq * (s_hi - s) - CAP_MARGIN * liq * s_hi
            self.cap[idx, 0] = np.maximum(to_lower, 0.0) / g
            self.cap[idx, 1] = np.maximum(to_upper, 0.0) / g
        self.usable[idx] &= (liq > 0) & (s > 0)

    def _fee_array(self, engine: ArenaEngine) -> FloatArray:
        """Every pool's fee in pips, rebuilt when the registry changes."""
        registry = engine.registry
        if self._fees_version != registry.version or len(self._fees) != len(registry):
            fees = [_fee_of(engine, i) for i in range(len(registry))]
            self._fees = np.array(fees, dtype=np.float64)
            self._fees_version = registry.version
        return self._fees

    def _range_sqrt_prices(
        self, engine: ArenaEngine, idx: npt.NDArray[np.int64], ticks: npt.NDArray[np.int64]
    ) -> tuple[FloatArray, FloatArray]:
        """√price at the initialized ticks enclosing each pool's current tick."""
        s_lo = np.empty(len(idx))
        s_hi = np.empty(len(idx))
        versions, cache = engine.ticks.version, self._range_cache
        for j, (i, t) in enumerate(zip(idx.tolist(), ticks.tolist(), strict=True)):
            version = versions.get(i, 0)
            hit = cache.get(i)
            if hit is None or hit[0] != version or not hit[1] <= t < hit[2]:
                sorted_ticks = self._sorted_ticks(engine, i)
                pos = bisect_right(sorted_ticks, t)
                lower = sorted_ticks[pos - 1] if pos else MIN_TICK
                upper = sorted_ticks[pos] if pos < len(sorted_ticks) else MAX_TICK
                hit = cache[i] = (
                    version,
                    lower,
                    upper,
                    get_sqrt_ratio_at_tick(lower) / Q96,
                    get_sqrt_ratio_at_tick(upper) / Q96,
                )
            s_lo[j], s_hi[j] = hit[3], hit[4]
        return s_lo, s_hi

    def _sorted_ticks(self, engine: ArenaEngine, index: int) -> list[int]:
        version = engine.ticks.version.get(index, 0)
        cached = self._ticks_cache.get(index)
        if cached is None or cached[0] != version:
            cached = (version, sorted(engine.ticks.ticks(index)))
            self._ticks_cache[index] = cached
        return cached[1]


def _fee_of(engine: ArenaEngine, index: int) -> int:
    pool = engine.registry.pools[index]
    if pool.fee is not None:
        return pool.fee
    return DEFAULT_V2_FEE if engine.registry.kind_of(index) is PoolKind.V2 else 0
