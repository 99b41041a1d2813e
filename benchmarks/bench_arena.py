"""Arena benchmarks: apply and revert a block, ring lookups, spill, memory.

    .venv/bin/python -m benchmarks.bench_arena [--pools 50000] [--updates 200] [--blocks 600]

Blocks carry the stream's realistic mix (45% V3Swap, 35% V2Sync, 10% V3 mint/burn,
10% updates of unmodelled protocols) over half V2, half V3 pools with tick maps.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import msgspec

from arena.engine import ArenaEngine
from arena.history import state_at
from arena.snapshot_ring import DEFAULT_DEPTH
from arena.spill import RocksSpill
from benchmarks.common import Row, compare_baseline, percentile, print_report, save_baseline
from exex_bridge import messages as m
from exex_bridge.codec import decode_message, encode_message
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.tick_math import get_sqrt_ratio_at_tick

WETH = Token(address=b"\x01" * 20, decimals=18, symbol="WETH")
USDC = Token(address=b"\x02" * 20, decimals=6, symbol="USDC")


def _key(i: int) -> bytes:
    return (0xA0000000 + i).to_bytes(20, "big")


def build_engine(pools: int, spill_dir: Path | None) -> ArenaEngine:
    spill = RocksSpill(spill_dir) if spill_dir is not None else None
    engine = ArenaEngine(capacity=pools, spill=spill)
    engine.add_pools(
        WhitelistedPool(
            key=_key(i),
            address=_key(i),
            protocol=m.Protocol.UNISWAP_V2 if i % 2 == 0 else m.Protocol.UNISWAP_V3,
            token0=WETH,
            token1=USDC,
            fee=3000,
            tick_spacing=None if i % 2 == 0 else 60,
        )
        for i in range(pools)
    )
    for i in range(pools):
        if i % 2 == 0:
            engine.set_reserves(i, 10**21, 2 * 10**12)
        else:
            big = 10**20
            engine.set_slot0(i, 1 << 96, big, 0, {-600: (big, big), 600: (-big, big)})
    engine.mark_synced(0, keep_history=False)
    return engine


def make_block(
    rng: random.Random, number: int, pools: int, updates: int
) -> list[m.PoolUpdateMessage]:
    events = []
    for j in range(updates):
        r = rng.random()
        if r < 0.45:
            i = rng.randrange(pools // 2) * 2 + 1
            tick = rng.randrange(-500, 500)
            update: m.PoolUpdatePayload = m.V3Swap(
                sqrt_price_x96=get_sqrt_ratio_at_tick(tick) + rng.randrange(1 << 40),
                liquidity=10**20,
                tick=tick,
            )
            protocol = m.Protocol.UNISWAP_V3
        elif r < 0.80:
            i = rng.randrange(pools // 2) * 2
            update = m.V2Sync(
                reserve0=rng.randrange(1, 1 << 112), reserve1=rng.randrange(1, 1 << 112)
            )
            protocol = m.Protocol.UNISWAP_V2
        elif r < 0.90:
            i = rng.randrange(pools // 2) * 2 + 1
            update = m.V3Liquidity(tick_lower=-120, tick_upper=120, liquidity_delta=10**15)
            protocol = m.Protocol.UNISWAP_V3
        else:
            i = pools + rng.randrange(1000)  # not whitelisted
            update = m.CurveFeeUpdate(fee=4_000_000, offpeg_fee_multiplier=20_000_000_000)
            protocol = m.Protocol.CURVE_STABLE
        events.append(
            m.PoolUpdateMessage(
                pool_id=m.PoolAddress(value=_key(i)),
                protocol=protocol,
                update_type=m.UpdateType.SWAP,
                block_number=number,
                block_timestamp=0,
                tx_index=j,
                log_index=0,
                is_revert=False,
                update=update,
            )
        )
    return events


def _begin(number: int, revert: bool) -> m.BeginBlock:
    return m.BeginBlock(
        stream_seq=0, block_number=number, block_timestamp=0, base_fee_per_gas=1, is_revert=revert
    )


def _wrap(event: m.PoolUpdateMessage) -> m.PoolUpdate:
    return m.PoolUpdate(stream_seq=1, event=event)


def _unwrap(message: m.ControlMessage) -> m.PoolUpdateMessage:
    if not isinstance(message, m.PoolUpdate):
        raise TypeError(f"expected a PoolUpdate, decoded {type(message).__name__}")
    return message.event


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=600)
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(args.pools, Path(tmp) / "spill")
        blocks = [make_block(rng, 1 + k, args.pools, args.updates) for k in range(args.blocks)]
        # As in production, a block's messages are decoded just before it is applied (so
        # they are in cache); decoding is measured on its own by bench_decode.
        frames = [[encode_message(_wrap(e)) for e in events] for events in blocks]
        apply_us = []
        for k, block_frames in enumerate(frames):
            events = [_unwrap(decode_message(f)) for f in block_frames]
            started = time.perf_counter()
            engine.apply_block(_begin(1 + k, False), events)
            apply_us.append((time.perf_counter() - started) * 1e6)
            engine.take_changed()  # the path recalculation drains it after every block
        rss = _rss_mb()
        tip = engine.tip_block or 0
        lookup_us = []
        for _ in range(2000):
            pool, block = rng.randrange(args.pools), tip - rng.randrange(DEFAULT_DEPTH)
            started = time.perf_counter()
            state_at(engine, pool, block)
            lookup_us.append((time.perf_counter() - started) * 1e6)
        revert_us, spill_revert_us = [], []
        deepest = max(0, len(blocks) - DEFAULT_DEPTH - 100)
        for number in range(len(blocks), deepest, -1):  # newest first, past the ring
            original = blocks[number - 1]
            events = [msgspec.structs.replace(e, is_revert=True) for e in reversed(original)]
            in_ring = len(engine.ring) > 0
            engine.take_changed()
            started = time.perf_counter()
            engine.revert_block(_begin(number, True), events)
            elapsed = (time.perf_counter() - started) * 1e6
            (revert_us if in_ring else spill_revert_us).append(elapsed)
    scale = f"{args.updates} updates, {args.pools:,} pools"
    rows = [
        Row(
            "apply block (incl. pre-images)",
            scale,
            f"p50 {percentile(apply_us, 50):.0f} µs, p99 {percentile(apply_us, 99):.0f} µs",
            "p99 ≤ 300 µs",
            percentile(apply_us, 99) <= 300,
        ),
        Row(
            "revert block (from ring)",
            scale,
            f"p50 {percentile(revert_us, 50):.0f} µs, p99 {percentile(revert_us, 99):.0f} µs",
            "p99 ≤ 300 µs",
            percentile(revert_us, 99) <= 300,
        ),
        Row(
            "revert block (from RocksDB spill)",
            scale,
            f"p50 {percentile(spill_revert_us, 50):.0f} µs, "
            f"p99 {percentile(spill_revert_us, 99):.0f} µs",
            "—",
            None,
        ),
        Row(
            "state_at(pool, block) in the ring",
            f"{DEFAULT_DEPTH}-block ring",
            f"p50 {percentile(lookup_us, 50):.0f} µs, p99 {percentile(lookup_us, 99):.0f} µs",
            "—",
            None,
        ),
        Row(
            "memory (RSS)",
            f"{args.pools:,} pools, {DEFAULT_DEPTH}-deep ring",
            f"{rss:.0f} MB",
            "≤ 300 MB",
            rss <= 300,
        ),
    ]
    print_report("arena: apply, revert, lookups, memory", rows)
    figures = {
        "apply_p99_us": percentile(apply_us, 99),
        "revert_p99_us": percentile(revert_us, 99),
        "rss_mb": rss,
    }
    for line in compare_baseline("arena", figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"saved {save_baseline('arena', figures)}")


if __name__ == "__main__":
    main()
