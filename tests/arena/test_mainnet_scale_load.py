"""A mainnet-sized whitelist and initial state file go through the loaders unchanged.

250 000 pools (70 % V2, 30 % V3 with a few initialized ticks each) are written as the
files `arena run` reads; `open_pipeline` loads them and `export_state` gives back exactly
the state that was written. Smaller cases check the bulk hydration against setting each
pool alone, and that a whitelist document builds each token once.
"""

from __future__ import annotations

import gc
import random
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.engine import ArenaEngine, PoolStatus
from arena.pipeline import PipelineConfig, open_pipeline
from arena.pool_status import StaleReason
from arena.state_file import PoolStateJson, StateJson, TickJson, export_state
from arena.state_table import pack_records
from exex_bridge import messages as m
from exex_bridge.errors import WhitelistError
from exex_bridge.whitelist import Token, WhitelistedPool, parse_pools_document
from pathfinder.tick_math import get_sqrt_ratio_at_tick

POOLS = 250_000
TOKENS = 3000
BLOCK = 21_000_000


def _address(i: int) -> str:
    return "0x" + (0xB0000000 + i).to_bytes(20, "big").hex()


def _token_json(t: int) -> dict[str, object]:
    return {"address": "0x" + (0xC0000000 + t).to_bytes(20, "big").hex(), "decimals": 18}


def _documents(pools: int, rng: random.Random) -> tuple[bytes, StateJson]:
    entries: list[dict[str, object]] = []
    states: dict[str, PoolStateJson] = {}
    for i in range(pools):
        a = rng.randrange(TOKENS - 1)
        entry: dict[str, object] = {
            "address": _address(i),
            "protocol": "v2",
            "token0": _token_json(a),
            "token1": _token_json(a + 1 + rng.randrange(TOKENS - 1 - a)),
            "fee": 3000,
        }
        if rng.random() < 0.3:
            entry.update(protocol="v3", tick_spacing=60)
            tick = rng.randrange(-886_000, 886_000) // 60 * 60  # its ticks stay in range
            amount = rng.randrange(1, 1 << 100)
            ticks = {
                str(tick - 60 * k): TickJson(net=str(amount), gross=str(amount))
                for k in range(1, 1 + rng.randrange(1, 4))
            }
            ticks[str(tick + 600)] = TickJson(net=str(-amount * len(ticks)), gross=str(amount))
            states[_address(i)] = PoolStateJson(
                protocol="v3",
                sqrt_price_x96=str(get_sqrt_ratio_at_tick(tick) + rng.randrange(1 << 20)),
                liquidity=str(amount * (len(ticks) - 1)),
                tick=tick,
                ticks=ticks,
            )
        else:
            r0, r1 = rng.randrange(1, 1 << 112), rng.randrange(1, 1 << 112)
            states[_address(i)] = PoolStateJson(protocol="v2", reserve0=str(r0), reserve1=str(r1))
        entries.append(entry)
    whitelist = msgspec.json.encode({"chain": "ethereum", "pools": entries})
    state = StateJson(block=BLOCK, unsynced=False, stale=[], pools=states, unhydrated=[])
    return whitelist, state


def test_a_mainnet_sized_whitelist_and_state_round_trip(tmp_path: Path) -> None:
    whitelist, state = _documents(POOLS, random.Random(1))
    (tmp_path / "whitelist.json").write_bytes(whitelist)
    (tmp_path / "state.json").write_bytes(msgspec.json.encode(state))
    config = PipelineConfig(
        whitelist=tmp_path / "whitelist.json", initial_state=tmp_path / "state.json"
    )
    with open_pipeline(config) as pipeline:
        engine = pipeline.engine
        assert len(engine.registry) == POOLS
        assert engine.tip_block == BLOCK
        assert np.all(engine.status[:POOLS] == PoolStatus.LIVE)
        assert export_state(engine) == state
    assert gc.isenabled()  # the collector is paused only while loading


def test_a_failed_load_resumes_the_collector(tmp_path: Path) -> None:
    with pytest.raises(WhitelistError):
        open_pipeline(PipelineConfig(whitelist=tmp_path / "missing.json"))
    assert gc.isenabled()


def test_a_whitelist_document_builds_each_token_once() -> None:
    whitelist, _ = _documents(2000, random.Random(2))
    pools = parse_pools_document(whitelist).pools
    tokens = {id(t) for p in pools for t in (p.token0, p.token1)}
    assert len(tokens) == len({t.address for p in pools for t in (p.token0, p.token1)})


TOKEN = Token(address=b"\x01" * 20, decimals=18)
pool_states = st.lists(
    st.one_of(
        st.tuples(st.integers(0, (1 << 112) - 1), st.integers(0, (1 << 112) - 1)),
        st.tuples(
            st.integers(1, (1 << 160) - 1),
            st.integers(0, (1 << 128) - 1),
            st.integers(-887_272, 887_272),
            st.dictionaries(
                st.integers(-1000, 1000),
                st.tuples(st.integers(-(1 << 100), 1 << 100), st.integers(0, 1 << 100)),
                max_size=4,
            ),
        ),
    ),
    min_size=1,
    max_size=12,
)


def _engine(states: list[tuple[object, ...]], stale: list[bool]) -> ArenaEngine:
    engine = ArenaEngine(capacity=4)
    engine.add_pools(
        WhitelistedPool(
            key=bytes([i + 1]) * 20,
            address=bytes([i + 1]) * 20,
            protocol=m.Protocol.UNISWAP_V2 if len(s) == 2 else m.Protocol.UNISWAP_V3,
            token0=TOKEN,
            token1=TOKEN,
            fee=3000,
            tick_spacing=None if len(s) == 2 else 1,
        )
        for i, s in enumerate(states)
    )
    engine.mark_stale_many(
        [i for i, flag in enumerate(stale[: len(states)]) if flag],
        StaleReason.STALE_IN_LOADED_STATE,
    )
    return engine


@settings(max_examples=60, deadline=None)
@given(pool_states, st.lists(st.booleans(), min_size=12, max_size=12))
def test_bulk_hydration_equals_setting_each_pool(
    states: list[tuple[object, ...]], stale: list[bool]
) -> None:
    one_by_one, bulk = _engine(states, stale), _engine(states, stale)
    values: list[tuple[int, ...]] = []
    ticks: dict[int, dict[int, tuple[int, int]]] = {}
    for i, s in enumerate(states):
        if len(s) == 2:
            r0, r1 = s
            assert isinstance(r0, int) and isinstance(r1, int)
            one_by_one.set_reserves(i, r0, r1)
            values.append((r0, r1))
        else:
            sqrt, liquidity, tick, pool_ticks = s
            assert isinstance(sqrt, int) and isinstance(liquidity, int)
            assert isinstance(tick, int) and isinstance(pool_ticks, dict)
            one_by_one.set_slot0(i, sqrt, liquidity, tick, pool_ticks)
            values.append((sqrt, liquidity, tick))
            ticks[i] = pool_ticks
    bulk.set_states(np.arange(len(states), dtype=np.int64), pack_records(values), ticks)
    n = len(states)
    assert bulk.table.records.tobytes() == one_by_one.table.records.tobytes()
    assert np.array_equal(bulk.status[:n], one_by_one.status[:n])
    assert bulk.ticks.snapshot() == one_by_one.ticks.snapshot()
    assert bulk.take_changed() == one_by_one.take_changed()
    stale_gauge = "arena_pools_stale"
    assert bulk.metrics.registry.get_sample_value(
        stale_gauge
    ) == one_by_one.metrics.registry.get_sample_value(stale_gauge)
