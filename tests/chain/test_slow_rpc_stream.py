"""A node that takes 5 s to answer never stalls the stream.

`arena run` (a real process) resyncs through a proxy that delays every answer by 5 s,
while a producer speaking the real wire (the broadcast server: a bounded queue per
client, cut off when it lags) streams blocks at a steady 20 000 frames per second. The
arena keeps reading: every frame is taken off the socket while the resync is pending
(held, then applied in order), the producer never cuts it off, and once the slow answers
are in the state is exact: the node's state at the block before the first one, with the
streamed updates on top.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena.hydration import V2PoolSnapshot, V3PoolSnapshot, hydrate_pools
from arena.state_file import read_state_file
from devchain.whitelist_file import write_whitelist
from exex_bridge import messages as m
from exex_bridge.codec import encode_frame
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from tests.chain.conftest import DevChain
from tests.exex_bridge.socket_streams import socket_path_in, swap_event
from tests.rpc_proxy import RpcProxy

pytestmark = pytest.mark.chain

DELAY_S = 5.0
BLOCKS = 400
NOISE_PER_BLOCK = 200  # swaps of pools not on the whitelist: read, framed, ignored
FRAMES_PER_TICK = NOISE_PER_BLOCK + 2  # one block per tick
TICK_S = 0.01  # the producer's pace: ~20 000 frames/s
CLIENT_QUEUE = 50_000  # a reader stalled for the 5 s would overflow it four times over
SYNC = (123_456_789, 987_654_321)


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "slow.sock")


class _Lines:
    """The subprocess's stderr, read all along (a full pipe would stall it)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()

    async def wait_for(self, pattern: re.Pattern[str]) -> re.Match[str]:
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if found := pattern.search(line):
                    return found
            seen = len(self.lines)
            if self._task.done():
                raise AssertionError(f"never logged {pattern.pattern}:\n" + "\n".join(self.lines))
            self._changed.clear()
            await self._changed.wait()

    async def close(self) -> str:
        await self._task
        return "\n".join(self.lines)


def _sync_event(block: int, pool: bytes) -> m.PoolUpdateMessage:
    return m.PoolUpdateMessage(
        pool_id=m.PoolAddress(value=pool),
        protocol=m.Protocol.UNISWAP_V2,
        update_type=m.UpdateType.SWAP,
        block_number=block,
        block_timestamp=block,
        tx_index=0,
        log_index=NOISE_PER_BLOCK,
        is_revert=False,
        update=m.V2Sync(reserve0=SYNC[0], reserve1=SYNC[1]),
    )


def _stream(first: int, v2_pool: bytes) -> list[list[bytes]]:
    """Per block, its frames: noise swaps, and in the second block a Sync of `v2_pool`."""
    sequencer = StreamSequencer()
    blocks = []
    for number in range(first, first + BLOCKS):
        events = [swap_event(number, i + 1) for i in range(NOISE_PER_BLOCK)]
        if number == first + 1:
            events.append(_sync_event(number, v2_pool))
        messages = sequencer.block(number, events, base_fee_per_gas=10**9)
        blocks.append([encode_frame(msg) for msg in messages])
    return blocks


async def test_a_5s_rpc_never_stops_the_arena_reading_the_stream(
    clean_devchain: DevChain, tmp_path: Path, sock: str
) -> None:
    w3, deployment = clean_devchain.w3, clean_devchain.deployment
    whitelist = write_whitelist(deployment, tmp_path / "w.json")
    state_out = tmp_path / "state.json"
    head = w3.eth.block_number
    first, last = head + 1, head + BLOCKS
    v2 = next(p for p in deployment.pools if p.protocol == "v2")
    blocks = _stream(first, bytes.fromhex(v2.address[2:]))
    total = sum(len(b) for b in blocks)
    async with (
        RpcProxy(clean_devchain.node.url, delay_s=DELAY_S) as proxy,
        FrameBroadcastServer(sock, client_queue=CLIENT_QUEUE) as server,
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sidecar.cli",
            "run",
            "--socket",
            sock,
            "--whitelist",
            str(whitelist),
            "--rpc",
            proxy.url,
            "--rpc-timeout",
            "60",
            "--state-out",
            str(state_out),
            "--spill-depth",
            "0",
            "--health-interval",
            "0.2",
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stderr is not None
        lines = _Lines(process.stderr)
        try:
            async with asyncio.timeout(300):
                await server.wait_for_clients(1)
                await server.publish_many(blocks[0][:1])  # BeginBlock(first): the resync starts
                await proxy.wait_until(lambda p: p.requests >= 1)
                for frames in [blocks[0][1:], *blocks[1:]]:
                    await server.publish_many(frames)
                    await asyncio.sleep(TICK_S)  # the producer's pace, not a wait on the arena
                await server.flush()  # every frame handed to the arena's socket
                answered_when_flushed = proxy.answered
                applied = await lines.wait_for(
                    re.compile(
                        r"resync: \d+ pools at block (\d+) in "
                        r"[\d.]+s; applying (\d+) held frames"
                    )
                )
                await lines.wait_for(re.compile(rf"health: synced tip={last} stale=0 "))
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
            log = await lines.close()
        stats = server.stats
    assert process.returncode == 0, log
    # The slow node had not finished answering when the producer had sent everything...
    assert answered_when_flushed < proxy.answered
    # ...and by then the arena had read every frame: all were held for the resync at `head`.
    assert int(applied.group(1)) == head
    assert int(applied.group(2)) == total - 1, log
    assert (stats.dropped, stats.lagging_disconnects) == (0, 0)
    assert "disconnected from" not in log
    state = read_state_file(state_out)
    assert state.block == last and not state.unsynced and state.stale == []
    pools = [(p.address, p.protocol) for p in deployment.pools]
    for (address, _), snap in zip(pools, hydrate_pools(w3, pools, head), strict=True):
        held = state.pools[address.lower()]
        if address == v2.address:
            assert (held.reserve0, held.reserve1) == (str(SYNC[0]), str(SYNC[1]))
        elif isinstance(snap, V2PoolSnapshot):
            assert (held.reserve0, held.reserve1) == (str(snap.reserve0), str(snap.reserve1))
        else:
            assert isinstance(snap, V3PoolSnapshot)
            assert (held.sqrt_price_x96, held.liquidity, held.tick) == (
                str(snap.sqrt_price_x96),
                str(snap.liquidity),
                snap.tick,
            )
            ticks = {int(t): (int(v.net), int(v.gross)) for t, v in (held.ticks or {}).items()}
            assert ticks == snap.ticks
