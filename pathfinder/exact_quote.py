"""Exact integer quotes along a cycle over the arena's current state, and its best input.

V2 hops use `getAmountOut`/`getAmountIn` with the pool's fee; V3/V4 hops run the full
swap loop with tick crossings over a `TickTable` rebuilt only when the pool's tick map
changed; Curve StableSwap-NG hops run the pool's exchange math (`curve_hop`; no
exact-output quote, so the search's trim step passes them by).
`ExactQuoter.verify` finds a cycle's best input with a bounded number of exact
cycle quotes (`pathfinder.bounded_search`), starting from the real-valued optimum over
the exact state (`pathfinder.optimum_walk`).
"""

from __future__ import annotations

from typing import NamedTuple, final

from arena.engine import ArenaEngine
from arena.registry import PoolKind
from pathfinder.balancer_hops import BalancerRead, balancer_read
from pathfinder.bounded_search import HopQuotes, Path, PricedCycle, Verified, settle
from pathfinder.coin_pair_edges import CoinPairEdges
from pathfinder.curve_hop import CurveRead, curve_out, read_curve, screen_row, virtual_reserves
from pathfinder.errors import PathfinderError
from pathfinder.hop_params import DEFAULT_V2_FEE
from pathfinder.optimum_walk import HopCurve, TickLadder, walk_optimum
from pathfinder.tick_table import TickTable
from pathfinder.v2_math import fee_fraction, get_amount_in, get_amount_out
from pathfinder.v3_swap import V3SwapState, quote_exact_input, quote_exact_output


class V2Read(NamedTuple):
    reserve0: int
    reserve1: int
    fee_bps: int


class V3Read(NamedTuple):
    state: V3SwapState
    table: TickTable
    ladder: TickLadder


class Unquotable(NamedTuple):
    """A pool whose state the arena does not hold in a quotable form: every quote is 0."""

    pool: int


PoolRead = V2Read | V3Read | CurveRead | BalancerRead | Unquotable


@final
class ExactQuoter:
    def __init__(self, engine: ArenaEngine, pair_edges: CoinPairEdges | None = None) -> None:
        self.engine = engine
        # edge ids of multi-coin pools' extra pairs (the cycle graph's), if any
        self.pair_edges = CoinPairEdges() if pair_edges is None else pair_edges
        self._tables: dict[int, tuple[int, TickTable, TickLadder]] = {}
        self.quotes = 0  # exact hop quotes, both directions

    def tick_table(self, index: int) -> TickTable:
        return self._cached_ticks(index)[1]

    def tick_ladder(self, index: int) -> TickLadder:
        return self._cached_ticks(index)[2]

    def _cached_ticks(self, index: int) -> tuple[int, TickTable, TickLadder]:
        version = self.engine.ticks.version.get(index, 0)
        cached = self._tables.get(index)
        if cached is None or cached[0] != version:
            spacing = self.engine.registry.pools[index].tick_spacing or 1
            table = TickTable.from_net_gross(
                {t: (v[0], v[1]) for t, v in self.engine.ticks.ticks(index).items()}, spacing
            )
            items = table.items()
            ladder = TickLadder([t for t, _ in items], [n for _, n in items], spacing)
            cached = self._tables[index] = (version, table, ladder)
        return cached

    def hop_out(self, index: int, zero_for_one: bool, amount_in: int) -> int:
        """Exact output of one hop, 0 where the pool cannot fill the input."""
        return self.hop_quotes(index, zero_for_one).out(amount_in)

    def cycle_out(self, path: Path, amount_in: int) -> int:
        amount = amount_in
        for index, zero_for_one in path:
            if amount <= 0:
                return 0
            amount = self.hop_out(index, zero_for_one, amount)
        return amount

    def read_pool(self, index: int) -> PoolRead:
        """What the exact quotes of a pool read from the arena: its state now."""
        engine = self.engine
        pair = self.pair_edges.get(index)
        if pair is not None:  # an extra coin pair of a multi-coin pool
            return self._read_coins(pair.pool, (pair.token0, pair.token1))
        pool = engine.registry.pools[index]
        kind = engine.registry.kind_of(index)
        if kind is PoolKind.BALANCER_WEIGHTED:
            return self._read_coins(index, (pool.token0.address, pool.token1.address))
        if kind is PoolKind.CURVE_STABLE:
            return self._read_curve(index, (pool.token0.address, pool.token1.address))
        if kind is PoolKind.V2:
            r0, r1 = engine.table.reserves(index)
            fee = pool.fee if pool.fee is not None else DEFAULT_V2_FEE
            return V2Read(r0, r1, fee // 100)
        sqrt, liquidity, tick = engine.table.slot0(index)
        state = V3SwapState(
            sqrt_price_x96=sqrt,
            tick=tick,
            liquidity=liquidity,
            fee_pips=pool.fee or 0,
            tick_spacing=pool.tick_spacing or 1,
        )
        _, table, ladder = self._cached_ticks(index)
        return V3Read(state, table, ladder)

    def _read_coins(self, index: int, tokens: tuple[bytes, bytes]) -> PoolRead:
        """A multi-coin pool between two of its coins, by the pool's kind."""
        if self.engine.registry.kind_of(index) is PoolKind.BALANCER_WEIGHTED:
            read = balancer_read(self.engine.coins.state(index), *tokens)
            return Unquotable(index) if read is None else read
        return self._read_curve(index, tokens)

    def _read_curve(self, index: int, tokens: tuple[bytes, bytes]) -> PoolRead:
        coins = self.engine.coins
        state = coins.state(index)
        curve = None if state is None else read_curve(state, tokens, coins.clock)
        return Unquotable(index) if curve is None else curve

    def hop_quotes(self, index: int, zero_for_one: bool) -> HopQuotes:
        """Exact quotes of one hop over the pool's state as it is now, read once."""
        return self.quotes_of(self.read_pool(index), zero_for_one)

    def hop_curve(self, index: int, zero_for_one: bool) -> HopCurve:
        """The real-valued form of one hop over the pool's exact state (`optimum_walk`)."""
        return curve_of(self.read_pool(index), zero_for_one)

    def quotes_of(self, read: PoolRead, zero_for_one: bool) -> HopQuotes:
        match read:
            case V2Read():
                return self._v2_quotes(read, zero_for_one)
            case V3Read():
                return self._v3_quotes(read, zero_for_one)
            case CurveRead():
                return self._curve_quotes(read, zero_for_one)
            case BalancerRead():
                return self._balancer_quotes(read, zero_for_one)
            case Unquotable():
                return HopQuotes(_nothing, _nothing)

    def _balancer_quotes(self, read: BalancerRead, zero_for_one: bool) -> HopQuotes:
        def out(amount_in: int) -> int:
            self.quotes += 1
            return read.out(zero_for_one, amount_in)

        def need(amount_out: int) -> int:
            self.quotes += 1
            return read.need(zero_for_one, amount_out)

        return HopQuotes(out, need)

    def _curve_quotes(self, read: CurveRead, zero_for_one: bool) -> HopQuotes:
        def out(amount_in: int) -> int:
            self.quotes += 1
            return curve_out(read, zero_for_one, amount_in)

        return HopQuotes(out, _nothing)

    def _v2_quotes(self, read: V2Read, zero_for_one: bool) -> HopQuotes:
        r0, r1, fee_bps = read
        r_in, r_out = (r0, r1) if zero_for_one else (r1, r0)

        def out(amount_in: int) -> int:
            self.quotes += 1
            try:
                return get_amount_out(amount_in, r_in, r_out, fee_bps)
            except PathfinderError:
                return 0

        def need(amount_out: int) -> int:
            self.quotes += 1
            try:
                return get_amount_in(amount_out, r_in, r_out, fee_bps)
            except PathfinderError:
                return 0

        return HopQuotes(out, need)

    def _v3_quotes(self, read: V3Read, zero_for_one: bool) -> HopQuotes:
        state, table, _ = read

        def out(amount_in: int) -> int:
            self.quotes += 1
            try:
                return quote_exact_input(state, table, zero_for_one, amount_in)
            except PathfinderError:
                return 0

        def need(amount_out: int) -> int:
            self.quotes += 1
            try:
                return quote_exact_output(state, table, zero_for_one, amount_out)
            except PathfinderError:
                return 0

        return HopQuotes(out, need)

    def priced_cycle(self, path: Path) -> PricedCycle:
        return PricedCycle([self.hop_quotes(i, z) for i, z in path])

    def batch(self) -> QuoteBatch:
        """Verifications over the state as it is now (until the arena changes)."""
        return QuoteBatch(self)

    def best_input(self, path: Path, guess: int) -> tuple[int, int]:
        """(amount_in, amount_out) at the best exact profit found (see `verify`)."""
        verified = self.verify(path, guess)
        return verified.amount_in, verified.amount_out

    def verify(self, path: Path, guess: int) -> Verified:
        """The best input of a cycle from at most `EVALUATION_CAP` exact cycle quotes,
        never worse than `guess` (the screened optimum, an integer ≥ 1)."""
        return self.batch().verify(path, guess)


@final
class QuoteBatch:
    """Verifications of many cycles over one state: each hop's state is read once.

    Valid only while the arena's state stays as it was when the batch was made."""

    def __init__(self, quoter: ExactQuoter) -> None:
        self.quoter = quoter
        self._reads: dict[int, PoolRead] = {}
        self._quotes: dict[tuple[int, bool], HopQuotes] = {}
        self._curves: dict[tuple[int, bool], HopCurve] = {}

    def _read(self, index: int) -> PoolRead:
        read = self._reads.get(index)
        if read is None:
            read = self._reads[index] = self.quoter.read_pool(index)
        return read

    def hop_quotes(self, index: int, zero_for_one: bool) -> HopQuotes:
        key = (index, zero_for_one)
        quotes = self._quotes.get(key)
        if quotes is None:
            quotes = self.quoter.quotes_of(self._read(index), zero_for_one)
            self._quotes[key] = quotes
        return quotes

    def hop_curve(self, index: int, zero_for_one: bool) -> HopCurve:
        """A fresh copy (the walk moves it) of the hop's real-valued form."""
        key = (index, zero_for_one)
        curve = self._curves.get(key)
        if curve is None:
            curve = self._curves[key] = curve_of(self._read(index), zero_for_one)
        return curve.copy()

    def verify(self, path: Path, guess: int) -> Verified:
        optimum = walk_optimum([self.hop_curve(i, z) for i, z in path])
        return settle(PricedCycle([self.hop_quotes(i, z) for i, z in path]), guess, optimum)


def _nothing(_: int) -> int:
    return 0


def curve_of(read: PoolRead, zero_for_one: bool) -> HopCurve:
    match read:
        case V2Read(reserve0=r0, reserve1=r1, fee_bps=fee_bps):
            kept, scale = fee_fraction(fee_bps)
            r_in, r_out = (r0, r1) if zero_for_one else (r1, r0)
            return HopCurve.constant_product(r_in, r_out, kept / scale)
        case V3Read(state=state, ladder=ladder):
            return HopCurve.concentrated(
                sqrt_price_x96=state.sqrt_price_x96,
                liquidity=state.liquidity,
                tick=state.tick,
                gamma=1.0 - state.fee_pips / 1e6,
                zero_for_one=zero_for_one,
                ladder=ladder,
            )
        case CurveRead():
            row = screen_row(read, zero_for_one)
            if row is None:
                return HopCurve.constant_product(1, 0, 1.0)
            reserve_in, reserve_out = virtual_reserves(row)
            return HopCurve.constant_product(reserve_in, reserve_out, 1.0)
        case BalancerRead(balances=balances, math=math):
            # The walk's real-valued form: a constant product with the pool's spot rate
            # (exact for equal weights); `settle` checks it against exact quotes.
            i, j = read.coins(zero_for_one)
            ratio = math.weights[i] / math.weights[j]
            gamma = 1.0 - math.swap_fee / 1e18
            return HopCurve.constant_product(balances[i], round(balances[j] * ratio), gamma)
        case Unquotable():
            return HopCurve.constant_product(1, 0, 1.0)
