"""The stream of a real Curve StableSwap-NG pool keeps the arena on the pool, reorgs too.

A 3-coin plain pool (curvefi's bytecode) on anvil; the chain follower (our producer from
JSON-RPC) decodes its events and reads its storage as the upstream ExEx does, and its
frames go through the real block assembler into an engine hydrated from the pool. After
every poll the arena's balances must be the pool's `balances(i)`: through blocks of
exchanges and liquidity changes, a plain revert of the newest blocks (the engine
restores its own pre-images: no final exists for Curve), and new blocks after it.
"""

from __future__ import annotations

import random

import pytest
from web3 import Web3

from arena.block_assembler import BlockAssembler
from arena.engine import ArenaEngine, PoolStatus
from arena.resync import hydrate_indices
from devchain import AnvilNode, rollback, rpc_call
from devchain.curve_pool import CurvePool, deploy_curve_pool
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.producers.chain_follower import ChainFollower, EpilogueScope
from exex_bridge.whitelist import Token, WhitelistedPool

DECIMALS = (18, 6, 8)


def whitelisted(curve: CurvePool) -> WhitelistedPool:
    address = bytes.fromhex(curve.address[2:])
    tokens = [
        Token(address=bytes.fromhex(c.address[2:]), decimals=d)
        for c, d in zip(curve.coins, curve.decimals, strict=True)
    ]
    return WhitelistedPool(
        key=address,
        address=address,
        protocol=m.Protocol.CURVE_STABLE,
        token0=tokens[0],
        token1=tokens[1],
    )


def block_of_traffic(w3: Web3, curve: CurvePool, rng: random.Random) -> None:
    """One mined block: one to three exchanges, sometimes a liquidity change."""
    sender = w3.eth.accounts[0]
    pool = curve.pool.functions
    txs = []
    for _ in range(rng.randint(1, 3)):
        i, j = rng.sample(range(3), 2)
        dx = rng.randrange(1, 10 ** (DECIMALS[i] + 4))
        txs.append(pool.exchange(i, j, dx, 0).transact({"from": sender, "gas": 2_000_000}))
    if rng.random() < 0.4:
        amounts = [rng.randrange(0, 10 ** (d + 3)) for d in DECIMALS]
        amounts[rng.randrange(3)] += 1
        txs.append(pool.add_liquidity(amounts, 0).transact({"from": sender, "gas": 2_000_000}))
    elif rng.random() < 0.4:
        burn = 10**18 * rng.randint(1, 500)
        txs.append(
            pool.remove_liquidity_one_coin(burn, rng.randrange(3), 0).transact(
                {"from": sender, "gas": 2_000_000}
            )
        )
    rpc_call(w3, "evm_mine", [])
    for tx in txs:
        assert w3.eth.wait_for_transaction_receipt(tx, timeout=60)["status"] == 1


@pytest.mark.parametrize("scope", ["producer", "touched"])
async def test_the_follower_stream_keeps_the_arena_on_the_pool_through_a_revert(
    anvil_node: AnvilNode, scope: EpilogueScope
) -> None:
    w3 = anvil_node.web3()
    curve = deploy_curve_pool(
        w3,
        w3.eth.accounts[0],
        decimals=DECIMALS,
        amp=150,
        fee=4_000_000,
        offpeg_fee_multiplier=20_000_000_000,
        liquidity=tuple(2_000_000 * 10**d for d in DECIMALS),
    )
    pool = whitelisted(curve)
    engine = ArenaEngine()
    engine.add_pools([pool])
    start = w3.eth.block_number
    hydrate_indices(engine, w3, [0], start)
    engine.mark_synced(start, keep_history=False)
    frames: list[bytes] = []
    follower = ChainFollower(
        w3, [pool], None, start_block=start + 1, on_frame=frames.append, epilogue_scope=scope
    )
    assembler = BlockAssembler(engine)

    async def follow() -> None:
        await follower.poll_once()
        for payload in frames:
            assembler.feed(decode_message(payload), payload)
        frames.clear()
        state = engine.coins.state(0)
        assert state is not None
        assert state.balances == tuple(curve.pool.functions.balances(i).call() for i in range(3))
        assert engine.tip_block == w3.eth.block_number
        assert engine.status[0] == PoolStatus.LIVE

    rng = random.Random(21)
    for _ in range(6):
        block_of_traffic(w3, curve, rng)
    await follow()
    assert engine.metrics.updates.labels("curve_stable", "CurveLiquidity")._value.get() >= 6
    rollback(w3, 3)  # the newest three blocks are gone: the arena reverts them
    await follow()
    assert engine.metrics.blocks_reverted._value.get() == 3
    for _ in range(4):
        block_of_traffic(w3, curve, rng)
        await follow()
