"""Frames per second through the JetStream relay: producer socket → `arena relay` →
JetStream → `JetStreamSource` → `Pipeline.feed_frame` (the arena's apply).

.venv/bin/python -m benchmarks.bench_relay [--frames 100000] [--pools 500] [--save-baseline]
                                           [--profile]

A real nats-server (`-js`, file store in a temporary directory), `arena relay` as its own
process (as in production), and in this process the producer (a Unix socket server
writing prebuilt frames) and the consumer. The stream is blocks of 40 frames:
BeginBlock, 38 V2Sync pool updates over `--pools` whitelisted pools, EndBlock.
Rows: the relay alone (socket → every frame acknowledged by JetStream), the consumer
alone on a full stream (with and without the apply), and everything at once (first frame
written to the socket → last frame applied). Budget: DESIGN.md, "relay → JetStream →
arena ≥ 50 000 frames/s end to end". `--profile` prints the consumer's hot spots.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import pstats
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient

from arena.pipeline import Pipeline, PipelineConfig, open_pipeline
from benchmarks.common import Row, compare_baseline, print_report, save_baseline
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from exex_bridge.framing import frame
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from exex_bridge.relay_stream import MSG_ID_HEADER, BatchId, frames_subject, stream_name

BUDGET_FRAMES_PER_S = 50_000
UPDATES_PER_BLOCK = 38
ROOT = Path(__file__).resolve().parents[1]
_READY = re.compile(rb"Listening for client connections on [0-9.]+:(\d+)")


def build_frames(count: int, pools: int, seed: int = 5) -> tuple[list[bytes], list[bytes]]:
    """(frames, pool addresses): whole blocks, at least `count` frames."""
    rng = random.Random(seed)
    addresses = [rng.randbytes(20) for _ in range(pools)]
    seq = StreamSequencer()
    frames: list[bytes] = []
    block = 1_000
    while len(frames) < count:
        block += 1
        events = [
            m.PoolUpdateMessage(
                pool_id=m.PoolAddress(value=rng.choice(addresses)),
                protocol=m.Protocol.UNISWAP_V2,
                update_type=m.UpdateType.SWAP,
                block_number=block,
                block_timestamp=block * 12,
                tx_index=i,
                log_index=i,
                is_revert=False,
                update=m.V2Sync(
                    reserve0=rng.getrandbits(100) + 1, reserve1=rng.getrandbits(100) + 1
                ),
            )
            for i in range(UPDATES_PER_BLOCK)
        ]
        frames += [encode_message(msg) for msg in seq.block(block, events)]
    return frames, addresses


def write_whitelist(path: Path, addresses: list[bytes]) -> Path:
    def token(n: int) -> dict[str, object]:
        return {"address": "0x" + n.to_bytes(20, "big").hex(), "decimals": 18, "symbol": f"T{n}"}

    pools = [
        {
            "address": "0x" + a.hex(),
            "protocol": "v2",
            "token0": token(1),
            "token1": token(2),
            "fee": 3000,
        }
        for a in addresses
    ]
    path.write_text(json.dumps({"chain": "bench", "pools": pools}))
    return path


@contextlib.asynccontextmanager
async def nats_server(store: Path) -> AsyncIterator[str]:
    binary = Path(sys.executable).parent / "nats-server"
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "-a",
        "127.0.0.1",
        "-p",
        "-1",
        "-js",
        "-sd",
        str(store),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    port = 0
    async with asyncio.timeout(30):
        while b"Server is ready" not in (line := await proc.stdout.readline()):
            if not line:
                raise RuntimeError("nats-server exited")
            if found := _READY.search(line):
                port = int(found.group(1))
    drain = asyncio.create_task(proc.stdout.read())
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        await proc.wait()
        drain.cancel()


@contextlib.asynccontextmanager
async def relay_process(sock: Path, url: str, chain: str) -> AsyncIterator[None]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "--log-level",
        "WARNING",
        "relay",
        "--socket",
        str(sock),
        "--nats",
        url,
        "--chain",
        chain,
        cwd=ROOT,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        await proc.wait()


async def stored(nc: NatsClient, chain: str) -> int:
    """The stream_seq of the last frame stored (every benchmark frame is sequenced)."""
    try:
        msg = await nc.jetstream().get_last_msg(stream_name(chain), frames_subject(chain))
    except nats.js.errors.NotFoundError:
        return 0
    found = BatchId.parse((msg.headers or {}).get(MSG_ID_HEADER, ""))
    return 0 if found is None else found.last.seq


async def until_stored(url: str, chain: str, count: int) -> int:
    """Wait until the `count`-th frame is stored; the number of messages then."""
    nc = await nats.connect(url)
    try:
        while await stored(nc, chain) < count:
            await asyncio.sleep(0.01)
        return (await nc.jetstream().stream_info(stream_name(chain))).state.messages
    finally:
        await nc.close()


async def consume(url: str, chain: str, count: int, feed: Callable[[bytes], object]) -> None:
    """Feed the first `count` frames of the stream."""
    source = JetStreamSource(url, chain, "bench")
    async with contextlib.aclosing(source.frames()) as frames:
        async for payload in frames:
            feed(payload)
            count -= 1
            if not count:
                return


def rate(frames: int, seconds: float) -> str:
    return f"{frames / seconds:,.0f} frames/s ({seconds:.2f} s)"


async def measure(
    frames: list[bytes], whitelist: Path, tmp: Path, profile: bool
) -> dict[str, float]:
    n = len(frames)
    framed = [frame(f) for f in frames]
    figures: dict[str, float] = {}
    async with nats_server(tmp / "js") as url:
        # 1. the relay alone
        sock = tmp / "a.sock"
        async with (
            FrameBroadcastServer(sock, client_queue=n + 1) as producer,
            relay_process(sock, url, "alone"),
        ):
            await producer.wait_for_clients(1)
            started = time.perf_counter()
            await producer.publish_many(framed)
            messages = await until_stored(url, "alone", n)
            figures["relay"] = n / (time.perf_counter() - started)
            print(f"{n:,} frames in {messages:,} messages ({n / messages:.1f} frames each)")
        # 2. the consumer alone on the full stream, without and with the apply
        started = time.perf_counter()
        await consume(url, "alone", n, lambda _: None)
        figures["consume"] = n / (time.perf_counter() - started)
        with open_pipeline(PipelineConfig(whitelist=whitelist)) as pipeline:
            profiler = cProfile.Profile() if profile else None
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            await consume(url, "alone", n, pipeline.feed_frame)
            if profiler is not None:
                profiler.disable()
            figures["consume_apply"] = n / (time.perf_counter() - started)
            _check(pipeline)
        # 3. everything at once
        sock = tmp / "b.sock"
        async with (
            FrameBroadcastServer(sock, client_queue=n + 1) as producer,
            relay_process(sock, url, "live"),
        ):
            await producer.wait_for_clients(1)
            with open_pipeline(PipelineConfig(whitelist=whitelist)) as pipeline:
                await until_stored_stream(url, "live")
                started = time.perf_counter()
                consumer = asyncio.create_task(consume(url, "live", n, pipeline.feed_frame))
                await producer.publish_many(framed)
                await consumer
                figures["end_to_end"] = n / (time.perf_counter() - started)
                _check(pipeline)
    if profile and profiler is not None:
        print("consumer + apply, by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return figures


async def until_stored_stream(url: str, chain: str) -> None:
    """Until the relay has created the chain's stream."""
    nc = await nats.connect(url)
    try:
        while True:
            try:
                await nc.jetstream().stream_info(stream_name(chain))
                return
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.02)
    finally:
        await nc.close()


def _check(pipeline: Pipeline) -> None:
    if not pipeline.engine.synced:
        raise RuntimeError(f"the arena lost data: {pipeline.engine.sync_status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--pools", type=int, default=500)
    parser.add_argument("--save-baseline", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    frames, addresses = build_frames(args.frames, args.pools)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        whitelist = write_whitelist(tmp / "whitelist.json", addresses)
        figures = asyncio.run(measure(frames, whitelist, tmp, args.profile))
    n = len(frames)
    scale = f"{n:,} frames, {args.pools} V2 pools"
    budget = f"≥ {BUDGET_FRAMES_PER_S:,}/s"
    rows = [
        Row(
            "socket → relay → JetStream acked",
            scale,
            f"{figures['relay']:,.0f} frames/s",
            "—",
            None,
        ),
        Row(
            "JetStream → consumer (no apply)",
            scale,
            f"{figures['consume']:,.0f} frames/s",
            "—",
            None,
        ),
        Row(
            "JetStream → consumer → apply",
            scale,
            f"{figures['consume_apply']:,.0f} frames/s",
            "—",
            None,
        ),
        Row(
            "end to end: socket → relay → JetStream → apply",
            scale,
            f"{figures['end_to_end']:,.0f} frames/s",
            budget,
            figures["end_to_end"] >= BUDGET_FRAMES_PER_S,
        ),
    ]
    print_report("JetStream relay throughput", rows)
    for line in compare_baseline("bench_relay", figures):
        print(line)
    if args.save_baseline:
        print(f"saved {save_baseline('bench_relay', figures)}")


if __name__ == "__main__":
    main()
