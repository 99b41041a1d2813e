"""Hypothesis strategies for every message of the ExEx wire (reusable by other test suites).

Integers are drawn over their full wire range (hypothesis favours the bounds), so a
round trip through these strategies exercises every width and sign edge. The per-variant
tables let a suite weight or restrict the mix (`payloads(only=(m.V3Swap,))`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from hypothesis import strategies as st

from exex_bridge import bincode as b
from exex_bridge import messages as m

u8: Final = st.integers(0, 0xFF)
i32: Final = st.integers(-(1 << 31), (1 << 31) - 1)
u64: Final = st.integers(0, b.U64_MAX)
u128: Final = st.integers(0, b.U128_MAX)
i128: Final = st.integers(b.I128_MIN, b.I128_MAX)
u256: Final = st.integers(0, b.U256_MAX)
i256: Final = st.integers(b.I256_MIN, b.I256_MAX)
addresses: Final = st.binary(min_size=20, max_size=20)
pool_id_bytes: Final = st.binary(min_size=32, max_size=32)
protocols: Final = st.sampled_from(m.Protocol)
update_types: Final = st.sampled_from(m.UpdateType)

pool_identifiers: Final[st.SearchStrategy[m.PoolIdentifier]] = st.one_of(
    st.builds(m.PoolAddress, value=addresses),
    st.builds(m.V4PoolId, value=pool_id_bytes),
)

fluid_reserves: Final = st.builds(
    m.FluidReserves, **{name: u128 for name in m.FluidReserves.__struct_fields__}
)


def _fields(cls: type[Any], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, **fields)


_SLOT0: Final = {"sqrt_price_x96": u256, "liquidity": u128, "tick": i32}
_LIQ: Final = {"tick_lower": i32, "tick_upper": i32, "liquidity_delta": i128}
_RAMP: Final = {
    "initial_a": u64,
    "future_a": u64,
    "initial_gamma": u128,
    "future_gamma": u128,
    "initial_time": u64,
    "future_time": u64,
}
_PARAMS: Final = {"mid_fee": u64, "out_fee": u64, "fee_gamma": u128}


def _balancer_liquidity() -> st.SearchStrategy[m.BalancerLiquidity]:
    # Upstream keeps the two vectors parallel, but the wire does not enforce it.
    return st.builds(
        m.BalancerLiquidity,
        tokens=st.lists(addresses, max_size=8).map(tuple),
        deltas=st.lists(i128, max_size=8).map(tuple),
    )


PAYLOAD_STRATEGIES: Final[dict[type[Any], st.SearchStrategy[Any]]] = {
    m.V2Swap: _fields(m.V2Swap, amount0=i256, amount1=i256),
    m.V2Liquidity: _fields(m.V2Liquidity, amount0=i256, amount1=i256),
    m.V3Swap: _fields(m.V3Swap, **_SLOT0),
    m.V3Liquidity: _fields(m.V3Liquidity, **_LIQ),
    m.V4Swap: _fields(m.V4Swap, **_SLOT0),
    m.V4Liquidity: _fields(m.V4Liquidity, **_LIQ),
    m.EkuboSwap: _fields(m.EkuboSwap, sqrt_ratio=u256, liquidity=u128, tick=i32),
    m.EkuboLiquidity: _fields(m.EkuboLiquidity, **_LIQ, sqrt_ratio=u256, liquidity=u128, tick=i32),
    m.CurveSwap: _fields(
        m.CurveSwap, sold_id=u8, tokens_sold=u128, bought_id=u8, tokens_bought=u128
    ),
    m.CurveLiquidity: _fields(
        m.CurveLiquidity,
        effective_balances=st.lists(u128, max_size=8).map(tuple),
        fee=u64,
        offpeg_fee_multiplier=u64,
        initial_a=u64,
        future_a=u64,
        initial_a_time=u64,
        future_a_time=u64,
    ),
    m.CurveRampA: _fields(
        m.CurveRampA, initial_a=u64, future_a=u64, initial_a_time=u64, future_a_time=u64
    ),
    m.CurveFeeUpdate: _fields(m.CurveFeeUpdate, fee=u64, offpeg_fee_multiplier=u64),
    m.TwoCryptoState: _fields(
        m.TwoCryptoState, balances=st.tuples(u128, u128), price_scale=u256, d=u256
    ),
    m.TwoCryptoRampAgamma: _fields(m.TwoCryptoRampAgamma, **_RAMP),
    m.TwoCryptoNewParameters: _fields(m.TwoCryptoNewParameters, **_PARAMS),
    m.TricryptoState: _fields(
        m.TricryptoState,
        balances=st.tuples(u128, u128, u128),
        packed_price_scale=u256,
        d=u256,
    ),
    m.TricryptoRampAgamma: _fields(m.TricryptoRampAgamma, **_RAMP),
    m.TricryptoNewParameters: _fields(m.TricryptoNewParameters, **_PARAMS),
    m.BalancerSwap: _fields(
        m.BalancerSwap, token_in=addresses, token_out=addresses, amount_in=u256, amount_out=u256
    ),
    m.BalancerLiquidity: _balancer_liquidity(),
    m.BalancerFeeUpdate: _fields(m.BalancerFeeUpdate, swap_fee_percentage=u64),
    m.FluidState: _fields(m.FluidState, state=fluid_reserves),
    m.V2Sync: _fields(m.V2Sync, reserve0=u128, reserve1=u128),
}

HOT_PAYLOADS: Final = (m.V2Sync, m.V3Swap, m.V3Liquidity, m.V4Swap, m.V4Liquidity)


def payloads(only: Iterable[type[Any]] | None = None) -> st.SearchStrategy[m.PoolUpdatePayload]:
    classes = m.POOL_UPDATE_VARIANTS if only is None else tuple(only)
    return st.one_of([PAYLOAD_STRATEGIES[cls] for cls in classes])


def pool_update_messages(
    update: st.SearchStrategy[m.PoolUpdatePayload] | None = None,
) -> st.SearchStrategy[m.PoolUpdateMessage]:
    return st.builds(
        m.PoolUpdateMessage,
        pool_id=pool_identifiers,
        protocol=protocols,
        update_type=update_types,
        block_number=u64,
        block_timestamp=u64,
        tx_index=u64,
        log_index=u64,
        is_revert=st.booleans(),
        update=payloads() if update is None else update,
    )


def pool_updates(
    update: st.SearchStrategy[m.PoolUpdatePayload] | None = None,
) -> st.SearchStrategy[m.PoolUpdate]:
    return st.builds(m.PoolUpdate, stream_seq=u64, event=pool_update_messages(update))


reorg_ranges: Final = st.builds(
    m.ReorgRange, first_block=st.none() | u64, last_block=st.none() | u64, block_count=u64
)

epilogue_updates: Final[st.SearchStrategy[m.ReorgEpilogueUpdate]] = st.one_of(
    st.builds(
        m.Slot0Final,
        pool_id=pool_identifiers,
        protocol=protocols,
        state=st.builds(m.Slot0State, **_SLOT0),
    ),
    st.builds(m.FluidStateFinal, pool_id=pool_identifiers, state=fluid_reserves),
    st.builds(m.V2ReservesFinal, pool_id=pool_identifiers, reserve0=u128, reserve1=u128),
)

_CONTROL: Final[dict[type[Any], Callable[[], st.SearchStrategy[Any]]]] = {
    m.UpdateWhitelist: lambda: st.builds(m.UpdateWhitelist, payload=st.binary(max_size=64)),
    m.BeginBlock: lambda: st.builds(
        m.BeginBlock,
        stream_seq=u64,
        block_number=u64,
        block_timestamp=u64,
        base_fee_per_gas=u64,
        is_revert=st.booleans(),
    ),
    m.PoolUpdate: pool_updates,
    m.EndBlock: lambda: st.builds(m.EndBlock, stream_seq=u64, block_number=u64, num_updates=u64),
    m.Ping: lambda: st.just(m.Ping()),
    m.Pong: lambda: st.just(m.Pong()),
    m.ReorgStart: lambda: st.builds(
        m.ReorgStart, stream_seq=u64, old_range=reorg_ranges, new_range=reorg_ranges
    ),
    m.ReorgEpilogue: lambda: st.builds(
        m.ReorgEpilogue,
        stream_seq=u64,
        final_tip_block=u64,
        final_tip_timestamp=u64,
        update=epilogue_updates,
    ),
    m.ReorgComplete: lambda: st.builds(m.ReorgComplete, stream_seq=u64, final_tip_block=u64),
}

CONTROL_STRATEGIES: Final[dict[type[Any], st.SearchStrategy[Any]]] = {
    cls: make() for cls, make in _CONTROL.items()
}


def control_messages(
    include_whitelist: bool = True,
) -> st.SearchStrategy[m.ControlMessage]:
    """Any `ControlMessage`; whitelist frames are opaque, so some suites leave them out."""
    skip = () if include_whitelist else (m.UpdateWhitelist,)
    return st.one_of([s for cls, s in CONTROL_STRATEGIES.items() if cls not in skip])


def hot_messages() -> st.SearchStrategy[m.ControlMessage]:
    """The frames the fast decoder has layouts for (most of a real stream)."""
    return st.one_of(
        pool_updates(payloads(HOT_PAYLOADS)),
        CONTROL_STRATEGIES[m.BeginBlock],
        CONTROL_STRATEGIES[m.EndBlock],
    )


__all__ = [
    "CONTROL_STRATEGIES",
    "HOT_PAYLOADS",
    "PAYLOAD_STRATEGIES",
    "addresses",
    "control_messages",
    "epilogue_updates",
    "fluid_reserves",
    "hot_messages",
    "i128",
    "i256",
    "i32",
    "pool_id_bytes",
    "pool_identifiers",
    "pool_update_messages",
    "pool_updates",
    "payloads",
    "protocols",
    "reorg_ranges",
    "u128",
    "u256",
    "u64",
    "u8",
    "update_types",
]
