"""Whitelist changes over real NATS reach the engine at the next block boundary."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats

from arena.engine import PoolStatus
from arena.pipeline import PipelineConfig, open_pipeline
from arena.whitelist_changes import boundary_hook
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from exex_bridge.producers.broadcast import StreamSequencer
from exex_bridge.whitelist import RESEED_SUBJECT
from exex_bridge.whitelist_feed import WhitelistFeed
from tests.nats_server import NatsServer

TOKEN0 = {"address": "0x" + "a0" * 20, "decimals": 6, "symbol": "USDC"}
TOKEN1 = {"address": "0x" + "c0" * 20, "decimals": 18, "symbol": "WETH"}


def _pool(byte: int) -> dict[str, object]:
    return {
        "address": "0x" + f"{byte:02x}" * 20,
        "protocol": "v2",
        "token0": TOKEN0,
        "token1": TOKEN1,
        "fee": 3000,
    }


def _sync(seq: StreamSequencer, block: int, byte: int, reserves: int) -> m.PoolUpdate:
    return seq.pool_update(
        m.PoolUpdateMessage(
            pool_id=m.PoolAddress(value=bytes([byte]) * 20),
            protocol=m.Protocol.UNISWAP_V2,
            update_type=m.UpdateType.SWAP,
            block_number=block,
            block_timestamp=0,
            tx_index=0,
            log_index=0,
            is_revert=False,
            update=m.V2Sync(reserve0=reserves, reserve1=reserves + 1),
        )
    )


async def test_adds_and_removes_apply_at_the_block_boundary(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    whitelist = tmp_path / "w.json"
    whitelist.write_text(json.dumps({"chain": "ethereum", "pools": [_pool(0x11)]}))
    publisher = await nats.connect(nats_server.url)
    reseeds: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_reseed(msg: nats.aio.msg.Msg) -> None:
        await reseeds.put(msg.data)

    await publisher.subscribe(RESEED_SUBJECT, cb=on_reseed)
    await publisher.flush()
    with open_pipeline(PipelineConfig(whitelist=whitelist)) as pipeline:
        engine = pipeline.engine
        async with WhitelistFeed(nats_server.url) as feed:
            assert await asyncio.wait_for(reseeds.get(), 10) == b""  # asked for a re-send
            hook = boundary_hook(engine, pipeline.assembler, feed)
            pipeline.subscribe_block_start(hook)
            add = {"chain": "ethereum", "pools": [_pool(0x22), {**_pool(0x33), "protocol": "x"}]}
            await publisher.publish("whitelist.pools.ethereum.add", json.dumps(add).encode())
            await publisher.publish("whitelist.pools.ethereum.full", b"{not json")
            remove = {"pool_addresses": ["0x" + "11" * 20]}
            await publisher.publish("whitelist.pools.ethereum.remove", json.dumps(remove).encode())
            await publisher.flush()
            await asyncio.wait_for(feed.wait_for_documents(3), 10)
            assert (feed.documents, feed.rejected) == (2, 1)
            # Nothing changes between blocks ...
            assert set(engine.registry.lookup) == {bytes([0x11]) * 20}

            seq = StreamSequencer()
            pipeline.feed_frame(encode_message(seq.begin_block(101)))
            # ... the changes apply when block 101 opens, before any of it applies.
            assert set(engine.registry.lookup) == {bytes([0x22]) * 20}
            for msg in (_sync(seq, 101, 0x11, 5), _sync(seq, 101, 0x22, 7), seq.end_block(101)):
                pipeline.feed_frame(encode_message(msg))
            new = engine.registry.index_of[bytes([0x22]) * 20]
            old = engine.registry.index_of[bytes([0x11]) * 20]
            assert engine.table.reserves(new) == (7, 8)
            assert engine.status[new] == PoolStatus.LIVE
            assert engine.table.reserves(old) == (0, 0)  # removed before block 101
            ignored = engine.metrics.registry.get_sample_value(
                "arena_stream_updates_ignored_total", {"reason": "unknown_pool"}
            )
            assert ignored == 1

            # Inside a reorg envelope, changes wait for the next committed block outside it.
            full = {"chain": "ethereum", "pools": [_pool(0x44)]}
            await publisher.publish("whitelist.pools.ethereum.full", json.dumps(full).encode())
            await publisher.flush()
            await asyncio.wait_for(feed.wait_for_documents(4), 10)
            revert = m.BeginBlock(
                stream_seq=0,
                block_number=101,
                block_timestamp=0,
                base_fee_per_gas=0,
                is_revert=True,
            )
            hook(revert)
            assert set(engine.registry.lookup) == {bytes([0x22]) * 20}
            hook(
                m.BeginBlock(
                    stream_seq=0,
                    block_number=102,
                    block_timestamp=0,
                    base_fee_per_gas=0,
                    is_revert=False,
                )
            )
            assert set(engine.registry.lookup) == {bytes([0x44]) * 20}  # full replaces
    await publisher.close()


async def test_a_feed_with_no_server_fails_within_its_connect_timeout() -> None:
    """Nothing listens on port 1: start() gives up instead of retrying forever (which
    kept `arena run --whitelist-nats` from starting or stopping)."""
    feed = WhitelistFeed("nats://127.0.0.1:1")
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        await asyncio.wait_for(feed.start(connect_timeout=0.5), 30)
    except TimeoutError:
        pass
    else:
        raise AssertionError("connected to a port where nothing listens")
    assert loop.time() - began < 10
