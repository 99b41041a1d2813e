"""Arena benchmarks: apply and revert a block, ring lookups, spill, memory, replay.

    .venv/bin/python -m benchmarks.bench_arena [--pools 50000] [--updates 200] [--blocks 600]

Blocks carry the stream's realistic mix (45% V3Swap, 35% V2Sync, 10% V3 mint/burn,
10% updates of unmodelled protocols) over half V2, half V3 pools with tick maps. Apply
is measured on both paths: the columnar one (the engine given each update's frame, as
the pipeline does) and the reference fold; reverts (one path) on both engines. The
columnar engine runs first and alone, so the memory row is one engine's. The replay row
feeds encoded frames through a `Pipeline` with no subscriber (what `arena replay` does
without the pathfinder).
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
from arena.pipeline import Pipeline
from arena.snapshot_ring import DEFAULT_DEPTH
from arena.spill import RocksSpill
from benchmarks.common import (
    Row,
    compare_baseline,
    percentile,
    print_report,
    save_baseline,
)
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


class PathFigures:
    """Per-block latencies (µs) of one engine through the benchmark's history."""

    def __init__(self) -> None:
        self.apply_us: list[float] = []
        self.revert_us: list[float] = []
        self.spill_revert_us: list[float] = []
        self.lookup_us: list[float] = []
        self.rss_mb = float("nan")

    def cell(self, name: str) -> str:
        values = getattr(self, name)
        return f"p50 {percentile(values, 50):.0f} µs, p99 {percentile(values, 99):.0f} µs"


def run_path(
    frames: list[list[bytes]], pools: int, spill_dir: Path, *, columnar: bool, lookups: bool
) -> PathFigures:
    """Apply every block, then revert newest first past the ring into the spill."""
    engine = build_engine(pools, spill_dir)
    out = PathFigures()
    for k, block_frames in enumerate(frames):
        # As in production, a block's messages are decoded just before it is applied (so
        # they are in cache); decoding is measured on its own by bench_decode.
        events = [_unwrap(decode_message(f)) for f in block_frames]
        started = time.perf_counter()
        engine.apply_block(_begin(1 + k, False), events, block_frames if columnar else None)
        out.apply_us.append((time.perf_counter() - started) * 1e6)
        engine.take_changed()  # the path recalculation drains it after every block
    out.rss_mb = _rss_mb()
    tip = engine.tip_block or 0
    rng = random.Random(11)
    for _ in range(2000 if lookups else 0):
        pool, block = rng.randrange(pools), tip - rng.randrange(DEFAULT_DEPTH)
        started = time.perf_counter()
        state_at(engine, pool, block)
        out.lookup_us.append((time.perf_counter() - started) * 1e6)
    deepest = max(0, len(frames) - DEFAULT_DEPTH - 100)
    for number in range(len(frames), deepest, -1):  # newest first, past the ring
        decoded = [_unwrap(decode_message(f)) for f in frames[number - 1]]
        events = [msgspec.structs.replace(e, is_revert=True) for e in reversed(decoded)]
        in_ring = len(engine.ring) > 0
        engine.take_changed()
        started = time.perf_counter()
        engine.revert_block(_begin(number, True), events)
        elapsed = (time.perf_counter() - started) * 1e6
        (out.revert_us if in_ring else out.spill_revert_us).append(elapsed)
    if engine.ring.spill is not None:
        engine.ring.spill.clear()
    return out


def stream_frames(blocks: list[list[m.PoolUpdateMessage]]) -> list[bytes]:
    """The frame payloads of committed blocks, `stream_seq` continuous."""
    out: list[bytes] = []
    for k, events in enumerate(blocks):
        number = 1 + k
        out.append(
            encode_message(msgspec.structs.replace(_begin(number, False), stream_seq=len(out)))
        )
        for event in events:
            out.append(encode_message(m.PoolUpdate(stream_seq=len(out), event=event)))
        out.append(
            encode_message(
                m.EndBlock(stream_seq=len(out), block_number=number, num_updates=len(events))
            )
        )
    return out


def replay_rate(stream: list[bytes], pools: int, *, columnar: bool) -> float:
    """Frames per second through `Pipeline.feed_frame`, no subscriber."""
    pipeline = Pipeline(build_engine(pools, None), columnar=columnar)
    started = time.perf_counter()
    for payload in stream:
        pipeline.feed_frame(payload)
    elapsed = time.perf_counter() - started
    if pipeline.engine.tip_block is None or pipeline.decode_errors:
        raise RuntimeError("the replay stream did not apply")
    return len(stream) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=600)
    parser.add_argument("--replay-blocks", type=int, default=300)
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    blocks = [make_block(rng, 1 + k, args.pools, args.updates) for k in range(args.blocks)]
    frames = [[encode_message(_wrap(e)) for e in events] for events in blocks]
    with tempfile.TemporaryDirectory() as tmp:
        columnar = run_path(frames, args.pools, Path(tmp) / "c", columnar=True, lookups=True)
        reference = run_path(frames, args.pools, Path(tmp) / "r", columnar=False, lookups=False)
    stream = stream_frames(blocks[: args.replay_blocks])
    replay = {path: replay_rate(stream, args.pools, columnar=path) for path in (True, False)}
    rows = report_rows(args, columnar, reference, replay)
    print_report("arena: apply, revert, lookups, memory, replay", rows)
    figures = {
        "apply_p99_us": percentile(columnar.apply_us, 99),
        "revert_p99_us": percentile(columnar.revert_us, 99),
        "reference_apply_p99_us": percentile(reference.apply_us, 99),
        "reference_revert_p99_us": percentile(reference.revert_us, 99),
        "rss_mb": columnar.rss_mb,
    }
    for line in compare_baseline("arena", figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"saved {save_baseline('arena', figures)}")


def report_rows(
    args: argparse.Namespace,
    columnar: PathFigures,
    reference: PathFigures,
    replay: dict[bool, float],
) -> list[Row]:
    scale = f"{args.updates} updates, {args.pools:,} pools"
    rows = []
    for label, figures in (("columnar", columnar), ("reference", reference)):
        rows += [
            Row(
                f"apply block (incl. pre-images), {label}",
                scale,
                figures.cell("apply_us"),
                "p99 ≤ 300 µs",
                percentile(figures.apply_us, 99) <= 300,
            ),
            Row(
                f"revert block (from ring), {label} engine",
                scale,
                figures.cell("revert_us"),
                "p99 ≤ 300 µs",
                percentile(figures.revert_us, 99) <= 300,
            ),
            Row(
                f"revert block (from RocksDB spill), {label} engine",
                scale,
                figures.cell("spill_revert_us"),
                "—",
                None,
            ),
        ]
    for path, rate in replay.items():
        rows.append(
            Row(
                f"replay, no pathfinder, {'columnar' if path else 'reference'}",
                f"{args.replay_blocks} blocks × {args.updates + 2} frames, {args.pools:,} pools",
                f"{rate:,.0f} frames/s",
                "≥ 250 000 frames/s",
                rate >= 250_000,
            )
        )
    rows += [
        Row(
            "state_at(pool, block) in the ring",
            f"{DEFAULT_DEPTH}-block ring",
            columnar.cell("lookup_us"),
            "—",
            None,
        ),
        Row(
            "memory (RSS)",
            f"{args.pools:,} pools, {DEFAULT_DEPTH}-deep ring",
            f"{columnar.rss_mb:.0f} MB",
            "≤ 300 MB",
            columnar.rss_mb <= 300,
        ),
    ]
    return rows


if __name__ == "__main__":
    main()
