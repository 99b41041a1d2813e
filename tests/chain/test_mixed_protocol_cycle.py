"""One cycle through a Uniswap V4 pool, a Curve pool and a Balancer pool on one anvil:
found by the recalculator from RPC-hydrated state, verified exactly, and executed by the
contract for exactly the expected profit — to the wei.

On the dev chain's tokens: the PoolManager's hookless WETH/USDC pool (priced 0.45 % off),
a real Curve StableSwap-NG plain pool on USDC/DAI at the peg, and a real Balancer V2
weighted pool (50/50, 20220908 factory) on DAI/WETH selling WETH 3 % cheap. So
WETH →V4→ USDC →Curve→ DAI →Balancer→ WETH pays; Curve and Balancer cannot be the first
hop (no flash swap), V4 can. The arena is hydrated by `resync` from the whitelist the
executor reads; the recalculator's opportunity for that cycle is re-quoted hop by hop
with the exact quoter, then sent by the live executor, and the start token's Transfer
logs in the receipt give the realized profit.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from eth_utils.crypto import keccak

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.registry import PoolKind
from arena.resync import resync
from arena.sync_state import SyncState
from devchain import TxRequest
from devchain.abi import call, encode_call
from devchain.balancer_world import create_weighted_pool, deploy_balancer_world
from devchain.curve_pool import deploy_curve_pool_of
from devchain.executor_world import automine
from devchain.whitelist_file import whitelist_document
from executor.journal import AttemptStatus, read_journal
from executor.path import HopKind, decode_path
from executor.route import HopKinds
from executor.session import OpportunityExecutor
from exex_bridge.whitelist import load_whitelist_file
from pathfinder.exact_quote import ExactQuoter
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from tests.chain.conftest import V4DevChain
from tests.chain.executor_fixtures import ExecutorWorld, make_executor_world
from tests.chain.test_executor_realization import transfers_net

pytestmark = pytest.mark.chain

TRANSFER: Final = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
USD: Final = 1_000_000
WETH_DEPTH: Final = 1_000  # whole WETH in the Balancer pool
WETH_DISCOUNT_BPS: Final = 300  # the Balancer pool's WETH price below 2000 DAI
ALL_THREE: Final = frozenset({PoolKind.V4, PoolKind.CURVE_STABLE, PoolKind.BALANCER_WEIGHTED})


def _mixed_world(chain: V4DevChain, tmp_path: Path) -> tuple[ExecutorWorld, str]:
    """The executor world (dev chain and V4 pools) plus the Curve and Balancer pools, all
    in the whitelist the arena and the executor read; and the Balancer Vault."""
    w3, deployment = chain.w3, chain.deployment
    weth, usdc, dai = (deployment.token(s) for s in ("WETH", "USDC", "DAI"))
    curve = deploy_curve_pool_of(
        w3,
        deployment.deployer,
        coins=(usdc.address, dai.address),
        decimals=(usdc.decimals, dai.decimals),
        amp=200,
        fee=1_000_000,  # 0.01 %
        offpeg_fee_multiplier=20_000_000_000,
        liquidity=(3 * USD * 10**usdc.decimals, 3 * USD * 10**dai.decimals),
    )
    balancer = deploy_balancer_world(w3, deployment.deployer)
    balancer.execute(
        [
            TxRequest(
                sender=deployment.deployer,
                to=token.address,
                data=encode_call("ERC20", "approve", balancer.vault, 2**256 - 1),
                gas=100_000,
                label=f"approve vault {token.symbol}",
            )
            for token in (weth, dai)
        ]
    )
    dai_depth = WETH_DEPTH * 2000 * (10_000 - WETH_DISCOUNT_BPS) // 10_000
    pool = create_weighted_pool(
        balancer,
        "v2",
        ((weth.address, weth.decimals), (dai.address, dai.decimals)),
        percents=(50, 50),
        fee=10**15,  # 0.1 %
        amounts=(WETH_DEPTH * 10**weth.decimals, dai_depth * 10**dai.decimals),
        name="WETH-DAI",
    )
    world = make_executor_world(chain.chain, tmp_path, v4=chain.v4)
    document = whitelist_document(deployment, v4=chain.v4)
    document["pools"].append(
        {
            "address": curve.address.lower(),
            "protocol": "curve_stable",
            "token0": {"address": usdc.address.lower(), "decimals": usdc.decimals},
            "token1": {"address": dai.address.lower(), "decimals": dai.decimals},
        }
    )
    document["pools"] += dataclasses.replace(balancer, pools=[pool]).whitelist_document()["pools"]
    world.whitelist.write_bytes(msgspec.json.encode(document))
    world.pools = load_whitelist_file(world.whitelist).pools
    world.kinds = HopKinds(world.pools)
    return world, balancer.vault


def _paid(receipt: dict[str, Any], token: str, payer: str) -> int:
    """What `payer` sent of `token` in the receipt's Transfer logs."""
    topic = "0x" + "00" * 12 + payer.lower().removeprefix("0x")
    return sum(
        int(str(log["data"]), 16)
        for log in receipt["logs"]
        if str(log["address"]).lower() == token.lower()
        and log["topics"][0] == TRANSFER
        and str(log["topics"][1]).lower() == topic
    )


def test_a_cycle_through_v4_curve_and_balancer_is_found_verified_and_pays_exactly(
    clean_v4_devchain: V4DevChain, tmp_path: Path
) -> None:
    chain = clean_v4_devchain
    world, vault = _mixed_world(chain, tmp_path)
    w3 = chain.w3
    engine = ArenaEngine(capacity=2 * len(world.pools))
    engine.add_pools(world.pools)
    tip = int(w3.eth.block_number)
    resync(engine, w3, tip)
    weth = chain.deployment.token("WETH").address
    config = PathfinderConfig(base_tokens=(bytes.fromhex(weth[2:]),), top_k=64)
    recalculator = PathRecalculator(engine, config)
    changed = frozenset(engine.take_changed())
    found = recalculator.on_settled(Settled(tip, 0, changed, False, SyncState.SYNCED))

    def index(key: str) -> int:
        return engine.registry.index_of[bytes.fromhex(key[2:])]

    def kinds(opportunity: Opportunity) -> set[PoolKind]:
        return {engine.registry.kind_of(index(k)) for k in opportunity.pools}

    mixed = [o for o in found if kinds(o) == ALL_THREE]
    print(len(found), [(sorted(k.name for k in kinds(o)), o.profit) for o in found])
    assert mixed, "the V4 → Curve → Balancer cycle must be found"
    best = max(mixed, key=lambda o: o.profit)
    assert len(best.pools) == 3 and best.tokens[0] == best.tokens[-1] == weth.lower()
    assert best.profit > 0 and best.expected_out == best.amount_in + best.profit

    # the exact verification is the hops quoted one by one, each output feeding the next
    quoter = ExactQuoter(engine)
    quoted, amount = [], best.amount_in
    for key, zero_for_one in zip(best.pools, best.zero_for_one, strict=True):
        amount = quoter.hop_out(index(key), zero_for_one, amount)
        quoted.append(amount)
    assert all(out > 0 for out in quoted) and quoted[-1] == best.expected_out

    # the contract runs it: V4 first (the flash), Curve and Balancer after it
    assert world.kinds.routable(best)
    hops = [h.kind for h in decode_path(world.kinds.packed_path(best))]
    assert hops[0] is HopKind.UNISWAP_V4
    assert set(hops) == {HopKind.UNISWAP_V4, HopKind.CURVE_STABLE, HopKind.BALANCER_V2}
    executor = OpportunityExecutor.open(world.settings(live=True))
    try:
        with automine(w3):
            executor([best])
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    print([(e.status.value, e.reason, e.gas_used) for e in journal])
    (included,) = [e for e in journal if e.status is AttemptStatus.INCLUDED]
    assert included.tx_hash is not None and included.start_token is not None
    assert included.start_token.lower() == weth.lower()
    receipt = world.client.receipt(included.tx_hash)
    assert receipt is not None and receipt["status"] == "0x1"
    realized = transfers_net(receipt, included.start_token, world.executor)
    assert realized == best.profit == included.expected_profit == included.realized_profit
    assert call(w3, weth, "ERC20", "balanceOf", world.executor)[0] == realized
    # every hop paid exactly its quote: the PoolManager, the Curve pool, the Vault
    payers = {
        PoolKind.V4: chain.v4.pool_manager,
        PoolKind.CURVE_STABLE: None,  # the pool itself
        PoolKind.BALANCER_WEIGHTED: vault,
    }
    for hop, (key, out) in enumerate(zip(best.pools, quoted, strict=True)):
        payer = payers[engine.registry.kind_of(index(key))] or key
        assert _paid(receipt, best.tokens[hop + 1], payer) == out, (hop, key)
