"""PathRecalculator: what it emits, when it must stay silent, gas, and reverts."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import msgspec
import pytest
from hypothesis import assume, given, settings

from arena.block_assembler import BlockAssembler, Settled
from arena.engine import ArenaEngine, PoolStatus
from arena.pool_status import StaleReason
from arena.registry import PoolKind
from arena.sync_state import SyncState
from exex_bridge import messages as m
from pathfinder.exact_quote import ExactQuoter
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.sinks import CallbackSink
from pathfinder.tick_math import get_tick_at_sqrt_ratio
from tests.pathfinder.strategies import (
    R_USDC,
    R_WETH,
    USDC,
    WETH,
    Market,
    markets,
    sqrt_price_x96_of,
    usdc_weth_engine,
)

GWEI = 10**9
V2_HOPS_GAS = 21_000 + 2 * 60_000


class Recorder:
    def __init__(self) -> None:
        self.batches: list[Sequence[Opportunity]] = []

    def __call__(self, batch: Sequence[Opportunity]) -> None:
        self.batches.append(batch)


def settle(
    engine: ArenaEngine, block: int = 7, *, base_fee: int = 0, sync: SyncState = SyncState.SYNCED
) -> Settled:
    return Settled(
        block=block,
        base_fee_per_gas=base_fee,
        changed=frozenset(engine.take_changed()),
        after_reorg=False,
        sync=sync,
    )


def twin_engine(engine: ArenaEngine) -> ArenaEngine:
    """Another engine holding the same pools and state (its own metrics registry)."""
    twin = ArenaEngine(capacity=max(16, len(engine.registry)))
    twin.add_pools(engine.registry.pools)
    for index in range(len(engine.registry)):
        twin.table.write(index, engine.table.read(index))
    for index, ticks in engine.ticks.snapshot().items():
        twin.ticks.set_pool(index, ticks)
    twin.status[: len(engine.registry)] = engine.status[: len(engine.registry)]
    return twin


def pool_index(engine: ArenaEngine, key_hex: str) -> int:
    return engine.registry.index_of[bytes.fromhex(key_hex[2:])]


def check_consistent(engine: ArenaEngine, opportunity: Opportunity) -> None:
    """Everything in an opportunity agrees with the engine's state and exact math."""
    hops = zip(opportunity.pools, opportunity.zero_for_one, strict=True)
    path = [(pool_index(engine, key), z) for key, z in hops]
    assert len(opportunity.tokens) == len(path) + 1
    assert opportunity.tokens[0] == opportunity.tokens[-1]
    for h, (index, zero_for_one) in enumerate(path):
        pool = engine.registry.pools[index]
        token_in, token_out = pool.token0, pool.token1
        if not zero_for_one:
            token_in, token_out = token_out, token_in
        assert opportunity.tokens[h] == "0x" + token_in.address.hex()
        assert opportunity.tokens[h + 1] == "0x" + token_out.address.hex()
    out = ExactQuoter(engine).cycle_out(path, opportunity.amount_in)
    assert opportunity.expected_out == out
    assert opportunity.profit == out - opportunity.amount_in
    assert opportunity.net_profit == opportunity.profit - opportunity.gas_cost
    assert opportunity.net_profit >= 1


# -- what is emitted --------------------------------------------------------------------
def test_opportunities_carry_block_pools_directions_and_tokens() -> None:
    engine = usdc_weth_engine(skew=Fraction(103, 100))  # pool 1 holds 3 % too much USDC
    recorder = Recorder()
    recalculator = PathRecalculator(
        engine, PathfinderConfig(chain="testnet"), [CallbackSink(recorder)]
    )
    found = recalculator.on_settled(settle(engine, 1234, base_fee=0))
    assert found
    assert recorder.batches == [found]
    assert [o.net_profit for o in found] == sorted((o.net_profit for o in found), reverse=True)
    best = found[0]
    # Cheap USDC in pool 1: WETH → USDC in pool 1 (one_for_zero), USDC → WETH elsewhere.
    assert best.pools[0] == engine.registry.pools[1].key_hex
    assert best.zero_for_one[0] is False
    assert best.zero_for_one[1] is True
    weth, usdc = "0x" + WETH.address.hex(), "0x" + USDC.address.hex()
    assert best.tokens == (weth, usdc, weth)
    for opportunity in found:
        assert (opportunity.chain, opportunity.block) == ("testnet", 1234)
        assert opportunity.after_reorg is False
        assert opportunity.base_fee_per_gas == 0
        assert opportunity.gas_cost == 0
        check_consistent(engine, opportunity)


def test_balanced_market_emits_nothing() -> None:
    engine = usdc_weth_engine()
    recorder = Recorder()
    recalculator = PathRecalculator(engine, sinks=[recorder])
    assert recalculator.on_settled(settle(engine)) == []
    assert recorder.batches == []


@settings(max_examples=40, deadline=None)
@given(market=markets())
def test_every_emitted_opportunity_agrees_with_exact_math(market: Market) -> None:
    recalculator = PathRecalculator(market.engine)
    found = recalculator.on_settled(market.settled(5, base_fee=3 * GWEI))
    for opportunity in found:
        check_consistent(market.engine, opportunity)
        assert opportunity.gas_cost == opportunity.gas_units * 3 * GWEI  # WETH starts
        assert opportunity.tokens[0] == "0x" + WETH.address.hex()


# -- gas --------------------------------------------------------------------------------
def test_gas_cost_is_base_fee_times_units_in_the_start_token() -> None:
    engine = usdc_weth_engine(skew=Fraction(103, 100))
    recalculator = PathRecalculator(engine)
    free = recalculator.on_settled(settle(engine, base_fee=0))
    engine.changed.update(range(3))
    paid = recalculator.on_settled(settle(engine, base_fee=20 * GWEI))
    assert free and paid
    by_path = {(o.pools, o.zero_for_one): o for o in free}
    for o in paid:
        v2_only = all(
            engine.registry.kind_of(pool_index(engine, k)) is PoolKind.V2 for k in o.pools
        )
        units = 21_000 + sum(
            60_000 if engine.registry.kind_of(pool_index(engine, k)) is PoolKind.V2 else 110_000
            for k in o.pools
        )
        assert o.gas_units == units
        assert o.gas_units == V2_HOPS_GAS or not v2_only
        assert o.gas_cost == units * 20 * GWEI
        assert o.net_profit == o.profit - o.gas_cost
        twin = by_path[(o.pools, o.zero_for_one)]
        assert o.profit == twin.profit  # the same state: only the gas differs

    # a base fee that eats the whole profit leaves nothing to emit
    engine.changed.update(range(3))
    ruinous = max(o.profit for o in free) // V2_HOPS_GAS + 1
    assert recalculator.on_settled(settle(engine, base_fee=ruinous)) == []


def test_gas_converted_to_a_non_gas_start_token_at_the_mid_price() -> None:
    engine = usdc_weth_engine(skew=Fraction(103, 100))
    config = PathfinderConfig(base_tokens=(USDC.address, WETH.address), gas_token=WETH.address)
    recalculator = PathRecalculator(engine, config)
    found = recalculator.on_settled(settle(engine, base_fee=20 * GWEI))
    from_usdc = [o for o in found if o.tokens[0] == "0x" + USDC.address.hex()]
    from_weth = [o for o in found if o.tokens[0] == "0x" + WETH.address.hex()]
    assert from_usdc
    assert from_weth
    # The deepest WETH pool is pool 0 (1000 WETH): its mid price, USDC units per wei.
    usdc_per_wei = Fraction(R_USDC, R_WETH)
    for o in from_usdc:
        expected = o.gas_units * 20 * GWEI * usdc_per_wei
        assert abs(o.gas_cost - expected) <= expected * Fraction(1, 10**9) + 1
    for o in from_weth:
        assert o.gas_cost == o.gas_units * 20 * GWEI


# -- when nothing may be emitted --------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(market=markets())
def test_untrustworthy_points_emit_nothing_and_are_screened_later(market: Market) -> None:
    recorder = Recorder()
    recalculator = PathRecalculator(market.engine, sinks=[recorder])
    twin = twin_engine(market.engine)
    reference = PathRecalculator(twin)  # sees everything at once, trusted
    untrusted = market.settled(3, sync=SyncState.UNSYNCED)
    assert recalculator.on_settled(untrusted) == []
    assert recorder.batches == []
    registry = market.engine.metrics.registry
    assert registry.get_sample_value("arena_path_suppressed_total") == 1
    later = recalculator.on_settled(Settled(4, 0, frozenset(), False, SyncState.SYNCED))
    twin.take_changed()
    expected = reference.on_settled(Settled(4, 0, untrusted.changed, False, SyncState.SYNCED))
    assert later == expected
    assert recorder.batches == ([later] if later else [])


@settings(max_examples=40, deadline=None)
@given(market=markets())
def test_stale_pools_never_appear(market: Market) -> None:
    recalculator = PathRecalculator(market.engine)
    found = recalculator.on_settled(market.settled(1))
    assume(found)
    stale_key = found[0].pools[0]
    market.engine.mark_stale(
        pool_index(market.engine, stale_key), StaleReason.STALE_IN_LOADED_STATE
    )
    again = recalculator.on_settled(market.settled(2))
    assert all(stale_key not in o.pools for o in again)
    assert len(again) < len(found) or found[0] not in again


def test_unhydrated_and_rewhitelisted_pools_are_unknown_and_excluded() -> None:
    # V3 pool 2 priced 5 % off but never hydrated (slot0 without its tick map): UNKNOWN.
    engine = usdc_weth_engine(v3_hydrated=False)
    sqrt_price = sqrt_price_x96_of(Fraction(R_WETH * 105, R_USDC * 100))
    engine.set_slot0(2, sqrt_price, 10**17, get_tick_at_sqrt_ratio(sqrt_price))
    assert engine.status[2] == PoolStatus.UNKNOWN
    recalculator = PathRecalculator(engine)
    assert recalculator.on_settled(settle(engine)) == []

    # A skewed LIVE V2 pool that leaves and re-enters the whitelist is UNKNOWN until
    # its state is set again, even though the old reserves are still in the table.
    engine = usdc_weth_engine(skew=Fraction(103, 100))
    recalculator = PathRecalculator(engine)
    assert recalculator.on_settled(settle(engine))
    pool = engine.registry.pools[1]
    engine.remove_pools([pool.key])
    engine.add_pools([pool])
    assert engine.status[1] == PoolStatus.UNKNOWN
    engine.changed.add(1)
    assert recalculator.on_settled(settle(engine)) == []
    engine.set_reserves(1, *engine.table.reserves(1))  # hydrated again: LIVE
    assert recalculator.on_settled(settle(engine))


# -- reverts ----------------------------------------------------------------------------
class Stream:
    """Feeds a BlockAssembler with sequenced messages, as the socket reader would."""

    def __init__(self, engine: ArenaEngine) -> None:
        self.assembler = BlockAssembler(engine)
        self.seq = 0

    def feed(self, msg: m.ControlMessage) -> Settled | None:
        return self.assembler.feed(msg)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def block(
        self,
        number: int,
        syncs: dict[int, tuple[int, int]],
        *,
        revert: bool = False,
        base_fee: int = GWEI,
    ) -> Settled | None:
        engine = self.assembler.engine
        self.feed(
            m.BeginBlock(
                stream_seq=self.next_seq(),
                block_number=number,
                block_timestamp=number * 12,
                base_fee_per_gas=base_fee,
                is_revert=revert,
            )
        )
        for log_index, (index, (r0, r1)) in enumerate(syncs.items()):
            event = m.PoolUpdateMessage(
                pool_id=m.PoolAddress(value=engine.registry.pools[index].address),
                protocol=m.Protocol.UNISWAP_V2,
                update_type=m.UpdateType.SWAP,
                block_number=number,
                block_timestamp=number * 12,
                tx_index=0,
                log_index=log_index,
                is_revert=revert,
                update=m.V2Sync(reserve0=r0, reserve1=r1),
            )
            self.feed(m.PoolUpdate(stream_seq=self.next_seq(), event=event))
        return self.feed(
            m.EndBlock(stream_seq=self.next_seq(), block_number=number, num_updates=len(syncs))
        )


def test_an_opportunity_disappears_when_its_block_is_reverted() -> None:
    engine = usdc_weth_engine()
    engine.mark_synced(9, keep_history=False)
    recalculator = PathRecalculator(engine)
    stream = Stream(engine)
    assert recalculator.on_settled(settle(engine, 9)) == []  # balanced at block 9

    skewed = (R_USDC // 2 * 104 // 100, R_WETH // 2)
    settled = stream.block(10, {1: skewed})
    assert settled is not None
    assert settled.sync is SyncState.SYNCED
    found = recalculator.on_settled(settled)
    assert found
    assert {o.block for o in found} == {10}
    assert all(engine.registry.pools[1].key_hex in o.pools for o in found)

    # Block 10 is reorged out and replaced by an empty 10'.
    old = m.ReorgRange(first_block=10, last_block=10, block_count=1)
    assert (
        stream.feed(m.ReorgStart(stream_seq=stream.next_seq(), old_range=old, new_range=old))
        is None
    )
    assert stream.block(10, {1: skewed}, revert=True) is None  # inside the envelope
    assert engine.table.reserves(1) == (R_USDC // 2, R_WETH // 2)  # pre-image restored
    assert stream.block(10, {}) is None
    after = stream.feed(m.ReorgComplete(stream_seq=stream.next_seq(), final_tip_block=10))
    assert after is not None
    assert after.after_reorg
    assert after.sync is SyncState.SYNCED
    assert 1 in after.changed
    assert recalculator.on_settled(after) == []


def test_a_reorg_to_a_skewed_chain_emits_once_marked_after_reorg() -> None:
    engine = usdc_weth_engine()
    engine.mark_synced(9, keep_history=False)
    recalculator = PathRecalculator(engine)
    stream = Stream(engine)
    recalculator.on_settled(settle(engine, 9))
    settled = stream.block(10, {1: (R_USDC // 2, R_WETH // 2 + 1)})
    assert settled is not None
    assert recalculator.on_settled(settled) == []
    old = m.ReorgRange(first_block=10, last_block=10, block_count=1)
    stream.feed(m.ReorgStart(stream_seq=stream.next_seq(), old_range=old, new_range=old))
    stream.block(10, {1: (R_USDC // 2, R_WETH // 2 + 1)}, revert=True)
    stream.block(10, {1: (R_USDC // 2 * 96 // 100, R_WETH // 2)}, base_fee=2 * GWEI)
    after = stream.feed(m.ReorgComplete(stream_seq=stream.next_seq(), final_tip_block=10))
    assert after is not None
    found = recalculator.on_settled(after)
    assert found
    for o in found:
        assert (o.block, o.after_reorg, o.base_fee_per_gas) == (10, True, 2 * GWEI)
        check_consistent(engine, o)


def test_a_stream_gap_suppresses_the_next_point() -> None:
    engine = usdc_weth_engine()
    engine.mark_synced(9, keep_history=False)
    recalculator = PathRecalculator(engine)
    stream = Stream(engine)
    recalculator.on_settled(settle(engine, 9))
    assert stream.block(10, {}) is not None
    stream.seq += 5  # five messages lost
    settled = stream.block(11, {1: (R_USDC // 2 * 104 // 100, R_WETH // 2)})
    assert settled is not None
    assert settled.sync is SyncState.UNSYNCED
    assert recalculator.on_settled(settled) == []


def test_a_failing_sink_is_counted_and_does_not_stop_the_others() -> None:
    engine = usdc_weth_engine(skew=Fraction(103, 100))
    recorder = Recorder()

    def broken(batch: Sequence[Opportunity]) -> None:
        raise OSError("disk full")

    recalculator = PathRecalculator(
        engine, sinks=[CallbackSink(broken, name="broken"), CallbackSink(recorder)]
    )
    found = recalculator.on_settled(settle(engine))
    assert recorder.batches == [found]
    value = engine.metrics.registry.get_sample_value(
        "arena_path_sink_errors_total", {"sink": "broken"}
    )
    assert value == 1


@pytest.mark.parametrize("skew", [Fraction(97, 100), Fraction(103, 100)])
def test_opportunities_encode_as_exact_json(skew: Fraction) -> None:
    engine = usdc_weth_engine(skew=skew)
    found = PathRecalculator(engine).on_settled(settle(engine, base_fee=GWEI))
    assert found
    for o in found:
        assert msgspec.json.decode(msgspec.json.encode(o), type=Opportunity) == o
