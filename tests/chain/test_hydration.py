"""RPC hydration against independently computed expectations on the real contracts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.hydration import (
    MAX_TICK,
    MIN_TICK,
    HydrationError,
    V2PoolSnapshot,
    V3PoolSnapshot,
    hydrate_pools,
    hydrate_v2,
    hydrate_v3,
    initialized_ticks,
    word_range,
)
from devchain import TrafficGenerator, reorg_with_traffic, rpc_call
from devchain.abi import call
from devchain.deploy import Pool
from devchain.rpc import block_header, block_number
from tests.chain.conftest import DevChain

pytestmark = pytest.mark.chain

MINT = "0x" + keccak(text="Mint(address,address,int24,int24,uint128,uint256,uint256)").hex()
BURN = "0x" + keccak(text="Burn(address,int24,int24,uint128,uint256,uint256)").hex()
SYNC = "0x" + keccak(text="Sync(uint112,uint112)").hex()


def _signed(hex_word: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_word[2:]), "big", signed=True)


def _data_words(log: dict[str, Any]) -> list[int]:
    data = bytes.fromhex(log["data"][2:])
    return [int.from_bytes(data[i : i + 32], "big") for i in range(0, len(data), 32)]


def _expected_ticks(devchain: DevChain, pool: Pool, block: int) -> dict[int, tuple[int, int]]:
    """Tick map rebuilt from the pool's own Mint/Burn events: net and gross per tick."""
    logs = rpc_call(
        devchain.w3,
        "eth_getLogs",
        [
            {
                "fromBlock": "0x0",
                "toBlock": hex(block),
                "address": pool.address,
                "topics": [[MINT, BURN]],
            }
        ],
    )
    net: dict[int, int] = defaultdict(int)
    gross: dict[int, int] = defaultdict(int)
    for log in logs:
        lower, upper = _signed(log["topics"][2]), _signed(log["topics"][3])
        words = _data_words(log)
        amount = words[1] if log["topics"][0] == MINT else -words[0]
        net[lower] += amount
        net[upper] -= amount
        gross[lower] += amount
        gross[upper] += amount
    return {t: (net[t], gross[t]) for t in gross if gross[t] != 0}


@pytest.fixture(scope="module")
def busy_block(devchain: DevChain) -> int:
    """The shared chain after seeded traffic (mints, burns, crossing swaps) and a reorg."""
    generator = TrafficGenerator(devchain.w3, devchain.deployment, seed=31)
    generator.run(15)
    reorg_with_traffic(generator, 2)
    generator.run(3)
    return block_number(devchain.w3)


def test_v3_state_matches_the_pools_mint_and_burn_history(
    devchain: DevChain, busy_block: int
) -> None:
    pools = devchain.deployment.pools_of("v3")
    snapshots = hydrate_pools(devchain.w3, [(p.address, "v3") for p in pools], busy_block)
    burned = 0
    for pool, snapshot in zip(pools, snapshots, strict=True):
        assert isinstance(snapshot, V3PoolSnapshot)
        assert snapshot.block == busy_block
        assert snapshot.tick_spacing == pool.tick_spacing
        expected = _expected_ticks(devchain, pool, busy_block)
        assert snapshot.ticks == expected, pool.label
        in_range = sum(net for tick, (net, _) in expected.items() if tick <= snapshot.tick)
        assert snapshot.liquidity == in_range, pool.label
        slot0 = call(devchain.w3, pool.address, "UniswapV3Pool", "slot0", block=busy_block)
        assert (snapshot.sqrt_price_x96, snapshot.tick) == (slot0[0], slot0[1])
        burned += sum(1 for net, gross in expected.values() if abs(net) != gross)
    # Overlapping and partly burned positions make net differ from gross somewhere.
    assert burned > 0


def test_v2_reserves_equal_pair_balances_and_the_last_sync(
    devchain: DevChain, busy_block: int
) -> None:
    for pool in devchain.deployment.pools_of("v2"):
        snapshot = hydrate_v2(devchain.w3, pool.address, busy_block)
        assert isinstance(snapshot, V2PoolSnapshot)
        balances = tuple(
            call(devchain.w3, token.address, "ERC20", "balanceOf", pool.address, block=busy_block)[
                0
            ]
            for token in (pool.token0, pool.token1)
        )
        assert (snapshot.reserve0, snapshot.reserve1) == balances
        syncs = rpc_call(
            devchain.w3,
            "eth_getLogs",
            [
                {
                    "fromBlock": "0x0",
                    "toBlock": hex(busy_block),
                    "address": pool.address,
                    "topics": [SYNC],
                }
            ],
        )
        assert tuple(_data_words(syncs[-1])) == balances


def test_a_snapshot_is_pinned_to_its_block(devchain: DevChain, busy_block: int) -> None:
    refs = [(p.address, p.protocol) for p in devchain.deployment.pools]
    by_number = hydrate_pools(devchain.w3, refs, busy_block)
    TrafficGenerator(devchain.w3, devchain.deployment, seed=77).run(4)
    assert hydrate_pools(devchain.w3, refs, busy_block) == by_number
    block_hash = str(block_header(devchain.w3, busy_block)["hash"])
    assert hydrate_pools(devchain.w3, refs, block_hash, batch_size=7) == by_number
    assert hydrate_pools(devchain.w3, refs, block_number(devchain.w3)) != by_number


def test_a_reorged_out_block_hash_is_refused(devchain: DevChain) -> None:
    generator = TrafficGenerator(devchain.w3, devchain.deployment, seed=78)
    generator.run(2)
    stale = str(block_header(devchain.w3, block_number(devchain.w3))["hash"])
    reorg_with_traffic(generator, 1)
    pool = devchain.deployment.pools_of("v3")[0]
    with pytest.raises(HydrationError):
        hydrate_v3(devchain.w3, pool.address, stale)


def test_an_address_that_is_not_a_pool_is_an_error(devchain: DevChain) -> None:
    latest = block_number(devchain.w3)
    with pytest.raises(HydrationError, match="empty result"):
        hydrate_v2(devchain.w3, "0x" + "12" * 20, latest)
    with pytest.raises(HydrationError, match="slot0"):
        hydrate_v3(devchain.w3, devchain.deployment.token("WETH").address, latest)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=16383))
def test_word_range_covers_exactly_the_usable_ticks(spacing: int) -> None:
    words = word_range(spacing)
    lowest = -(-MIN_TICK // spacing) * spacing
    highest = (MAX_TICK // spacing) * spacing
    assert words.start == (lowest // spacing) >> 8
    assert words.stop - 1 == (highest // spacing) >> 8


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=-(2**15), max_value=2**15 - 1),
    st.integers(min_value=0, max_value=2**256 - 1),
    st.integers(min_value=1, max_value=16383),
)
def test_initialized_ticks_are_the_set_bits(word_pos: int, word: int, spacing: int) -> None:
    ticks = initialized_ticks(word_pos, word, spacing)
    assert len(ticks) == bin(word).count("1")
    assert ticks == sorted(ticks)
    for tick in ticks:
        assert tick % spacing == 0
        compressed = tick // spacing
        assert compressed >> 8 == word_pos
        assert word >> (compressed & 255) & 1
