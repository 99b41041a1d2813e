"""Which V4 pools pathfinding may price: pool key checked, dynamic fees and swap-delta
hooks left out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.messages import Protocol
from exex_bridge.v4_storage import v4_pool_id
from exex_bridge.whitelist import V4_DYNAMIC_FEE_FLAG, Token, WhitelistedPool
from pathfinder.v4_eligibility import (
    AFTER_SWAP_RETURNS_DELTA,
    BEFORE_SWAP_RETURNS_DELTA,
    V4Exclusion,
    v4_exclusion,
)

addresses = st.binary(min_size=20, max_size=20)
fees = st.one_of(st.integers(0, 999_999), st.just(V4_DYNAMIC_FEE_FLAG))


def _pool(
    t0: bytes, t1: bytes, fee: int, spacing: int, hooks: bytes, *, key: bytes | None = None
) -> WhitelistedPool:
    return WhitelistedPool(
        key=key or v4_pool_id(t0, t1, fee, spacing, hooks),
        address=bytes(20),
        protocol=Protocol.UNISWAP_V4,
        token0=Token(address=t0, decimals=18),
        token1=Token(address=t1, decimals=18),
        fee=fee,
        tick_spacing=spacing,
        pool_manager=bytes(20),
        hooks=hooks,
    )


@given(t0=addresses, t1=addresses, fee=fees, spacing=st.integers(1, 16383), hooks=addresses)
def test_exclusion_follows_the_fee_flag_and_the_hook_bits(
    t0: bytes, t1: bytes, fee: int, spacing: int, hooks: bytes
) -> None:
    flags = int.from_bytes(hooks, "big")
    reason = v4_exclusion(_pool(t0, t1, fee, spacing, hooks))
    if fee == V4_DYNAMIC_FEE_FLAG:
        assert reason is V4Exclusion.DYNAMIC_FEE
    elif flags & (BEFORE_SWAP_RETURNS_DELTA | AFTER_SWAP_RETURNS_DELTA):
        assert reason is V4Exclusion.HOOK_RETURNS_DELTA
    else:
        assert reason is None


@given(
    t0=addresses,
    t1=addresses,
    fee=st.integers(0, 999_999),
    spacing=st.integers(1, 16383),
    key=st.binary(min_size=32, max_size=32),
)
def test_a_whitelist_entry_that_does_not_hash_to_its_pool_id_is_left_out(
    t0: bytes, t1: bytes, fee: int, spacing: int, key: bytes
) -> None:
    pool = _pool(t0, t1, fee, spacing, bytes(20), key=key)
    honest = key == v4_pool_id(t0, t1, fee, spacing, bytes(20))
    assert (v4_exclusion(pool) is None) == honest
    if not honest:
        assert v4_exclusion(pool) is V4Exclusion.POOL_KEY_MISMATCH


def test_a_known_mainnet_pool_id() -> None:
    # ETH/USDC 0.05 % (hookless), a public pool: its id is the key's keccak.
    usdc = bytes.fromhex("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
    pid = v4_pool_id(bytes(20), usdc, 500, 10, bytes(20))
    assert pid.hex() == "21c67e77068de97969ba93d4aab21826d33ca12bb9f565d8496e8fda8a82ca27"
