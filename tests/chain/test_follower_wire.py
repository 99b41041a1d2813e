"""The chain follower's stream on the real contracts: exact frames, exact reorg envelopes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from devchain import TrafficGenerator, rollback, rpc_call
from devchain.abi import call, encode_call
from devchain.chain_proof import Step, change_chain
from devchain.rpc import TxRequest, block_header, execute_block
from devchain.whitelist_file import whitelist_json
from exex_bridge import messages as m
from exex_bridge.codec import decode_message, encode_message
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.producers.chain_follower import ChainFollower, PollReport
from exex_bridge.producers.log_decoding import V2_SYNC, V3_BURN, V3_MINT, V3_SWAP
from exex_bridge.socket_source import SocketSource
from exex_bridge.whitelist import Whitelist, parse_pools_document
from tests.chain.conftest import DevChain
from tests.exex_bridge.socket_streams import socket_path_in

pytestmark = pytest.mark.chain

MAX_UINT128 = 2**128 - 1


class Harness:
    """A follower publishing on a real socket, and a client reading it back."""

    def __init__(self, follower: ChainFollower, received: asyncio.Queue[bytes]) -> None:
        self.follower = follower
        self.received = received
        self.messages: list[m.ControlMessage] = []

    async def poll(self) -> tuple[PollReport, list[m.ControlMessage]]:
        report = await self.follower.poll_once()
        payloads = [await asyncio.wait_for(self.received.get(), 30) for _ in range(report.frames)]
        assert self.received.empty()
        decoded = []
        for payload in payloads:
            msg = decode_message(payload)  # every frame decodes to its end
            assert encode_message(msg) == payload  # and is the producer's exact encoding
            decoded.append(msg)
        self.messages += decoded
        return report, decoded


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "follower.sock")


@pytest.fixture
def whitelist(clean_devchain: DevChain) -> Whitelist:
    return parse_pools_document(whitelist_json(clean_devchain.deployment))


@contextlib.asynccontextmanager
async def harness(
    devchain: DevChain, whitelist: Whitelist, sock: str, **kwargs: Any
) -> AsyncIterator[Harness]:
    received: asyncio.Queue[bytes] = asyncio.Queue()
    async with FrameBroadcastServer(sock) as server, SocketSource(sock) as source:

        async def read() -> None:
            async for payload in source.frames():
                received.put_nowait(payload)

        reader = asyncio.create_task(read())
        await server.wait_for_clients(1)
        start = devchain.w3.eth.block_number + 1
        follower = ChainFollower(devchain.w3, whitelist, server, start_block=start, **kwargs)
        try:
            yield Harness(follower, received)
        finally:
            await source.close()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def _sequenced(messages: list[m.ControlMessage]) -> list[int]:
    return [msg.stream_seq for msg in messages if hasattr(msg, "stream_seq")]


def _blocks(messages: list[m.ControlMessage]) -> dict[int, list[m.PoolUpdateMessage]]:
    """Committed blocks' updates by block number (the last committed version of each)."""
    out: dict[int, list[m.PoolUpdateMessage]] = {}
    current: list[m.PoolUpdateMessage] | None = None
    for msg in messages:
        if isinstance(msg, m.BeginBlock):
            current = [] if not msg.is_revert else None
            if current is not None:
                out[msg.block_number] = current
        elif isinstance(msg, m.PoolUpdate) and current is not None:
            current.append(msg.event)
    return out


def _topic0(devchain: DevChain, block: int, tx_index: int, log_index: int) -> tuple[str, bytes]:
    tx_hash = block_header(devchain.w3, block)["transactions"][tx_index]
    receipt = rpc_call(devchain.w3, "eth_getTransactionReceipt", [tx_hash])
    entry = receipt["logs"][log_index]  # the producer's index is receipt-local
    return str(entry["address"]).lower(), bytes.fromhex(entry["topics"][0][2:])


async def test_committed_blocks_are_exact_and_match_the_chain(
    clean_devchain: DevChain, whitelist: Whitelist, sock: str
) -> None:
    generator = TrafficGenerator(clean_devchain.w3, clean_devchain.deployment, seed=5)
    async with harness(clean_devchain, whitelist, sock) as h:
        first = clean_devchain.w3.eth.block_number + 1
        generator.run(12)
        report, messages = await h.poll()
    assert report.blocks == tuple(range(first, first + 12))
    assert _sequenced(messages) == list(range(1, len(messages) + 1))
    expected_kind = {m.V2Sync: V2_SYNC, m.V3Swap: V3_SWAP}
    updates = 0
    for number, events in _blocks(messages).items():
        header = block_header(clean_devchain.w3, number)
        keys = [(e.tx_index, e.log_index) for e in events]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        for event in events:
            assert event.block_number == number and not event.is_revert
            assert event.block_timestamp == int(header["timestamp"], 16)
            address, topic = _topic0(clean_devchain, number, event.tx_index, event.log_index)
            assert address == "0x" + event.pool_id.value.hex()
            if isinstance(event.update, m.V3Liquidity):
                mint = event.update_type is m.UpdateType.MINT
                assert topic == (V3_MINT if mint else V3_BURN)
                delta = event.update.liquidity_delta
                assert delta > 0 if mint else delta <= 0
            else:
                assert topic == expected_kind[type(event.update)]
        updates += len(events)
        _check_last_states(clean_devchain, number, events)
    assert updates == report.updates > 20
    begins = [msg for msg in messages if isinstance(msg, m.BeginBlock)]
    assert all(b.base_fee_per_gas > 0 and not b.is_revert for b in begins)
    ends = [msg for msg in messages if isinstance(msg, m.EndBlock)]
    assert [e.num_updates for e in ends] == [len(v) for v in _blocks(messages).values()]


def _check_last_states(devchain: DevChain, block: int, events: list[m.PoolUpdateMessage]) -> None:
    """A pool's last Sync (reserves) and last Swap (price, tick) equal its state after the
    block; read back by eth_call."""
    last: dict[bytes, m.PoolUpdateMessage] = {}
    for event in events:
        if isinstance(event.update, m.V2Sync | m.V3Swap):
            last[event.pool_id.value] = event
    for pool, event in last.items():
        address = "0x" + pool.hex()
        if isinstance(event.update, m.V2Sync):
            r0, r1, _ = call(devchain.w3, address, "UniswapV2Pair", "getReserves", block=block)
            assert (event.update.reserve0, event.update.reserve1) == (r0, r1)
        elif isinstance(event.update, m.V3Swap):
            slot0 = call(devchain.w3, address, "UniswapV3Pool", "slot0", block=block)
            assert (event.update.sqrt_price_x96, event.update.tick) == (slot0[0], slot0[1])


def _reverted(events: list[m.PoolUpdateMessage]) -> list[m.PoolUpdateMessage]:
    """What the producer sends when reverting a block: reversed, no V2Sync, indexes kept."""
    return [
        msgspec.structs.replace(e, is_revert=True)
        for e in reversed(events)
        if not isinstance(e.update, m.V2Sync)
    ]


def _finals_expected(
    devchain: DevChain, old: list[list[m.PoolUpdateMessage]], tip: int
) -> list[m.ReorgEpilogueUpdate]:
    v2 = sorted({e.pool_id.value for b in old for e in b if isinstance(e.update, m.V2Sync)})
    v3 = sorted({e.pool_id.value for b in old for e in b if isinstance(e.update, m.V3Swap)})
    out: list[m.ReorgEpilogueUpdate] = []
    for pool in v2:
        r0, r1, _ = call(devchain.w3, "0x" + pool.hex(), "UniswapV2Pair", "getReserves", block=tip)
        out.append(m.V2ReservesFinal(pool_id=m.PoolAddress(value=pool), reserve0=r0, reserve1=r1))
    for pool in v3:
        slot0 = call(devchain.w3, "0x" + pool.hex(), "UniswapV3Pool", "slot0", block=tip)
        (liquidity,) = call(devchain.w3, "0x" + pool.hex(), "UniswapV3Pool", "liquidity", block=tip)
        state = m.Slot0State(sqrt_price_x96=slot0[0], liquidity=liquidity, tick=slot0[1])
        out.append(
            m.Slot0Final(
                pool_id=m.PoolAddress(value=pool), protocol=m.Protocol.UNISWAP_V3, state=state
            )
        )
    return out


def _expected_envelope(  # noqa: PLR0917
    devchain: DevChain,
    committed: dict[int, list[m.PoolUpdateMessage]],
    old_numbers: list[int],
    new_messages: list[m.ControlMessage],
    final_tip: int,
    stamp: int,
) -> list[m.ControlMessage]:
    """The envelope the spec prescribes, stream_seq left out (checked separately)."""
    new_numbers = sorted(
        {msg.block_number for msg in new_messages if isinstance(msg, m.BeginBlock)}
    )
    out: list[Any] = [("ReorgStart", _range(old_numbers), _range(new_numbers))]
    for number in sorted(old_numbers, reverse=True):
        reverted = _reverted(committed[number])
        out += [("Begin", number, True), *reverted, ("End", number, len(reverted))]
    out += [_shape(msg) for msg in new_messages]
    finals = _finals_expected(devchain, [committed[n] for n in old_numbers], final_tip)
    out += [("Epilogue", final_tip, stamp, f) for f in finals]
    out.append(("Complete", final_tip))
    return out


def _range(numbers: list[int]) -> m.ReorgRange:
    if not numbers:
        return m.ReorgRange(first_block=None, last_block=None, block_count=0)
    return m.ReorgRange(first_block=min(numbers), last_block=max(numbers), block_count=len(numbers))


def _shape(msg: m.ControlMessage) -> Any:
    match msg:
        case m.ReorgStart():
            return ("ReorgStart", msg.old_range, msg.new_range)
        case m.BeginBlock():
            return ("Begin", msg.block_number, msg.is_revert)
        case m.PoolUpdate():
            return msg.event
        case m.EndBlock():
            return ("End", msg.block_number, msg.num_updates)
        case m.ReorgEpilogue():
            return ("Epilogue", msg.final_tip_block, msg.final_tip_timestamp, msg.update)
        case m.ReorgComplete():
            return ("Complete", msg.final_tip_block)
    raise AssertionError(f"unexpected {msg}")


def _new_part(messages: list[m.ControlMessage]) -> list[m.ControlMessage]:
    """The committed blocks inside an envelope (between the reverts and the epilogues)."""
    out: list[m.ControlMessage] = []
    inside = False
    for msg in messages:
        if isinstance(msg, m.BeginBlock):
            inside = not msg.is_revert
        if inside:
            out.append(msg)
        if isinstance(msg, m.EndBlock):
            inside = False
    return out


async def test_reorg_envelope_follows_the_spec(
    clean_devchain: DevChain, whitelist: Whitelist, sock: str
) -> None:
    w3 = clean_devchain.w3
    generator = TrafficGenerator(w3, clean_devchain.deployment, seed=8)
    async with harness(clean_devchain, whitelist, sock) as h:
        generator.run(8)
        _, before = await h.poll()
        committed = _blocks(before)
        for depth, extra in ((3, 0), (2, 1)):
            fork = w3.eth.block_number - depth
            change_chain(generator, Step("reorg", depth, then_mine=extra))
            report, envelope = await h.poll()
            tip = w3.eth.block_number
            old = list(range(fork + 1, fork + depth + 1))
            assert report.reorg is not None and report.reorg.old_blocks == tuple(old)
            assert report.settle_points == 1
            stamp = int(block_header(w3, tip)["timestamp"], 16)
            expected = _expected_envelope(
                clean_devchain, committed, old, _new_part(envelope), tip, stamp
            )
            assert [_shape(msg) for msg in envelope] == expected
            assert any(isinstance(e, m.PoolUpdate) and e.event.is_revert for e in envelope)
            assert _sequenced(h.messages) == list(range(1, len(h.messages) + 1))
            committed.update(_blocks(envelope))


async def test_rollback_is_a_revert_envelope(
    clean_devchain: DevChain, whitelist: Whitelist, sock: str
) -> None:
    w3 = clean_devchain.w3
    generator = TrafficGenerator(w3, clean_devchain.deployment, seed=9)
    async with harness(clean_devchain, whitelist, sock) as h:
        generator.run(6)
        _, before = await h.poll()
        outcome = rollback(w3, 2, floor=clean_devchain.deployment.block)
        report, envelope = await h.poll()
        old = [outcome.fork_block + 1, outcome.fork_block + 2]
        expected = _expected_envelope(
            clean_devchain, _blocks(before), old, [], outcome.fork_block, 0
        )
        assert [_shape(msg) for msg in envelope] == expected
        assert report.reorg is not None and report.reorg.new_blocks == ()
        generator.run(1)  # the chain grows again from the fork
        report, _ = await h.poll()
        assert report.blocks == (outcome.fork_block + 1,) and report.reorg is None
    assert _sequenced(h.messages) == list(range(1, len(h.messages) + 1))


async def test_reorg_below_the_kept_blocks_skips_a_stream_seq(
    clean_devchain: DevChain, whitelist: Whitelist, sock: str
) -> None:
    w3 = clean_devchain.w3
    generator = TrafficGenerator(w3, clean_devchain.deployment, seed=10)
    async with harness(clean_devchain, whitelist, sock, keep_blocks=4) as h:
        generator.run(6)
        await h.poll()
        last_seq = _sequenced(h.messages)[-1]
        change_chain(generator, Step("reorg", 4))  # the 4 kept blocks hold no common ancestor
        report, nothing = await h.poll()
        assert report.deep_reorg and nothing == []
        generator.run(1)
        report, fresh = await h.poll()
    assert report.blocks == (w3.eth.block_number,)
    assert _sequenced(fresh)[0] == last_seq + 2  # the gap tells consumers to resync
    assert h.follower.stats.deep_reorgs == 1


async def test_zero_burn_poke_is_sent_as_a_zero_delta(
    clean_devchain: DevChain, whitelist: Whitelist, sock: str
) -> None:
    """NonfungiblePositionManager.collect pokes the pool with burn(0) (upstream sends it)."""
    d = clean_devchain.deployment
    w3 = clean_devchain.w3
    (_, _, _, _, _, lower, upper, liquidity, *_) = call(
        w3, d.position_manager, "NonfungiblePositionManager", "positions", 1
    )
    assert liquidity > 0
    collect = encode_call(
        "NonfungiblePositionManager", "collect", (1, d.deployer, MAX_UINT128, MAX_UINT128)
    )
    async with harness(clean_devchain, whitelist, sock) as h:
        execute_block(
            w3, [TxRequest(sender=d.deployer, to=d.position_manager, data=collect, gas=1_000_000)]
        )
        _, messages = await h.poll()
    (event,) = [msg.event for msg in messages if isinstance(msg, m.PoolUpdate)]
    assert event.update_type is m.UpdateType.BURN
    assert event.update == m.V3Liquidity(tick_lower=lower, tick_upper=upper, liquidity_delta=0)
