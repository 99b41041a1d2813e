"""An initial state holding a value no pool can hold, a key that is not hex or a block
number out of range is refused with a StateFileError naming the pool, before the engine
is marked synced. Values at the edges of what the contracts hold load."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from arena.engine import ArenaEngine
from arena.state_file import StateFileError, StateJson, load_state
from arena.sync_state import SyncState
from arena.update_checks import MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK, U112_MAX
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool

V2 = "0x" + "22" * 20
V3 = "0x" + "33" * 20
Q96 = 1 << 96


def _engine() -> ArenaEngine:
    engine = ArenaEngine(ring_depth=4)
    token0, token1 = Token(address=bytes(20), decimals=18), Token(address=b"\1" * 20, decimals=6)

    def pool(key: str, protocol: m.Protocol) -> WhitelistedPool:
        raw = bytes.fromhex(key[2:])
        return WhitelistedPool(
            key=raw, address=raw, protocol=protocol, token0=token0, token1=token1, fee=3000,
            tick_spacing=60,
        )  # fmt: skip

    engine.add_pools([pool(V2, m.Protocol.UNISWAP_V2), pool(V3, m.Protocol.UNISWAP_V3)])
    return engine


def _state(**changes: Any) -> dict[str, Any]:
    v3: dict[str, Any] = {
        "protocol": "v3",
        "sqrt_price_x96": str(Q96),
        "liquidity": "1000",
        "tick": 0,
        "ticks": {"-60": {"net": "1000", "gross": "1000"}, "60": {"net": "-1000", "gross": "1000"}},
    }
    v2: dict[str, Any] = {"protocol": "v2", "reserve0": "5", "reserve1": "6"}
    v2.update(changes.pop("v2", {}))
    v3.update(changes.pop("v3", {}))
    return {"block": 100, "unsynced": False, "stale": [], "pools": {V2: v2, V3: v3}} | changes


def _load(engine: ArenaEngine, document: dict[str, Any]) -> int:
    state = msgspec.convert(document, StateJson)
    return load_state(engine, state, "state.json")


def test_the_reference_state_loads() -> None:
    engine = _engine()
    assert _load(engine, _state()) == 2
    assert engine.sync_state is SyncState.SYNCED


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (_state(stale=["0xzz"]), "pool 0xzz: not a hex key"),
        (_state(pools={"0xnothex": {"protocol": "v2"}}), "pool 0xnothex: not a hex key"),
        (_state(block=-1), "block -1 out of range"),
        (_state(block=1 << 70), f"block {1 << 70} out of range"),
        (_state(v2={"reserve0": "-1"}), f"pool {V2}: a value no pool can hold (reserve_out"),
        (_state(v2={"reserve1": str(1 << 300)}), f"pool {V2}: a value no pool can hold (res"),
        (_state(v3={"tick": 1 << 40}), f"pool {V3}: a value no pool can hold (tick_out_of_"),
        (_state(v3={"sqrt_price_x96": "0"}), f"pool {V3}: a value no pool can hold (sqrt_pr"),
        (
            _state(v3={"liquidity": str(1 << 128)}),
            f"pool {V3}: a value no pool can hold (liquidity_out",
        ),
        (
            _state(v3={"ticks": {str(1 << 40): {"net": "1", "gross": "1"}}}),
            f"pool {V3}: a value no pool can hold (tick_out_of_range)",
        ),
        (
            _state(v3={"ticks": {"60": {"net": "1", "gross": "-1"}}}),
            f"pool {V3}: a value no pool can hold (liquidity_out_of_range)",
        ),
        (
            _state(v3={"ticks": {"60": {"net": str(1 << 127), "gross": "1"}}}),
            f"pool {V3}: a value no pool can hold (liquidity_out_of_range)",
        ),
        (
            _state(pools={V2: {"protocol": "v3", "sqrt_price_x96": "1", "liquidity": "1"}}),
            f"pool {V2}: a V2 pool needs reserve0 and reserve1",
        ),
        (
            _state(pools={V3: {"protocol": "v2", "reserve0": "1", "reserve1": "2"}}),
            f"pool {V3}: a V3/V4 pool needs sqrt_price_x96, liquidity and tick",
        ),
    ],
)
def test_a_value_no_pool_can_hold_is_refused(document: dict[str, Any], reason: str) -> None:
    engine = _engine()
    with pytest.raises(StateFileError) as caught:
        _load(engine, document)
    assert str(caught.value).startswith(f"state file state.json: {reason}")
    assert engine.sync_state is SyncState.UNSEEDED


def test_the_edges_of_the_contracts_ranges_load() -> None:
    edges = _state(
        block=(1 << 63) - 1,
        v2={"reserve0": "0", "reserve1": str(U112_MAX)},
        v3={
            "sqrt_price_x96": str(MAX_SQRT_RATIO - 1),
            "tick": MAX_TICK,
            "ticks": {str(MIN_TICK): {"net": str(-(1 << 127)), "gross": str((1 << 128) - 1)}},
        },
    )
    assert _load(_engine(), edges) == 2
    assert (
        _load(_engine(), _state(v3={"sqrt_price_x96": str(MIN_SQRT_RATIO), "tick": MIN_TICK})) == 2
    )
