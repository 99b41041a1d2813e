"""V4 whitelist entries: the PoolManager (`factory`), hooks, dynamic fees; and the
PoolManager's packed storage words."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.v4_storage import decode_slot0, decode_tick_info
from exex_bridge.whitelist import (
    V4_DYNAMIC_FEE_FLAG,
    V4_MAINNET_POOL_MANAGER,
    parse_pools_document,
)

T0, T1 = "0x" + "11" * 20, "0x" + "22" * 20
PID = "0x" + "ab" * 32


def _doc(**entry: object) -> bytes:
    pool = {
        "address": "0x" + "33" * 20,
        "protocol": "v4",
        "token0": {"address": T0, "decimals": 18},
        "token1": {"address": T1, "decimals": 6},
        "fee": 3000,
        "tick_spacing": 60,
        "pool_id": PID,
    } | entry
    return msgspec.json.encode({"pools": [pool]})


def test_pool_manager_and_hooks_come_from_factory_and_additional_data() -> None:
    doc = _doc(factory="0x" + "44" * 20, additional_data={"hooks": "0x" + "55" * 20})
    (pool,) = parse_pools_document(doc).pools
    assert pool.pool_manager == b"\x44" * 20 and pool.hooks == b"\x55" * 20
    assert pool.key == bytes.fromhex(PID[2:])


def test_defaults_are_the_mainnet_pool_manager_and_no_hooks() -> None:
    (pool,) = parse_pools_document(_doc()).pools
    assert pool.pool_manager == V4_MAINNET_POOL_MANAGER and pool.hooks == bytes(20)


def test_dynamic_fee_flag_is_accepted_for_v4_only() -> None:
    (pool,) = parse_pools_document(_doc(fee=V4_DYNAMIC_FEE_FLAG)).pools
    assert pool.fee == V4_DYNAMIC_FEE_FLAG
    v3 = parse_pools_document(_doc(protocol="v3", fee=V4_DYNAMIC_FEE_FLAG))
    assert v3.pools == () and v3.skipped == 1


def test_bad_hooks_or_factory_skip_the_entry() -> None:
    for entry in ({"additional_data": {"hooks": "0x12"}}, {"factory": "nope"}):
        parsed = parse_pools_document(_doc(**entry))
        assert parsed.pools == () and parsed.skipped == 1


@given(
    sqrt=st.integers(0, 2**160 - 1),
    tick=st.integers(-(2**23), 2**23 - 1),
    protocol_fee=st.integers(0, 2**24 - 1),
    lp_fee=st.integers(0, 2**24 - 1),
)
def test_slot0_word_unpacks_to_its_fields(
    sqrt: int, tick: int, protocol_fee: int, lp_fee: int
) -> None:
    word = sqrt | ((tick % 2**24) << 160) | (protocol_fee << 184) | (lp_fee << 208)
    assert tuple(decode_slot0(word)) == (sqrt, tick, protocol_fee, lp_fee)


@given(net=st.integers(-(2**127), 2**127 - 1), gross=st.integers(0, 2**128 - 1))
def test_tick_word_unpacks_to_net_and_gross(net: int, gross: int) -> None:
    assert decode_tick_info(((net % 2**128) << 128) | gross) == (net, gross)
