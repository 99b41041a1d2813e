"""The contract's V4 guards, each shown by an attack that fails on anvil.

- `unlockCallback` called by an EOA or a contract, outside a cycle: UnexpectedCallback;
- a contract posing as a V3 pool in a cycle with a V4 hop, calling `unlockCallback` from
  its swap to be paid that hop's input: UnexpectedCallback (only the PoolManager the
  contract has just asked to unlock may call it);
- a contract posing as a PoolManager, calling a swap callback from `unlock`:
  UnexpectedCallback;
- a V4 record of the native currency (which a token transfer cannot pay):
  NativeCurrencyHop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from devchain.executor_world import deploy_test_contract, new_funded_key
from devchain.v4_world import V4Pool
from executor.interface import encode_execute, revert_name
from executor.keys import SigningKey
from executor.path import Hop, HopKind, encode_path, v4_pool_key
from tests.chain.conftest import V4DevChain
from tests.chain.executor_fixtures import (
    ExecutorWorld,
    call_revert,
    make_executor_world,
    onchain_revert,
    send_unchecked,
)

pytestmark = pytest.mark.chain

UNLOCK_CALLBACK: Final = keccak(text="unlockCallback(bytes)")[:4]
PROBE_UNLOCK: Final = keccak(text="probeUnlock(address,bytes)")[:4]
SET_MODE: Final = keccak(text="setMode(uint8)")[:4]
AMOUNT: Final = 10**18


@pytest.fixture
def world(clean_v4_devchain: V4DevChain, tmp_path: Path) -> ExecutorWorld:
    return make_executor_world(clean_v4_devchain.chain, tmp_path, v4=clean_v4_devchain.v4)


def v4_hop(manager: str, pool: V4Pool, zero_for_one: bool) -> Hop:
    key = v4_pool_key(
        bytes.fromhex(pool.token0.address[2:]),
        bytes.fromhex(pool.token1.address[2:]),
        pool.fee,
        pool.tick_spacing,
        bytes.fromhex(pool.hooks[2:]),
    )
    return Hop(
        pool=bytes.fromhex(manager[2:]), kind=HopKind.UNISWAP_V4, zero_for_one=zero_for_one, key=key
    )


def payloads(chain: V4DevChain, thief: str) -> list[bytes]:
    """unlockCallback data: a flash of a whole path, and a later hop paying `thief`."""
    pool = chain.v4.pools[0]
    hop = v4_hop(chain.v4.pool_manager, pool, True)
    back = v4_hop(chain.v4.pool_manager, pool, False)
    path = encode_path([hop, back])
    record = encode_path([hop, hop])[: len(path) // 2]  # one V4 record
    amount = AMOUNT.to_bytes(32, "big")
    return [b"\x00" + amount + path, b"\x01" + amount + bytes.fromhex(thief[2:]) + record]


def assert_named(
    world: ExecutorWorld, sender_key: SigningKey, to: str, data: bytes, name: str
) -> None:
    assert revert_name(call_revert(world, sender_key.address, to, data)) == name
    receipt = send_unchecked(world, sender_key, to, data)
    assert receipt["status"] == "0x0"
    assert revert_name(onchain_revert(world, receipt["transactionHash"])) == name


def test_unlock_callbacks_from_an_eoa_or_a_contract_outside_a_cycle_revert(
    clean_v4_devchain: V4DevChain, world: ExecutorWorld
) -> None:
    attacker, _ = new_funded_key(world.chain.w3)
    probe = deploy_test_contract(world.chain.w3, world.chain.node.url, attacker, "CallbackProbe")
    for data in payloads(clean_v4_devchain, attacker.address_hex):
        call = UNLOCK_CALLBACK + encode(["bytes"], [data])
        assert_named(world, attacker, world.executor, call, "UnexpectedCallback")
        via_probe = PROBE_UNLOCK + encode(["address", "bytes"], [world.executor, data])
        assert_named(world, attacker, probe, via_probe, "UnexpectedCallback")


def test_a_pool_in_the_path_cannot_use_the_unlock_callback_nor_a_manager_a_swap_callback(
    clean_v4_devchain: V4DevChain, world: ExecutorWorld
) -> None:
    """The owner's mistake — a contract listed as a V3 pool before a V4 hop, or as the
    V4 hop's PoolManager — cannot make the contract pay it through the other callback."""
    chain = clean_v4_devchain
    attacker, _ = new_funded_key(world.chain.w3)
    probe = deploy_test_contract(world.chain.w3, world.chain.node.url, attacker, "CallbackProbe")
    set_mode = SET_MODE + encode(["uint8"], [3])
    assert send_unchecked(world, attacker, probe, set_mode)["status"] == "0x1"
    pool = chain.v4.pools[0]
    fake_pool = Hop(pool=bytes.fromhex(probe[2:]), kind=HopKind.UNISWAP_V3, zero_for_one=True)
    real_v4 = v4_hop(chain.v4.pool_manager, pool, False)
    tip = world.client.block_number()
    # the caller is named, and no manager was expected
    refused = f"UnexpectedCallback({probe.lower()}, 0x{'00' * 20})"
    data = encode_execute(encode_path([fake_pool, real_v4]), AMOUNT, 0, 0, tip + 5)
    assert call_revert(world, world.key.address, world.executor, data) == refused
    fake_manager = v4_hop(probe, pool, True)
    for path in ([fake_manager, real_v4], [real_v4, fake_manager]):
        data = encode_execute(encode_path(path), AMOUNT, 0, 0, tip + 5)
        assert call_revert(world, world.key.address, world.executor, data) == refused


def test_a_v4_hop_of_the_native_currency_is_refused_by_name(
    clean_v4_devchain: V4DevChain, world: ExecutorWorld
) -> None:
    chain = clean_v4_devchain
    pool = chain.v4.pools[0]
    real = v4_hop(chain.v4.pool_manager, pool, True)
    native = bytearray(encode_path([real, real]))
    native[21:41] = bytes(20)  # the first record's currency0
    tip = world.client.block_number()
    data = encode_execute(bytes(native), AMOUNT, 0, 0, tip + 5)
    assert revert_name(call_revert(world, world.key.address, world.executor, data)) == (
        "NativeCurrencyHop"
    )
