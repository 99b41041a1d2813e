"""The columnar block path against the reference: for random blocks (swaps, syncs, mints,
burns, unknown pools, updates of the wrong kind or of unmodelled variants, pools sent
many updates, pools keyed by address and by V4 pool id, pools stale before the block),
applying with the frames must leave an engine exactly as the reference fold does, and
so must reverting that block afterwards."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.engine import ArenaEngine
from arena.frame_columns import HOT_VARIANTS, read_frames
from arena.pool_keys import PoolKeyIndex, key_column
from arena.pool_status import StaleReason
from arena.registry import PoolRegistry
from arena.state_table import pack_reserves, pack_slot0
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from tests.arena.canonical_chain import PROTOCOL, Pool
from tests.arena.engine_snapshot import engine_snapshot
from tests.arena.reference_model import Kind
from tests.arena.stream_builder import address, v4_pool_id

POOLS = [
    Pool(address(0x201), Kind.V2),
    Pool(address(0x202), Kind.V2),
    Pool(address(0x301), Kind.V3),
    Pool(address(0x302), Kind.V3),
    Pool(v4_pool_id(0x401), Kind.V4),
    Pool(v4_pool_id(0x402), Kind.V4),
    Pool(address(0x203), Kind.V2),  # never hydrated: UNKNOWN until a Sync
]
STRANGERS = [address(0xDEAD), v4_pool_id(0xBEEF), m.V4PoolId(value=bytes(12) + bytes(20))]
BLOCK = 100
HOT_CLASSES = [cls for cls, _ in HOT_VARIANTS.values()]
U128 = st.integers(0, 2**128 - 1)
TICKS = st.integers(-(2**23), 2**23)


def whitelisted_engine() -> ArenaEngine:
    engine = ArenaEngine(ring_depth=4, capacity=2)
    engine.add_pools(p.whitelisted() for p in POOLS)
    for i, pool in enumerate(POOLS[:-1]):
        if pool.kind is Kind.V2:
            engine.set_reserves(i, 10**18 + i, 10**9 + i)
        else:
            ticks = {-60: (10**12, 10**12), 60: (-(10**12), 10**12)}
            engine.set_slot0(i, 1 << 96, 10**12, 0, ticks)
    engine.mark_synced(BLOCK - 1, keep_history=False)
    return engine


@st.composite
def payloads(draw: st.DrawFn) -> m.PoolUpdatePayload:
    choice = draw(st.sampled_from(["v3", "v4", "sync", "v3liq", "v4liq", "other"]))
    if choice in ("v3", "v4"):
        cls = m.V3Swap if choice == "v3" else m.V4Swap
        return cls(
            sqrt_price_x96=draw(st.integers(0, 2**160)), liquidity=draw(U128), tick=draw(TICKS)
        )
    if choice == "sync":
        return m.V2Sync(reserve0=draw(U128), reserve1=draw(U128))
    if choice in ("v3liq", "v4liq"):
        cls2 = m.V3Liquidity if choice == "v3liq" else m.V4Liquidity
        lower = draw(st.sampled_from([-120, -60, 0, 60]))
        delta = draw(st.sampled_from([10**6, -(10**6), 10**13, -(10**13), 2**127 - 1]))
        return cls2(
            tick_lower=lower,
            tick_upper=lower + draw(st.sampled_from([60, 120])),
            liquidity_delta=delta,
        )
    return m.CurveFeeUpdate(fee=1, offpeg_fee_multiplier=2)


@st.composite
def update_events(draw: st.DrawFn) -> m.PoolUpdateMessage:
    pool_id = draw(st.sampled_from([p.pool_id for p in POOLS] + STRANGERS))
    return m.PoolUpdateMessage(
        pool_id=pool_id,
        protocol=draw(st.sampled_from([*PROTOCOL.values(), m.Protocol.CURVE_STABLE])),
        update_type=m.UpdateType.SWAP,
        block_number=BLOCK,
        block_timestamp=0,
        tx_index=0,
        log_index=0,
        is_revert=False,
        update=draw(payloads()),
    )


def frames_of(events: Sequence[m.PoolUpdateMessage]) -> list[bytes]:
    return [encode_message(m.PoolUpdate(stream_seq=7, event=e)) for e in events]


def begin(*, is_revert: bool) -> m.BeginBlock:
    return m.BeginBlock(
        stream_seq=0, block_number=BLOCK, block_timestamp=0, base_fee_per_gas=1, is_revert=is_revert
    )


@given(events=st.lists(update_events(), max_size=40), stale=st.sets(st.integers(0, 6)))
@settings(max_examples=300, deadline=None)
def test_columnar_apply_and_revert_equal_the_reference(
    events: list[m.PoolUpdateMessage], stale: set[int]
) -> None:
    reference, columnar = whitelisted_engine(), whitelisted_engine()
    for engine in (reference, columnar):
        engine.mark_stale_many(sorted(stale), StaleReason.STALE_IN_LOADED_STATE)
    frames = frames_of(events)
    reference.apply_block(begin(is_revert=False), events)
    columnar.apply_block(begin(is_revert=False), events, frames)
    assert engine_snapshot(columnar) == engine_snapshot(reference)
    reverted = [e.__class__(**{**_fields(e), "is_revert": True}) for e in reversed(events)]
    reference.revert_block(begin(is_revert=True), reverted)
    columnar.revert_block(begin(is_revert=True), reverted)
    assert engine_snapshot(columnar) == engine_snapshot(reference)


def _fields(event: m.PoolUpdateMessage) -> dict[str, object]:
    return {name: getattr(event, name) for name in event.__struct_fields__}


@given(events=st.lists(update_events(), max_size=30))
@settings(max_examples=200, deadline=None)
def test_frame_columns_carry_what_the_messages_say(events: list[m.PoolUpdateMessage]) -> None:
    columns = read_frames(frames_of(events))
    assert columns.keys.tolist() == [key_column(e.pool_id.value).rstrip(b"\x00") for e in events]
    assert columns.protocols.tolist() == [int(e.protocol) for e in events]
    variants = [m.POOL_UPDATE_VARIANTS[t] for t in columns.tags.tolist()]
    assert variants == [type(e.update) for e in events]
    hot = [e.update for e in events if isinstance(e.update, (m.V3Swap, m.V4Swap, m.V2Sync))]
    assert columns.hot.tolist() == [isinstance(e.update, tuple(HOT_CLASSES)) for e in events]
    for p, record in zip(hot, columns.records, strict=True):
        if isinstance(p, m.V2Sync):
            want = pack_reserves(p.reserve0, p.reserve1)
        else:
            want = pack_slot0(p.sqrt_price_x96, p.liquidity, p.tick)
        assert record.tobytes() == want


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_pool_keys_find_active_pools_of_either_key_length(shared_prefix: bool) -> None:
    registry = PoolRegistry()
    pools = [*POOLS, Pool(m.V4PoolId(value=POOLS[0].key + bytes(12)), Kind.V4)]
    if shared_prefix:  # two keys alike in their first eight bytes
        pools.append(Pool(m.PoolAddress(value=POOLS[0].key[:8] + b"\xff" * 12), Kind.V3))
    for pool in pools:
        registry.add(pool.whitelisted())
    registry.remove(POOLS[1].key)
    index = PoolKeyIndex(registry)
    queries = [p.key for p in pools] + [s.value for s in STRANGERS]
    keys = np.array([key_column(k) for k in queries], dtype="S33")
    found, kinds = index.find(keys)
    for key, i, kind in zip(queries, found.tolist(), kinds.tolist(), strict=True):
        entry = registry.lookup.get(key)
        assert (i, kind) == (entry if entry is not None else (-1, 0))
