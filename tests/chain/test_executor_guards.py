"""The contract's guards, each shown by an attack that fails on anvil.

- a competitor's identical cycle mined first: our simulation refuses; our transaction
  sent anyway (no simulation) reverts on chain with InsufficientProfit, and the live
  executor journals such a transaction as `reverted`;
- a profit that differs from the opportunity's: refused as stale;
- the swap callbacks called by an EOA, or by a contract posing as a pool: UnexpectedCallback;
- `execute` or `withdraw` from anyone but the owner: NotOwner;
- a contract posing as a V3 pool inside the path: claiming more than the hop's input
  reverts with UnexpectedAmount, re-entering `execute` or `withdraw` with NotOwner; posing
  as a V2 pair and overstating its output: UnexpectedAmount;
- a passed deadline, a coinbase payment without the wrapped native start token, a bad
  path: their named errors.
"""

from __future__ import annotations

from typing import Final

import msgspec
import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from devchain.executor_world import (
    arena_opportunities,
    automine,
    deploy_executor_contract,
    deploy_test_contract,
    new_funded_key,
)
from executor.attempt import AttemptBuilder, ChainHead, Prepared, Refusal
from executor.interface import encode_execute, encode_withdraw, revert_name
from executor.journal import AttemptStatus, read_journal
from executor.keys import SigningKey
from executor.path import Hop, HopKind, decode_path, encode_path
from executor.session import OpportunityExecutor
from pathfinder.opportunity import Opportunity
from tests.chain.executor_fixtures import (
    ExecutorWorld,
    call_revert,
    executor_world,
    onchain_revert,
    send_unchecked,
)

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

V3_CALLBACK: Final = keccak(text="uniswapV3SwapCallback(int256,int256,bytes)")[:4]
V2_CALLBACK: Final = keccak(text="uniswapV2Call(address,uint256,uint256,bytes)")[:4]
PROBE_V3: Final = keccak(text="probeConcentrated(address,int256,int256,bytes)")[:4]
PROBE_V2: Final = keccak(text="probePair(address,address,uint256,uint256,bytes)")[:4]
GAS: Final = 1_500_000


def builder(world: ExecutorWorld) -> AttemptBuilder:
    settings = world.settings(live=False)
    return AttemptBuilder(
        settings, world.kinds, world.key, world.client, bytes.fromhex(world.executor[2:])
    )


def head(world: ExecutorWorld) -> ChainHead:
    number, base_fee = world.client.latest_header()
    return ChainHead(chain_id=world.client.chain_id(), number=number, base_fee_per_gas=base_fee)


def best(world: ExecutorWorld) -> Opportunity:
    found = arena_opportunities(world.chain.w3, world.pools)
    assert found, "the dev chain is deployed mispriced: there is a cycle"
    return found[0]


def calldata(world: ExecutorWorld, opportunity: Opportunity) -> bytes:
    nonce = world.client.nonce(world.key.address)
    tx, _ = builder(world).build(opportunity, head(world), nonce, GAS)
    return tx.data


def competitor(world: ExecutorWorld) -> tuple[SigningKey, str]:
    key, _ = new_funded_key(world.chain.w3)
    return key, deploy_executor_contract(world.chain.w3, world.chain.node.url, key)


def test_a_competitor_first_makes_the_simulation_refuse_and_the_chain_revert(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    opportunity = best(world)
    ours = calldata(world, opportunity)
    assert isinstance(
        builder(world).prepare(opportunity, head(world), world.client.nonce(world.key.address)),
        Prepared,
    )
    rival_key, rival = competitor(world)
    taken = send_unchecked(world, rival_key, rival, ours)
    assert taken["status"] == "0x1"  # the rival realized the cycle first
    refusal = builder(world).prepare(
        opportunity, head(world), world.client.nonce(world.key.address)
    )
    assert isinstance(refusal, Refusal)
    assert "reverted: InsufficientProfit(" in refusal.reason
    receipt = send_unchecked(world, world.key, world.executor, calldata(world, opportunity))
    assert receipt["status"] == "0x0"
    assert revert_name(onchain_revert(world, receipt["transactionHash"])) == "InsufficientProfit"


def test_a_transaction_prepared_before_a_competitor_is_journaled_as_reverted(
    executor_world: ExecutorWorld,
) -> None:
    """The live executor sends what it prepared; the state moves before inclusion."""
    world = executor_world
    opportunity = best(world)
    settings = msgspec.structs.replace(world.settings(live=True), deadline_blocks=20)
    executor = OpportunityExecutor.open(settings)
    try:
        nonce = world.client.nonce(world.key.address)
        prepared = executor.builder.prepare(opportunity, head(world), nonce)
        assert isinstance(prepared, Prepared)
        rival_key, rival = competitor(world)
        assert send_unchecked(world, rival_key, rival, prepared.transaction.data)["status"] == (
            "0x1"
        )
        with automine(world.chain.w3):
            executor.send(prepared)
    finally:
        executor.close()
    sent, reverted = read_journal(world.tmp / "journal.jsonl")
    assert sent.status is AttemptStatus.SENT and reverted.status is AttemptStatus.REVERTED
    assert reverted.tx_hash == sent.tx_hash and reverted.nonce == nonce
    assert reverted.expected_profit == opportunity.profit and reverted.realized_profit == 0
    assert reverted.tx_hash is not None
    assert revert_name(onchain_revert(world, reverted.tx_hash)) == "InsufficientProfit"
    assert world.client.nonce(world.key.address, "latest") == nonce + 1


def test_a_profit_other_than_the_opportunitys_is_refused_as_stale(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    opportunity = best(world)
    changed = msgspec.structs.replace(opportunity, profit=opportunity.profit - 1)
    refusal = builder(world).prepare(changed, head(world), world.client.nonce(world.key.address))
    assert isinstance(refusal, Refusal)
    assert refusal.reason.startswith("stale state: simulated profit")
    assert refusal.expected_profit == opportunity.profit


def test_callbacks_from_an_eoa_revert(executor_world: ExecutorWorld) -> None:
    world = executor_world
    path = world.kinds.packed_path(best(world))
    attacker, _ = new_funded_key(world.chain.w3)
    attacks = [
        V3_CALLBACK + encode(["int256", "int256", "bytes"], [10**18, -(10**18), path]),
        V3_CALLBACK + encode(["int256", "int256", "bytes"], [10**18, -(10**18), b""]),
        V2_CALLBACK
        + encode(
            ["address", "uint256", "uint256", "bytes"],
            [world.executor, 0, 10**18, (10**18).to_bytes(32, "big") + path],
        ),
    ]
    for data in attacks:
        reason = call_revert(world, attacker.address, world.executor, data)
        assert revert_name(reason) == "UnexpectedCallback"
        receipt = send_unchecked(world, attacker, world.executor, data)
        assert receipt["status"] == "0x0"
        assert revert_name(onchain_revert(world, receipt["transactionHash"])) == (
            "UnexpectedCallback"
        )


def test_callbacks_from_a_contract_posing_as_a_pool_revert(executor_world: ExecutorWorld) -> None:
    world = executor_world
    path = world.kinds.packed_path(best(world))
    attacker, _ = new_funded_key(world.chain.w3)
    probe = deploy_test_contract(world.chain.w3, world.chain.node.url, attacker, "CallbackProbe")
    attacks = [
        PROBE_V3
        + encode(
            ["address", "int256", "int256", "bytes"], [world.executor, 10**18, -(10**18), path]
        ),
        PROBE_V2
        + encode(
            ["address", "address", "uint256", "uint256", "bytes"],
            [world.executor, world.executor, 0, 10**18, (10**18).to_bytes(32, "big") + path],
        ),
    ]
    for data in attacks:
        assert revert_name(call_revert(world, attacker.address, probe, data)) == (
            "UnexpectedCallback"
        )
        receipt = send_unchecked(world, attacker, probe, data)
        assert receipt["status"] == "0x0"
        assert revert_name(onchain_revert(world, receipt["transactionHash"])) == (
            "UnexpectedCallback"
        )


def test_only_the_owner_executes_or_withdraws(executor_world: ExecutorWorld) -> None:
    world = executor_world
    opportunity = best(world)
    stranger, _ = new_funded_key(world.chain.w3)
    data = calldata(world, opportunity)
    assert revert_name(call_revert(world, stranger.address, world.executor, data)) == "NotOwner"
    receipt = send_unchecked(world, stranger, world.executor, data)
    assert receipt["status"] == "0x0"
    assert revert_name(onchain_revert(world, receipt["transactionHash"])) == "NotOwner"
    token = bytes.fromhex(opportunity.tokens[0][2:])
    withdraw = encode_withdraw(token, stranger.address, 1)
    assert revert_name(call_revert(world, stranger.address, world.executor, withdraw)) == (
        "NotOwner"
    )
    # the owner's own cycle then runs, and the owner can withdraw its profit
    ours = send_unchecked(world, world.key, world.executor, data)
    assert ours["status"] == "0x1"
    out = encode_withdraw(token, world.key.address, opportunity.profit)
    assert send_unchecked(world, world.key, world.executor, out)["status"] == "0x1"


def test_deadline_payment_and_path_errors_are_named(executor_world: ExecutorWorld) -> None:
    world = executor_world
    opportunity = best(world)
    path = world.kinds.packed_path(opportunity)
    tip = world.client.block_number()
    owner, executor = world.key.address, world.executor
    cases = {
        "DeadlinePassed": encode_execute(path, opportunity.amount_in, 0, 0, tip - 1),
        "PaymentNeedsWrappedNative": encode_execute(path, opportunity.amount_in, 0, 1, tip + 5),
        "BadPathLength": encode_execute(path[:-1], opportunity.amount_in, 0, 0, tip + 5),
        "BadHopFlags": encode_execute(
            path[:20] + bytes([path[20] | 0x0A]) + path[21:], opportunity.amount_in, 0, 0, tip + 5
        ),
    }
    for name, data in cases.items():
        assert revert_name(call_revert(world, owner, executor, data)) == name, name


def test_a_pool_in_the_path_that_overclaims_or_re_enters_is_stopped(
    executor_world: ExecutorWorld,
) -> None:
    """The owner's mistake — a contract that is no Uniswap pool, listed as a V3 pool —
    cannot take more than the hop's input, nor re-enter the contract."""
    world = executor_world
    real = decode_path(world.kinds.packed_path(best(world)))
    attacker, _ = new_funded_key(world.chain.w3)
    probe = deploy_test_contract(world.chain.w3, world.chain.node.url, attacker, "CallbackProbe")
    fake = Hop(pool=bytes.fromhex(probe[2:]), kind=HopKind.UNISWAP_V3, zero_for_one=True)
    tip = world.client.block_number()
    data = encode_execute(encode_path([fake, *real[1:]]), 10**18, 0, 0, tip + 5)
    set_mode = keccak(text="setMode(uint8)")[:4]
    for mode, expected in ((0, "UnexpectedAmount"), (1, "NotOwner"), (2, "NotOwner")):
        assert (
            send_unchecked(world, attacker, probe, set_mode + encode(["uint8"], [mode]))["status"]
            == "0x1"
        )
        assert revert_name(call_revert(world, world.key.address, world.executor, data)) == (
            expected
        ), mode
    # listed as a V2 pair: it reports more output than it was asked for
    pair = Hop(pool=fake.pool, kind=HopKind.UNISWAP_V2, zero_for_one=True)
    data = encode_execute(encode_path([pair, *real[1:]]), 10**18, 0, 0, tip + 5)
    assert revert_name(call_revert(world, world.key.address, world.executor, data)) == (
        "UnexpectedAmount"
    )
