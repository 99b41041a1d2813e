"""The producer's side of the engine tests: a chain of random but valid pool blocks.

It keeps, per block, the canonical state of every pool (V2 reserves; V3/V4 slot0 and
open positions) and generates blocks that a real pool could emit: swaps land on a tick
with the liquidity of the positions that cover it, burns only remove liquidity a
position holds, in-range mints and burns move the active liquidity. Tick maps for
resyncs and epilogue finals come from the positions, not from replaying updates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.tick_math import get_sqrt_ratio_at_tick
from tests.arena.reference_model import Kind, Record, TickMap
from tests.arena.stream_builder import ChainBlock, ChainUpdate, address

TICK_GRID = 10
TICK_SPAN = 10  # positions use ticks in [-SPAN, SPAN] * GRID
MAX_POSITIONS = 6
NOISE_POOL = address(0xDEAD)  # never whitelisted: its updates must be ignored

PROTOCOL = {
    Kind.V2: m.Protocol.UNISWAP_V2,
    Kind.V3: m.Protocol.UNISWAP_V3,
    Kind.V4: m.Protocol.UNISWAP_V4,
}


@dataclass(frozen=True, slots=True)
class Pool:
    pool_id: m.PoolIdentifier
    kind: Kind

    @property
    def key(self) -> bytes:
        return self.pool_id.value

    def whitelisted(self) -> WhitelistedPool:
        return WhitelistedPool(
            key=self.key,
            address=self.key if self.kind is not Kind.V4 else bytes(20),
            protocol=PROTOCOL[self.kind],
            token0=Token(address=bytes(19) + b"\x0a", decimals=18),
            token1=Token(address=bytes(19) + b"\x0b", decimals=6),
            fee=3000,
            tick_spacing=TICK_GRID,
        )


@dataclass(slots=True)
class PoolState:
    record: Record
    positions: dict[tuple[int, int], int] = field(default_factory=dict)

    def copy(self) -> PoolState:
        return PoolState(self.record, dict(self.positions))

    def ticks(self) -> TickMap:
        net: dict[int, int] = {}
        gross: dict[int, int] = {}
        for (lower, upper), liquidity in self.positions.items():
            for tick, sign in ((lower, 1), (upper, -1)):
                net[tick] = net.get(tick, 0) + sign * liquidity
                gross[tick] = gross.get(tick, 0) + liquidity
        return {t: (net[t], g) for t, g in gross.items() if g}

    def active_liquidity(self, tick: int) -> int:
        return sum(liq for (lo, up), liq in self.positions.items() if lo <= tick < up)


ChainState = dict[bytes, PoolState]


def _grid_tick(rng: random.Random) -> int:
    return rng.randint(-TICK_SPAN, TICK_SPAN) * TICK_GRID


def _swap_tick(rng: random.Random) -> int:
    # half of them exactly on a position bound, to test `tick_lower <= tick < tick_upper`
    if rng.random() < 0.5:
        return _grid_tick(rng)
    return rng.randint(-(TICK_SPAN + 1) * TICK_GRID, (TICK_SPAN + 1) * TICK_GRID)


U112_MAX = (1 << 112) - 1  # a V2 pair's reserves are uint112


def _sqrt_price(rng: random.Random, tick: int = 0) -> int:
    """A price inside `tick`'s range, as a pool at that tick can hold (the arena refuses a
    tick that does not match its price)."""
    low = get_sqrt_ratio_at_tick(tick)
    return rng.randint(low, get_sqrt_ratio_at_tick(tick + 1) - 1)


def seed_state(pools: list[Pool], rng: random.Random) -> ChainState:
    state: ChainState = {}
    for pool in pools:
        if pool.kind is Kind.V2:
            state[pool.key] = PoolState((rng.randint(1, U112_MAX), rng.randint(1, U112_MAX)))
            continue
        ps = PoolState((0, 0, 0))
        for _ in range(3):
            lower = rng.randint(-TICK_SPAN, TICK_SPAN - 1) * TICK_GRID
            upper = lower + rng.randint(1, 4) * TICK_GRID
            ps.positions[lower, upper] = ps.positions.get((lower, upper), 0) + rng.randint(1, 10**9)
        tick = _swap_tick(rng)
        ps.record = (_sqrt_price(rng, tick), ps.active_liquidity(tick), tick)
        state[pool.key] = ps
    return state


class CanonicalChain:
    """Blocks base+1 .. tip and the state after each; `rewind` drops the newest ones."""

    def __init__(self, pools: list[Pool], base_block: int, base_state: ChainState) -> None:
        self.pools = pools
        self.by_key = {p.key: p for p in pools}
        self.base_block = base_block
        self.blocks: list[ChainBlock] = []
        self.states: list[ChainState] = [base_state]

    @property
    def tip(self) -> int:
        return self.base_block + len(self.blocks)

    @property
    def state(self) -> ChainState:
        return self.states[-1]

    def records(self) -> dict[bytes, Record]:
        return {k: ps.record for k, ps in self.state.items()}

    def tick_maps(self) -> dict[bytes, TickMap]:
        return {p.key: self.state[p.key].ticks() for p in self.pools if p.kind is not Kind.V2}

    def final(self, key: bytes) -> m.ReorgEpilogueUpdate:
        pool = self.by_key[key]
        record = self.state[key].record
        if pool.kind is Kind.V2:
            return m.V2ReservesFinal(pool_id=pool.pool_id, reserve0=record[0], reserve1=record[1])
        sqrt, liquidity, tick = record
        return m.Slot0Final(
            pool_id=pool.pool_id,
            protocol=PROTOCOL[pool.kind],
            state=m.Slot0State(sqrt_price_x96=sqrt, liquidity=liquidity, tick=tick),
        )

    def rewind(self, depth: int) -> list[ChainBlock]:
        """Drop the newest `depth` blocks; returns them oldest first."""
        if not 0 <= depth <= len(self.blocks):
            raise ValueError(f"cannot rewind {depth} of {len(self.blocks)} blocks")
        cut = len(self.blocks) - depth
        old = self.blocks[cut:]
        del self.blocks[cut:]
        del self.states[cut + 1 :]
        return old

    def generate(self, rng: random.Random, max_updates: int = 6) -> ChainBlock:
        number = self.tip + 1
        state = {k: ps.copy() for k, ps in self.state.items()}
        updates: list[ChainUpdate] = []
        tx = 0
        for log_index in range(rng.randint(0, max_updates)):
            tx += rng.randint(0, 2)
            if rng.random() < 0.05:
                updates.append(self._noise(rng, tx, log_index))
                continue
            pool = rng.choice(self.pools)
            ps = state[pool.key]
            payload, update_type = self._update(pool, ps, rng)
            updates.append(
                ChainUpdate(pool.pool_id, PROTOCOL[pool.kind], update_type, payload, tx, log_index)
            )
        timestamp, base_fee = 1_700_000_000 + 12 * number, rng.randint(1, 10**11)
        block = ChainBlock(number, timestamp, base_fee, tuple(updates))
        self.blocks.append(block)
        self.states.append(state)
        return block

    @staticmethod
    def _noise(rng: random.Random, tx: int, log_index: int) -> ChainUpdate:
        payload = m.V3Swap(sqrt_price_x96=_sqrt_price(rng), liquidity=1, tick=0)
        return ChainUpdate(
            NOISE_POOL, m.Protocol.UNISWAP_V3, m.UpdateType.SWAP, payload, tx, log_index
        )

    @staticmethod
    def _update(
        pool: Pool, ps: PoolState, rng: random.Random
    ) -> tuple[m.PoolUpdatePayload, m.UpdateType]:
        if pool.kind is Kind.V2:
            r0, r1 = rng.randint(0, U112_MAX), rng.randint(0, U112_MAX)
            ps.record = (r0, r1)
            return m.V2Sync(reserve0=r0, reserve1=r1), m.UpdateType.SWAP
        v4 = pool.kind is Kind.V4
        sqrt, liquidity, tick = ps.record
        op = rng.random()
        if op < 0.4 or (op >= 0.7 and not ps.positions):
            tick = _swap_tick(rng)
            ps.record = (_sqrt_price(rng, tick), ps.active_liquidity(tick), tick)
            swap = m.V4Swap if v4 else m.V3Swap
            return swap(sqrt_price_x96=ps.record[0], liquidity=ps.record[1], tick=tick), (
                m.UpdateType.SWAP
            )
        if op < 0.7 and len(ps.positions) < MAX_POSITIONS:
            lower = rng.randint(-TICK_SPAN, TICK_SPAN - 1) * TICK_GRID
            upper = rng.randint(lower // TICK_GRID + 1, TICK_SPAN) * TICK_GRID
            delta = rng.choice([rng.randint(1, 1000), rng.randint(1, 1 << 100)])
            ps.positions[lower, upper] = ps.positions.get((lower, upper), 0) + delta
            kind = m.UpdateType.MINT
        else:
            (lower, upper), held = rng.choice(sorted(ps.positions.items()))
            amount = held if rng.random() < 0.5 else rng.randint(1, held)
            delta = -amount
            if amount == held:
                del ps.positions[lower, upper]
            else:
                ps.positions[lower, upper] = held - amount
            kind = m.UpdateType.BURN
        if lower <= tick < upper:
            liquidity += delta
        ps.record = (sqrt, liquidity, tick)
        liq = m.V4Liquidity if v4 else m.V3Liquidity
        return liq(tick_lower=lower, tick_upper=upper, liquidity_delta=delta), kind
