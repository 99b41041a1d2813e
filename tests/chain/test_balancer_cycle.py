"""A cycle through a Balancer pool and a Uniswap V2 pair on anvil: found by the
recalculator from RPC-hydrated state, and paid on chain exactly as it was priced.

The real Vault's 50/50 BWETH/BUSDC pool (20220908 factory) and a real UniswapV2Pair on the
same tokens holding 5 % more BUSDC per BWETH. The arena is hydrated by `resync`; the
recalculator's best opportunity is then executed hop by hop in one block (the Vault's
`swap`, the pair's `swap` asking for exactly our quote), and every hop pays exactly what
the opportunity said.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.resync import resync
from arena.sync_state import SyncState
from devchain import AnvilNode, TxRequest, execute_block
from devchain.abi import call, encode_call, encode_deploy
from devchain.balancer_world import BalancerWorld, deploy_balancer_world, vault_swaps
from devchain.deploy import checksum
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.exact_quote import ExactQuoter
from pathfinder.recalculator import PathfinderConfig, PathRecalculator

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def world() -> Iterator[BalancerWorld]:
    with AnvilNode() as node:
        yield deploy_balancer_world(node.web3())


def _tx(world: BalancerWorld, to: str | None, data: bytes, label: str) -> TxRequest:
    return TxRequest(sender=world.deployer, to=to, data=data, gas=8_000_000, label=label)


def v2_pair(world: BalancerWorld, weth: int, usdc: int, other: str = "BUSDC") -> str:
    """A UniswapV2Pair on BWETH/`other` (default BUSDC) holding `weth` and `usdc` of
    `other`."""
    a, b = world.tokens["BWETH"], world.tokens[other]
    _, (deployed,) = world.execute(
        [_tx(world, None, encode_deploy("UniswapV2Factory", world.deployer), "v2 factory")]
    )
    factory = checksum(deployed["contractAddress"])
    world.execute(
        [_tx(world, factory, encode_call("UniswapV2Factory", "createPair", a, b), "pair")]
    )
    (pair,) = call(world.w3, factory, "UniswapV2Factory", "getPair", a, b)
    pair = checksum(pair)
    world.execute(
        [
            _tx(world, a, encode_call("ERC20", "transfer", pair, weth), "fund weth"),
            _tx(world, b, encode_call("ERC20", "transfer", pair, usdc), "fund usdc"),
            _tx(world, pair, encode_call("UniswapV2Pair", "mint", world.deployer), "mint"),
        ]
    )
    return str(pair)


def token(address: str, decimals: int) -> Token:
    return Token(address=bytes.fromhex(address[2:]), decimals=decimals)


def test_a_cycle_through_the_vault_is_paid_exactly_as_priced(world: BalancerWorld) -> None:
    pool = next(p for p in world.pools if p.version == "v2" and len(p.tokens) == 2)
    balances = world.balances(pool)
    weth_raw = balances[pool.tokens.index(world.tokens["BWETH"])]
    usdc_raw = balances[pool.tokens.index(world.tokens["BUSDC"])]
    pair = v2_pair(world, weth_raw // 10, usdc_raw * 105 // 1000)
    t0 = checksum(call(world.w3, pair, "UniswapV2Pair", "token0")[0])
    t1 = world.tokens["BUSDC"] if t0 == world.tokens["BWETH"] else world.tokens["BWETH"]
    decimals = {world.tokens["BWETH"]: 18, world.tokens["BUSDC"]: 6}
    pair_key = bytes.fromhex(pair[2:])
    engine = ArenaEngine()
    engine.add_pools(
        [
            WhitelistedPool(
                key=pair_key,
                address=pair_key,
                protocol=m.Protocol.UNISWAP_V2,
                token0=token(t0, decimals[t0]),
                token1=token(t1, decimals[t1]),
            ),
            *(p for p in world.whitelisted() if p.key == pool.pool_id),
        ]
    )
    block = int(world.w3.eth.block_number)
    resync(engine, world.w3, block)
    weth = bytes.fromhex(world.tokens["BWETH"][2:])
    recalculator = PathRecalculator(engine, PathfinderConfig(base_tokens=(weth,)))
    changed = frozenset(engine.take_changed())
    found = recalculator.on_settled(Settled(block, 0, changed, False, SyncState.SYNCED))
    assert found, "a 5 % price gap must give an opportunity"
    best = found[0]
    print(best)  # kept by pytest on failure
    assert set(best.pools) == {"0x" + pair_key.hex(), "0x" + pool.pool_id.hex()}
    quoter = ExactQuoter(engine)
    hops = zip(best.pools, best.zero_for_one, strict=True)
    path = [(engine.registry.index_of[bytes.fromhex(k[2:])], z) for k, z in hops]
    hop_outs = []
    amount = best.amount_in
    for index, zero_for_one in path:
        amount = quoter.hop_out(index, zero_for_one, amount)
        hop_outs.append(amount)
    assert hop_outs[-1] == best.expected_out > best.amount_in
    # execute the hops in one block, each asking for exactly our quote
    txs, amount = [], best.amount_in
    pair_index = engine.registry.index_of[pair_key]
    for h, ((index, zero_for_one), out) in enumerate(zip(path, hop_outs, strict=True)):
        token_in = checksum(best.tokens[h])
        if index == pair_index:
            pay = encode_call("ERC20", "transfer", pair, amount)
            outs = (0, out) if zero_for_one else (out, 0)
            swap = encode_call("UniswapV2Pair", "swap", *outs, world.deployer, b"")
            txs += [_tx(world, token_in, pay, "pay pair"), _tx(world, pair, swap, "pair swap")]
        else:
            i = pool.tokens.index(token_in)
            txs.append(world.swap_tx(pool, i, 1 - i, amount))
        amount = out
    _, receipts = execute_block(world.w3, txs)
    paid = vault_swaps(receipts, world.vault)[pool.pool_id]
    balancer_hop = next(k for k, (index, _) in enumerate(path) if index != pair_index)
    assert paid[1] == hop_outs[balancer_hop]
    # the pair's swap asked for exactly our quote and did not revert (its K check held)
    assert all(r["status"] == "0x1" for r in receipts)
