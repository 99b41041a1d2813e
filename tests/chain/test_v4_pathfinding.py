"""Pathfinding through V4 pools on the real contracts: found, verified, and executed.

The dev chain's pools (V2, V3 and the V4 PoolManager's, hooked ones included) are
hydrated into an arena; one recalculation screens every cycle and verifies the best
exactly. A cycle through a hookless V4 pool and V2/V3 pools must come out, and running
it hop by hop on anvil (V2 pair swap, V3 SwapRouter, V4 PoolSwapTest, in one block) must
pay every hop exactly our quote and the whole cycle exactly the expected output. The
hook-with-swap-deltas and dynamic-fee pools are priced to make cycles too, but are left
out and counted by reason.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import pytest
from eth_utils.crypto import keccak

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.registry import KIND_OF_PROTOCOL, PoolKind
from arena.resync import resync
from arena.summary import samples_by_label
from arena.sync_state import SyncState
from devchain import TxRequest, execute_block
from devchain.abi import encode_call
from devchain.deploy import DEADLINE
from devchain.rpc import block_number, nonce_at
from devchain.v4_world import swap_call
from devchain.whitelist_file import whitelist_document, whitelist_json
from exex_bridge.whitelist import WhitelistedPool, parse_pools_document
from pathfinder.exact_quote import ExactQuoter
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.v4_eligibility import V4Exclusion
from tests.chain.conftest import V4DevChain

pytestmark = pytest.mark.chain

TRANSFER: Final = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def _received(receipt: dict[str, Any], token: bytes, to: str) -> int:
    padded = "0x" + "00" * 12 + to.lower().removeprefix("0x")
    return sum(
        int(str(log["data"]), 16)
        for log in receipt["logs"]
        if str(log["address"]).lower() == "0x" + token.hex()
        and log["topics"][0] == TRANSFER
        and str(log["topics"][2]).lower() == padded
    )


def _hop_txs(
    chain: V4DevChain, pool: WhitelistedPool, zero_for_one: bool, amount_in: int, out: int
) -> list[tuple[str, bytes]]:
    """The trader's transactions of one hop: (to, calldata)."""
    token_in = pool.token0 if zero_for_one else pool.token1
    token_out = pool.token1 if zero_for_one else pool.token0
    d, address = chain.deployment, "0x" + pool.address.hex()
    match KIND_OF_PROTOCOL[pool.protocol]:
        case PoolKind.V2:
            outs = (0, out) if zero_for_one else (out, 0)
            pay = encode_call("ERC20", "transfer", address, amount_in)
            swap = encode_call("UniswapV2Pair", "swap", *outs, d.trader, b"")
            return [("0x" + token_in.address.hex(), pay), (address, swap)]
        case PoolKind.V3:
            params = (
                "0x" + token_in.address.hex(),
                "0x" + token_out.address.hex(),
                pool.fee,
                d.trader,
                DEADLINE,
                amount_in,
                out,
                0,
            )
            return [(d.swap_router, encode_call("SwapRouter", "exactInputSingle", params))]
        case _:
            (v4_pool,) = [p for p in chain.v4.pools if p.pool_id == pool.key]
            return [(chain.v4.swap_router, swap_call(v4_pool, zero_for_one, amount_in))]


def _execute(
    chain: V4DevChain, engine: ArenaEngine, opp: Opportunity
) -> tuple[list[int], list[int]]:
    """Run the cycle hop by hop in one block: every hop's output as quoted, as received."""
    quoter = ExactQuoter(engine)
    nonce = nonce_at(chain.w3, chain.deployment.trader)
    txs: list[TxRequest] = []
    outs: list[tuple[int, bytes]] = []  # (last tx of the hop, token out)
    quoted: list[int] = []
    amount = opp.amount_in
    for key, zero_for_one in zip(opp.pools, opp.zero_for_one, strict=True):
        index = engine.registry.index_of[bytes.fromhex(key[2:])]
        pool = engine.registry.pools[index]
        out = quoter.hop_out(index, zero_for_one, amount)
        quoted.append(out)
        for to, data in _hop_txs(chain, pool, zero_for_one, amount, out):
            txs.append(
                TxRequest(
                    sender=chain.deployment.trader,
                    to=to,
                    data=data,
                    gas=3_000_000,
                    nonce=nonce + len(txs),
                    label=f"cycle hop {key[:10]}",
                )
            )
        outs.append((len(txs) - 1, (pool.token1 if zero_for_one else pool.token0).address))
        amount = out
    _, mined = execute_block(chain.w3, txs)
    return quoted, [_received(mined[n], token, chain.deployment.trader) for n, token in outs]


def test_a_cycle_through_a_v4_pool_is_found_verified_and_pays_exactly(
    clean_v4_devchain: V4DevChain,
) -> None:
    chain = clean_v4_devchain
    whitelist = parse_pools_document(whitelist_json(chain.deployment, v4=chain.v4))
    engine = ArenaEngine(capacity=64)
    engine.add_pools(whitelist.pools)
    tip = block_number(chain.w3)
    resync(engine, chain.w3, tip)  # V4 through extsload
    weth = bytes.fromhex(chain.deployment.token("WETH").address[2:])
    recalculator = PathRecalculator(engine, PathfinderConfig(base_tokens=(weth,), top_k=64))
    changed = frozenset(range(len(engine.registry)))
    engine.take_changed()
    settled = Settled(
        block=tip, base_fee_per_gas=0, changed=changed, after_reorg=False, sync=SyncState.SYNCED
    )
    found = recalculator.on_settled(settled)

    # The hooked and dynamic-fee pools are followed but left out, counted by reason.
    hooked = {p.pool_id for p in chain.v4.pools if int(p.hooks, 16) != 0}
    reasons = {engine.registry.pools[i].key: r for i, r in recalculator.excluded.items()}
    assert reasons.keys() == hooked
    assert set(reasons.values()) == {V4Exclusion.DYNAMIC_FEE, V4Exclusion.HOOK_RETURNS_DELTA}
    gauge = samples_by_label(engine.metrics.registry, "arena_path_v4_excluded_pools", "reason")
    assert gauge == {"dynamic_fee": 1.0, "hook_returns_delta": 1.0, "pool_key_mismatch": 0.0}
    assert not any(bytes.fromhex(k[2:]) in hooked for o in found for k in o.pools)

    def kinds(opp: Opportunity) -> set[PoolKind]:
        return {
            engine.registry.kind_of(engine.registry.index_of[bytes.fromhex(k[2:])])
            for k in opp.pools
        }

    through_v4 = [o for o in found if PoolKind.V4 in kinds(o) and len(kinds(o)) > 1]
    assert through_v4, [o.pools for o in found]
    best = max(through_v4, key=lambda o: o.profit)
    print(len(found), len(through_v4), [sorted(k.name for k in kinds(o)) for o in through_v4])
    assert best.profit > 0 and best.expected_out == best.amount_in + best.profit
    quoter = ExactQuoter(engine)
    path = [
        (engine.registry.index_of[bytes.fromhex(k[2:])], z)
        for k, z in zip(best.pools, best.zero_for_one, strict=True)
    ]
    assert quoter.cycle_out(path, best.amount_in) == best.expected_out

    quoted, received = _execute(chain, engine, best)
    assert received == quoted and received[-1] == best.expected_out, (received, best)


def test_a_whitelist_entry_without_the_pools_hooks_is_left_out(
    clean_v4_devchain: V4DevChain,
) -> None:
    """Leaving `additional_data.hooks` out of a hooked pool's entry cannot make it priced
    as hookless: its tokens, fee and spacing with no hooks do not hash to its id."""
    chain = clean_v4_devchain
    document = whitelist_document(chain.deployment, v4=chain.v4)
    hooked = next(p for p in chain.v4.pools if int(p.hooks, 16) != 0 and p.fee < 1_000_000)
    for entry in document["pools"]:
        if entry.get("pool_id") == "0x" + hooked.pool_id.hex():
            del entry["additional_data"]
    whitelist = parse_pools_document(msgspec.json.encode(document))
    engine = ArenaEngine(capacity=64)
    engine.add_pools(whitelist.pools)
    resync(engine, chain.w3, block_number(chain.w3))
    recalculator = PathRecalculator(engine, PathfinderConfig())
    index = engine.registry.index_of[hooked.pool_id]
    assert recalculator.excluded[index] is V4Exclusion.POOL_KEY_MISMATCH
    assert index not in recalculator.graph.pool_tokens
    gauge = samples_by_label(engine.metrics.registry, "arena_path_v4_excluded_pools", "reason")
    assert gauge["pool_key_mismatch"] == 1.0
