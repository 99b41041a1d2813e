"""After each settled point, re-evaluate only the cycles that contain a changed pool.

Screen all of them at once (closed form), verify the best `top_k` with exact integer
math and an integer search around the screened optimum, subtract gas (units × the
block's base fee, converted to the start token) and hand the profitable ones to sinks.
Nothing is emitted from a state the arena does not vouch for: `on_settled` subscribes to
every settled point (`Pipeline.subscribe_settled`); at a point whose `sync` is not SYNCED
it keeps the changed pools for the next SYNCED point and emits nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, final

import msgspec
import numpy as np
import numpy.typing as npt

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.registry import COIN_POOL_KINDS, PoolKind
from arena.sync_state import SyncState
from pathfinder.coin_pair_edges import CoinPairEdges
from pathfinder.cycle_graph import CycleGraph
from pathfinder.exact_quote import ExactQuoter, QuoteBatch
from pathfinder.hop_params import HopParams
from pathfinder.metrics import PathMetrics
from pathfinder.opportunity import Opportunity
from pathfinder.screen import screen, top_candidates
from pathfinder.v4_eligibility import V4Exclusion, v4_exclusion

log = logging.getLogger(__name__)

_COIN_KINDS: Final = np.array([int(k) for k in COIN_POOL_KINDS], dtype=np.uint8)
# kinds whose screen row gives the mid price as K/(N·M) (a Curve row is a lower bound)
_PRICED_KINDS: Final = (PoolKind.V2, PoolKind.V3, PoolKind.V4)
MAINNET_WETH: Final = bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")


class PathfinderConfig(msgspec.Struct, frozen=True, kw_only=True):
    chain: str = "ethereum"
    base_tokens: tuple[bytes, ...] = ()  # empty: the whitelist's WETH, else mainnet WETH
    gas_token: bytes | None = None  # the token gas is paid in; default: the first base
    max_hops: int = 3
    top_k: int = 32
    gas_base: int = 21_000
    gas_per_v2_hop: int = 60_000
    gas_per_v3_hop: int = 110_000
    # a V4 hop: the PoolManager's swap, sync/transfer/settle and take, and an unlock
    # unless it shares one (70k-125k in the executor's cycles on the dev chain; the
    # executor rescales the gas cost to its estimate)
    gas_per_v4_hop: int = 110_000
    # a Curve StableSwap-NG hop (`exchange_received`; ~100k-120k measured) and a Balancer
    # V2 hop (the Vault's swap between an approval and its reset; ~140k measured)
    gas_per_curve_hop: int = 110_000
    gas_per_balancer_hop: int = 140_000
    min_net_profit: int = 1


Sink = Callable[[Sequence[Opportunity]], None]


def resolve_base_tokens(engine: ArenaEngine, config: PathfinderConfig) -> tuple[bytes, ...]:
    if config.base_tokens:
        return config.base_tokens
    for pool in engine.registry.pools:
        for token in (pool.token0, pool.token1):
            if (token.symbol or "").upper() == "WETH":
                return (token.address,)
    return (MAINNET_WETH,)


@final
class PathRecalculator:
    def __init__(
        self,
        engine: ArenaEngine,
        config: PathfinderConfig | None = None,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self.engine = engine
        self.config = config or PathfinderConfig()
        self.graph = CycleGraph(
            resolve_base_tokens(engine, self.config), max_hops=self.config.max_hops
        )
        self.gas_token = self.config.gas_token or self.graph.base_tokens[0]
        self.params = HopParams()
        self.pair_edges = CoinPairEdges()  # multi-coin pools' pairs beyond the whitelisted one
        self.quoter = ExactQuoter(engine, self.pair_edges)
        self.sinks = list(sinks)
        self.metrics = PathMetrics(engine.metrics.registry)
        self._registry_version = -1
        self._pool_gas: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._gas_pools: dict[bytes, list[int]] = {}  # base token -> pools pairing it with gas
        self._deferred: set[int] = set()  # changed at points that were not trustworthy
        self.excluded: dict[int, V4Exclusion] = {}  # followed V4 pools left out of the graph
        self.sync_registry()

    def sync_registry(self) -> None:
        """Bring the cycle graph in line with the whitelist (adds and removes only)."""
        registry = self.engine.registry
        if registry.version == self._registry_version:
            return
        if self.pair_edges.needs_relocation(len(registry)):
            for old, new in self.pair_edges.relocate(len(registry)):
                self.graph.remove_pool(old.edge)
                self.graph.add_pool(new.edge, new.token0, new.token1)
        for index, pool in enumerate(registry.pools):
            known = index in self.graph.pool_tokens
            active = registry.is_active(index)  # never true for unmodelled protocols
            if active and not known and not self._excluded_v4(index):
                self.graph.add_pool(index, pool.token0.address, pool.token1.address)
            elif known and not active:
                self.graph.remove_pool(index)
                for edge in self.pair_edges.remove_pool(index):
                    self.graph.remove_pool(edge.edge)
            if not active:
                self.excluded.pop(index, None)
        self._add_pair_edges(np.flatnonzero(np.isin(registry.kind, _COIN_KINDS)).tolist())
        self.graph.compact()
        for reason in V4Exclusion:
            self.metrics.v4_excluded.labels(reason=reason.value).set(
                sum(r is reason for r in self.excluded.values())
            )
        self._gas_pools = {
            base: [
                i
                for i, tokens in self.graph.pool_tokens.items()
                if set(tokens) == {base, self.gas_token}
            ]
            for base in self.graph.base_tokens
        }
        self._set_pool_gas()
        self.params.refresh(self.engine, np.arange(len(registry), dtype=np.int64))
        self.params.refresh_pairs(self.engine, self.pair_edges.all_edges())
        self._registry_version = registry.version

    def _set_pool_gas(self) -> None:
        """Gas units per edge id; the last entry (no pool) is 0."""
        registry = self.engine.registry
        c = self.config
        kind = registry.kind
        gas = np.select(
            [
                kind == PoolKind.V2,
                kind == PoolKind.V4,
                kind == PoolKind.CURVE_STABLE,
                kind == PoolKind.BALANCER_WEIGHTED,
            ],
            [c.gas_per_v2_hop, c.gas_per_v4_hop, c.gas_per_curve_hop, c.gas_per_balancer_hop],
            c.gas_per_v3_hop,
        ).astype(np.int64)
        if len(self.pair_edges):  # extra pair edges of multi-coin pools: their pool's gas
            extra = np.full(self.pair_edges.limit, self.config.gas_per_v3_hop, np.int64)
            extra[: len(gas)] = gas
            for edge in self.pair_edges.all_edges():
                extra[edge.edge] = gas[edge.pool]
            gas = extra
        self._pool_gas = np.append(gas, 0)

    def _add_pair_edges(self, pools: Iterable[int]) -> list[int]:
        """Edges for the other coin pairs of hydrated multi-coin pools that have none yet
        (their coins are known once hydrated); returns the pools given edges."""
        registry, coins = self.engine.registry, self.engine.coins
        added = []
        for index in pools:
            if self.pair_edges.has_pool(index) or not registry.is_active(index):
                continue
            state = coins.state(index)
            if state is None or len(state.coins) < 3:
                continue
            pool = registry.pools[index]
            edges = self.pair_edges.add_pool(
                index, state.coins, (pool.token0.address, pool.token1.address)
            )
            for edge in edges:
                self.graph.add_pool(edge.edge, edge.token0, edge.token1)
            added.append(index)
        if added:
            self._set_pool_gas()
        return added

    def _excluded_v4(self, index: int) -> bool:
        """A V4 pool that cannot be priced exactly (see pathfinder.v4_eligibility)."""
        if self.engine.registry.kind_of(index) is not PoolKind.V4:
            return False
        pool = self.engine.registry.pools[index]
        reason = v4_exclusion(pool)
        if reason is None:
            self.excluded.pop(index, None)
            return False
        if self.excluded.get(index) is not reason:
            log.warning("V4 pool %s left out of pathfinding: %s", pool.key_hex, reason.value)
        self.excluded[index] = reason
        return True

    def on_settled(self, settled: Settled) -> list[Opportunity]:
        started = time.perf_counter()
        self.sync_registry()
        if settled.sync is not SyncState.SYNCED:
            # Their cycles are screened at the next trustworthy point, not forgotten.
            self._deferred.update(settled.changed)
            self.metrics.suppressed.inc()
            return []
        pending = settled.changed | self._deferred if self._deferred else settled.changed
        self._deferred = set()
        changed = np.fromiter(pending, dtype=np.int64, count=len(pending))
        self.params.refresh(self.engine, changed)
        pairs = self._changed_pair_edges(changed)
        self.metrics.recalculations.inc()
        cycles = self.graph.cycles_of([*changed.tolist(), *pairs] if pairs else changed.tolist())
        self.metrics.cycles_screened.inc(len(cycles))
        result = screen(self.graph, self.params, cycles)
        gas_units = self._gas_units(result.cycles)
        gas_cost = (
            gas_units * float(settled.base_fee_per_gas) * self._gas_price_in_start(result.cycles)
        )
        best = top_candidates(result, self.config.top_k, gas_cost[: len(result.cycles)])
        found = self._verify(settled, best.cycles, best.amount_in, best.profit)
        self._emit(found)
        self.metrics.recalc_seconds.observe(time.perf_counter() - started)
        return found

    def _changed_pair_edges(self, changed: npt.NDArray[np.int64]) -> list[int]:
        """The extra pair edges of the changed multi-coin pools (added for pools hydrated
        since), their rows refreshed."""
        coin = np.isin(self.engine.registry.kind[changed], _COIN_KINDS)
        if not coin.any():  # most blocks: one vectorized test
            return []
        coin_pools = changed[coin].tolist()
        self._add_pair_edges(coin_pools)
        edges = [e for i in coin_pools for e in self.pair_edges.of_pool(i)]
        self.params.refresh_pairs(self.engine, edges)
        return [e.edge for e in edges]

    def _gas_units(self, cycles: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        # A missing hop (NO_POOL, -1) takes the last entry of _pool_gas: no pool, no gas.
        pools = np.take(self.graph.pools, cycles, axis=0)
        units: npt.NDArray[np.float64] = (
            np.take(self._pool_gas, pools).sum(axis=1) + self.config.gas_base
        ).astype(np.float64)
        return units

    def _gas_price_in_start(self, cycles: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Start-token units per unit of gas token, per cycle (0 when unpriceable)."""
        rates: npt.NDArray[np.float64] = np.array([self._rate(t) for t in self.graph.base_tokens])
        if not len(cycles):
            return np.zeros(0)
        out: npt.NDArray[np.float64] = rates[self.graph.start_base[cycles]]
        return out

    def _rate(self, token: bytes) -> float:
        if token == self.gas_token:
            return 1.0
        best, rate = 0.0, np.nan
        kinds = self.engine.registry.kind
        for index in self._gas_pools.get(token, ()):
            priced = index < len(kinds) and kinds[index] in _PRICED_KINDS
            if not priced or not self.params.usable[index]:
                continue
            d = 0 if self.graph.pool_tokens[index][0] == self.gas_token else 1
            depth = float(self.params.m[index, d])
            if depth > best:
                best = depth
                # the mid price K/(N·M), not the after-fee K/M: gas is a cost, not a trade
                k, n = self.params.k[index, d], self.params.n[index, d]
                rate = float(k / (n * self.params.m[index, d]))
        return rate

    def _best_input(
        self, batch: QuoteBatch, path: list[tuple[int, bool]], guess: int
    ) -> tuple[int, int]:
        """(amount_in, amount_out) at the best exact profit from the screened optimum:
        the real-valued optimum over the exact state, crossing ticks piecewise, settled by
        a bounded number of exact cycle quotes (`QuoteBatch.verify`)."""
        verified = batch.verify(path, guess)
        self.metrics.verify_quotes.inc(verified.evaluations)
        if not verified.modelled:
            self.metrics.verify_unmodelled.inc()
        return verified.amount_in, verified.amount_out

    def _verify(
        self,
        settled: Settled,
        cycles: npt.NDArray[np.int64],
        amounts: npt.NDArray[np.float64],
        screened: npt.NDArray[np.float64],
    ) -> list[Opportunity]:
        found = []
        registry = self.engine.registry
        batch = self.quoter.batch()  # each pool's state read once for all candidates
        units = self._gas_units(cycles).tolist()
        rates = self._gas_price_in_start(cycles).tolist()
        candidates = zip(
            cycles.tolist(), amounts.tolist(), screened.tolist(), units, rates, strict=True
        )
        verified = 0
        for c, x, s, gas, rate in candidates:
            if not math.isfinite(rate):
                continue
            verified += 1
            path = self.graph.path(c)
            amount_in, amount_out = self._best_input(batch, path, max(1, int(x)))
            profit = amount_out - amount_in
            gas_units = int(gas)
            gas_cost = int(gas_units * settled.base_fee_per_gas * rate)
            if profit - gas_cost < self.config.min_net_profit:
                continue
            tokens = self.graph.tokens(c)
            found.append(
                Opportunity(
                    chain=self.config.chain,
                    block=settled.block,
                    base_fee_per_gas=settled.base_fee_per_gas,
                    after_reorg=settled.after_reorg,
                    pools=tuple(
                        registry.pools[self.pair_edges.pool_of(p)].key_hex for p, _ in path
                    ),
                    zero_for_one=tuple(z for _, z in path),
                    tokens=tuple("0x" + t.hex() for t in tokens),
                    amount_in=amount_in,
                    expected_out=amount_out,
                    profit=profit,
                    gas_units=gas_units,
                    gas_cost=gas_cost,
                    net_profit=profit - gas_cost,
                    screened_profit=s,
                    screened_amount_in=x,
                    coin_indices=self._coin_indices(path, tokens),
                )
            )
        self.metrics.candidates_verified.inc(verified)
        found.sort(key=lambda o: -o.net_profit)
        return found

    def _coin_indices(
        self, path: Sequence[tuple[int, bool]], tokens: Sequence[bytes]
    ) -> tuple[tuple[int, int] | None, ...]:
        """Per hop: the multi-coin pool's indexes of the coin sold and bought, else None."""
        coins = self.engine.coins
        out: list[tuple[int, int] | None] = []
        for n, (edge, _) in enumerate(path):
            state = coins.state(self.pair_edges.pool_of(edge))
            i = None if state is None else state.coin_index(tokens[n])
            j = None if state is None else state.coin_index(tokens[n + 1])
            out.append(None if i is None or j is None else (i, j))
        return tuple(out)

    def _emit(self, found: list[Opportunity]) -> None:
        if not found:
            return
        self.metrics.opportunities.inc(len(found))
        for sink in self.sinks:
            try:
                sink(found)
            except Exception:  # a sink must never stop the arena; counted and logged
                self.metrics.sink_errors.labels(sink=getattr(sink, "name", repr(sink))).inc()
                log.exception("opportunity sink %r failed", sink)
