"""A mainnet-sized pool universe written as a whitelist file and an initial state file.

About every Uniswap V2/V3 pool on mainnet: `pools` pools, 70 % V2 and 30 % V3 (fee tiers
0.05/0.3/1 %). Tokens are drawn by a Zipf-like popularity from a few thousand, so most
pools share a hub. A V3 pool holds one wide position and a lognormal number of narrow ones
around its price (median 3, a long tail to hundreds), so most pools have a handful of
initialized ticks and a few have thousands, as on mainnet. Pool `i`'s address is
`SCALE_BASE + i`; `kinds[i]` says whether it is V3.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from arena.state_file import PoolStateJson, StateJson, TickJson
from pathfinder.tick_math import MAX_TICK, MIN_TICK

SCALE_BASE: Final = 0xB000000000000000000000000000000000000000
V3_SHARE: Final = 0.3
V3_TIERS: Final = ((500, 10), (3000, 60), (10000, 200))
STATE_BLOCK: Final = 21_000_000
MAX_NARROW_POSITIONS: Final = 2000


def pool_key(index: int) -> bytes:
    return (SCALE_BASE + index).to_bytes(20, "big")


@dataclass(frozen=True)
class ScaleMarket:
    pools: int
    is_v3: npt.NDArray[np.bool_]
    spacing: npt.NDArray[np.int32]  # 0 for V2
    tick: npt.NDArray[np.int32]  # the current tick of V3 pools

    @property
    def v2_indices(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(~self.is_v3)

    @property
    def v3_indices(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.is_v3)


def build_scale_market(pools: int, seed: int = 3) -> ScaleMarket:
    gen = np.random.default_rng(seed)
    is_v3 = gen.random(pools) < V3_SHARE
    tier = gen.integers(0, len(V3_TIERS), pools)
    spacing = np.where(is_v3, np.array([s for _, s in V3_TIERS])[tier], 0).astype(np.int32)
    raw_tick = gen.integers(-200_000, 200_000, pools)
    tick = np.where(is_v3, raw_tick, 0).astype(np.int32)
    return ScaleMarket(pools, is_v3, spacing, tick)


def _token(index: int, tokens: int) -> dict[str, object]:
    return {
        "address": "0x" + (0xC0000000 + index % tokens).to_bytes(20, "big").hex(),
        "decimals": 18 if index % 5 else 6,
        "symbol": f"T{index % tokens}",
    }


def whitelist_document(market: ScaleMarket, tokens: int = 4000) -> bytes:
    rng = random.Random(5)
    weights = [1.0 / (t + 2) for t in range(tokens)]
    picks = rng.choices(range(tokens), weights, k=2 * market.pools)
    entries = []
    for i in range(market.pools):
        a, b = picks[2 * i], picks[2 * i + 1]
        if a == b:
            b = (b + 1) % tokens
        entry: dict[str, object] = {
            "address": "0x" + pool_key(i).hex(),
            "protocol": "v3" if market.is_v3[i] else "v2",
            "token0": _token(min(a, b), tokens),
            "token1": _token(max(a, b), tokens),
        }
        if market.is_v3[i]:
            spacing = int(market.spacing[i])
            entry["fee"] = next(f for f, s in V3_TIERS if s == spacing)
            entry["tick_spacing"] = spacing
        else:
            entry["fee"] = 3000
        entries.append(entry)
    return msgspec.json.encode({"chain": "ethereum", "snapshot_id": 1, "pools": entries})


def _v3_ticks(rng: random.Random, tick: int, spacing: int) -> tuple[int, dict[str, TickJson]]:
    """Active liquidity and the initialized ticks of one V3 pool."""
    nets: dict[int, int] = {}
    gross: dict[int, int] = {}
    active = 0
    full = 10 ** rng.uniform(12, 22)
    low, high = -(-MIN_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing
    positions = [(low, high, int(full))]
    narrow = min(MAX_NARROW_POSITIONS, int(rng.lognormvariate(math.log(3), 1.4)))
    for _ in range(narrow):
        lower = (tick // spacing - rng.randint(0, 60)) * spacing
        upper = lower + rng.randint(1, 120) * spacing
        positions.append((lower, upper, max(1, int(full * rng.lognormvariate(-1, 1.5)))))
    for lower, upper, amount in positions:
        nets[lower] = nets.get(lower, 0) + amount
        nets[upper] = nets.get(upper, 0) - amount
        gross[lower] = gross.get(lower, 0) + amount
        gross[upper] = gross.get(upper, 0) + amount
        if lower <= tick < upper:
            active += amount
    ticks = {str(t): TickJson(net=str(nets[t]), gross=str(gross[t])) for t in sorted(gross)}
    return active, ticks


def state_document(market: ScaleMarket) -> tuple[bytes, int]:
    """The initial state file's bytes and the number of initialized ticks in it."""
    rng = random.Random(9)
    pools: dict[str, PoolStateJson] = {}
    tick_count = 0
    for i in range(market.pools):
        key = "0x" + pool_key(i).hex()
        if not market.is_v3[i]:
            r0 = rng.randrange(10**15, 10**24)
            r1 = rng.randrange(10**9, 10**24)
            pools[key] = PoolStateJson(protocol="v2", reserve0=str(r0), reserve1=str(r1))
            continue
        tick, spacing = int(market.tick[i]), int(market.spacing[i])
        active, ticks = _v3_ticks(rng, tick, spacing)
        tick_count += len(ticks)
        sqrt = int(math.sqrt(1.0001**tick) * (1 << 96))
        pools[key] = PoolStateJson(
            protocol="v3",
            sqrt_price_x96=str(sqrt),
            liquidity=str(active),
            tick=tick,
            ticks=ticks,
        )
    state = StateJson(block=STATE_BLOCK, unsynced=False, stale=[], pools=pools, unhydrated=[])
    return msgspec.json.encode(state), tick_count


def write_scale_files(market: ScaleMarket, folder: Path) -> tuple[Path, Path, int]:
    """Whitelist and state file in `folder`; returns their paths and the tick count."""
    whitelist, state = folder / "whitelist.json", folder / "state.json"
    whitelist.write_bytes(whitelist_document(market))
    data, ticks = state_document(market)
    state.write_bytes(data)
    return whitelist, state, ticks
