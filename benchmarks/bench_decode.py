"""Decode throughput of the ExEx wire on a realistic frame mix, framing included.

.venv/bin/python -m benchmarks.bench_decode [--frames 200000] [--runs 7] [--save-baseline]
                                             [--profile]

The stream is blocks of 40 frames: BeginBlock, 38 pool updates, EndBlock. Overall that is
45% V3Swap, 35% V2Sync, 10% V3Liquidity and 10% other (the block boundaries plus a spread
of the remaining PoolUpdate variants and reorg messages). Pools are drawn with a skew
(a few pools are hot) from 5 000 addresses and 200 V4 pool ids. Budget: DESIGN.md,
"decode frames ≥ 500 000 frames/s".
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from benchmarks.common import Row, compare_baseline, median, print_report, save_baseline
from exex_bridge import messages as m
from exex_bridge.codec import decode_frames, decode_message, encode_frame
from exex_bridge.framing import FrameSplitter, iter_frames

BUDGET_FRAMES_PER_S = 500_000
CHUNK = 64 * 1024  # a socket read
P = m.Protocol
U = m.UpdateType


class At(NamedTuple):
    seq: int
    block: int
    tx: int


class MixBuilder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.addresses = [self.rng.randbytes(20) for _ in range(5000)]
        self.pool_ids = [self.rng.randbytes(32) for _ in range(200)]
        self.address_weights = [1 / (i + 1) for i in range(len(self.addresses))]

    def address(self) -> m.PoolAddress:
        return m.PoolAddress(value=self.rng.choices(self.addresses, self.address_weights)[0])

    def v4(self) -> m.V4PoolId:
        return m.V4PoolId(value=self.rng.choice(self.pool_ids))

    def u128(self) -> int:
        return self.rng.getrandbits(self.rng.randint(20, 128))

    def slot0(self) -> dict[str, int]:
        r = self.rng
        return {
            "sqrt_price_x96": r.getrandbits(r.randint(64, 160)),
            "liquidity": r.getrandbits(r.randint(40, 110)),
            "tick": r.randint(-887272, 887272),
        }

    def liquidity(self) -> dict[str, int]:
        r = self.rng
        lower = r.randrange(-887200, 887000, 60)
        return {
            "tick_lower": lower,
            "tick_upper": lower + 60 * r.randint(1, 100),
            "liquidity_delta": r.choice((1, -1)) * r.getrandbits(r.randint(30, 100)),
        }

    def event(
        self, at: At, update: m.PoolUpdatePayload, pool: m.PoolIdentifier, proto: P
    ) -> m.PoolUpdate:
        kind = U.SWAP
        if isinstance(update, (m.V3Liquidity, m.V4Liquidity, m.EkuboLiquidity)):
            kind = U.MINT if update.liquidity_delta >= 0 else U.BURN
        return m.PoolUpdate(
            stream_seq=at.seq,
            event=m.PoolUpdateMessage(
                pool_id=pool,
                protocol=proto,
                update_type=kind,
                block_number=at.block,
                block_timestamp=1_700_000_000 + 12 * at.block,
                tx_index=at.tx,
                log_index=at.tx * 3,
                is_revert=False,
                update=update,
            ),
        )

    def rare_update(self) -> tuple[m.PoolUpdatePayload, m.PoolIdentifier, P]:
        r, u128 = self.rng, self.u128
        fluid = m.FluidReserves(**{f: u128() for f in m.FluidReserves.__struct_fields__})
        options: list[tuple[m.PoolUpdatePayload, m.PoolIdentifier, P]] = [
            (m.V4Swap(**self.slot0()), self.v4(), P.UNISWAP_V4),
            (m.V4Liquidity(**self.liquidity()), self.v4(), P.UNISWAP_V4),
            (m.EkuboSwap(sqrt_ratio=u128(), liquidity=u128(), tick=-3), self.v4(), P.EKUBO),
            (
                m.CurveLiquidity(
                    effective_balances=(u128(), u128(), u128()),
                    fee=4_000_000,
                    offpeg_fee_multiplier=20_000_000_000,
                    initial_a=2000,
                    future_a=2000,
                    initial_a_time=0,
                    future_a_time=0,
                ),
                self.address(),
                P.CURVE_STABLE,
            ),
            (
                m.TwoCryptoState(balances=(u128(), u128()), price_scale=u128(), d=u128()),
                self.address(),
                P.CURVE_TWO_CRYPTO,
            ),
            (
                m.BalancerSwap(
                    token_in=r.randbytes(20),
                    token_out=r.randbytes(20),
                    amount_in=u128(),
                    amount_out=u128(),
                ),
                self.address(),
                P.BALANCER_V2_WEIGHTED,
            ),
            (m.FluidState(state=fluid), self.address(), P.FLUID),
        ]
        return r.choice(options)

    def other(self, at: At) -> m.ControlMessage:
        """One of the rarer frames: another PoolUpdate variant or a reorg message."""
        roll = self.rng.random()
        if roll < 0.15:
            state = m.Slot0State(**self.slot0())
            final = m.Slot0Final(pool_id=self.address(), protocol=P.UNISWAP_V3, state=state)
            return m.ReorgEpilogue(
                stream_seq=at.seq,
                final_tip_block=at.block,
                final_tip_timestamp=1_700_000_000,
                update=final,
            )
        if roll < 0.2:
            return m.ReorgComplete(stream_seq=at.seq, final_tip_block=at.block)
        return self.event(at, *self.rare_update())

    def update(self, kind: str, at: At) -> m.ControlMessage:
        r = self.rng
        if kind == "V3Swap":
            return self.event(at, m.V3Swap(**self.slot0()), self.address(), P.UNISWAP_V3)
        if kind == "V2Sync":
            sync = m.V2Sync(reserve0=r.getrandbits(r.randint(40, 112)), reserve1=r.getrandbits(100))
            return self.event(at, sync, self.address(), P.UNISWAP_V2)
        if kind == "V3Liquidity":
            return self.event(at, m.V3Liquidity(**self.liquidity()), self.address(), P.UNISWAP_V3)
        return self.other(at)

    def messages(self, frames: int) -> Iterator[m.ControlMessage]:
        kinds = ["V3Swap"] * 18 + ["V2Sync"] * 14 + ["V3Liquidity"] * 4 + ["other"] * 2
        seq, block = 1, 20_000_000
        while frames > 0:
            yield m.BeginBlock(
                stream_seq=seq,
                block_number=block,
                block_timestamp=1_700_000_000 + 12 * block,
                base_fee_per_gas=self.rng.randint(10**9, 10**11),
                is_revert=False,
            )
            self.rng.shuffle(kinds)
            for tx, kind in enumerate(kinds):
                yield self.update(kind, At(seq + 1 + tx, block, tx))
            seq += len(kinds) + 1
            yield m.EndBlock(stream_seq=seq, block_number=block, num_updates=len(kinds))
            seq += 1
            block += 1
            frames -= len(kinds) + 2


def build_stream(frames: int, seed: int = 7) -> tuple[bytes, int]:
    msgs = list(MixBuilder(seed).messages(frames))
    return b"".join(encode_frame(msg) for msg in msgs), len(msgs)


def run_iter_frames(stream: bytes) -> int:
    n = 0
    for payload in iter_frames(stream):
        decode_message(payload)
        n += 1
    return n


def run_splitter(stream: bytes) -> int:
    splitter = FrameSplitter()
    n = 0
    for start in range(0, len(stream), CHUNK):
        for payload in splitter.feed(stream[start : start + CHUNK]):
            decode_message(payload)
            n += 1
    splitter.finish()
    return n


def run_decode_frames(stream: bytes) -> int:
    """The batch API over socket-sized reads, carrying a partial frame to the next read."""
    buf = bytearray()
    n = 0
    for start in range(0, len(stream), CHUNK):
        buf += stream[start : start + CHUNK]
        items, end = decode_frames(buf)
        del buf[:end]
        n += len(items)
    return n


class Rates(NamedTuple):
    cpu: list[float]  # frames per CPU-second of this thread
    wall: list[float]  # frames per wall-clock second


def rates(run: Callable[[bytes], int], stream: bytes, frames: int, runs: int) -> Rates:
    out = Rates([], [])
    for _ in range(runs):
        c0, t0 = time.thread_time(), time.perf_counter()
        got = run(stream)
        cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
        if got != frames:
            raise RuntimeError(f"decoded {got} frames, expected {frames}")
        out.cpu.append(frames / cpu)
        out.wall.append(frames / wall)
    return out


def per_kind_micros(stream: bytes, frames: int) -> list[tuple[str, float, float]]:
    """(kind, share of frames, CPU µs per decode without framing), to see where time goes."""
    groups: dict[str, list[bytes]] = {}
    for payload in iter_frames(stream):
        msg = decode_message(payload)
        up = msg.event.update if isinstance(msg, m.PoolUpdate) else msg
        groups.setdefault(type(up).__name__, []).append(bytes(payload))
    out = []
    for kind, payloads in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        t0 = time.thread_time()
        for _ in range(5):
            for p in payloads:
                decode_message(p)
        micros = (time.thread_time() - t0) / len(payloads) / 5 * 1e6
        out.append((kind, len(payloads) / frames, micros))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--save-baseline", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile one splitter run")
    args = ap.parse_args()

    stream, frames = build_stream(args.frames)
    scale = f"{frames:,} frames, {len(stream) / frames:.0f} B avg"
    results = {
        "iter_frames + decode_message": rates(run_iter_frames, stream, frames, args.runs),
        "FrameSplitter(64 KiB) + decode_message": rates(run_splitter, stream, frames, args.runs),
        "decode_frames(64 KiB reads)": rates(run_decode_frames, stream, frames, args.runs),
    }
    rows = []
    figures = {}
    for stage, r in results.items():
        cpu, wall = median(r.cpu), median(r.wall)
        figures[stage] = cpu
        rows.append(
            Row(
                f"decode frames: {stage}",
                scale,
                f"{cpu:,.0f}/s (best {max(r.cpu):,.0f}; wall-clock {wall:,.0f}/s)",
                f"≥ {BUDGET_FRAMES_PER_S:,}/s",
                cpu >= BUDGET_FRAMES_PER_S,
            )
        )
    for kind, share, micros in per_kind_micros(stream, frames):
        rows.append(
            Row(f"  decode_message: {kind}", f"{share:.1%} of frames", f"{micros:.2f} µs", "", None)
        )
    print_report(
        f"bench_decode: median of {args.runs} runs, frames per CPU-second of the decoding"
        " thread (single-threaded: one core's throughput; wall-clock shown for reference)",
        rows,
    )
    for line in compare_baseline("decode", figures):
        print(line)
    if args.save_baseline:
        print(f"saved {save_baseline('decode', figures)}")
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(run_splitter, stream)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
