"""Cycles through real Balancer V2 pools, executed by the contract, realize exactly the
profit the journal expected — to the wei — and leave no approval behind.

The real Vault's weighted pools and real UniswapV2Pairs priced 5 % off them: the arena,
hydrated at the tip, finds the cycles; the live executor selects, simulates, sends and
journals one. The Balancer hop is never first (no flash swap here): its input comes to
the contract, which approves the Vault for exactly that amount, swaps (GIVEN_IN) and sets
the approval back to zero; its output goes where the next hop wants it (the contract, or
the next pair directly). The realized profit is read from the start token's Transfer
logs; the allowance is read after every cycle; a cycle that starts at the Vault is
refused with FirstHopCannotFlash.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import msgspec
import pytest
from eth_utils.crypto import keccak

from devchain import AnvilNode
from devchain.abi import call
from devchain.balancer_world import BalancerWorld, deploy_balancer_world
from devchain.deploy import checksum
from devchain.executor_world import (
    arena_opportunities,
    automine,
    deploy_executor_contract,
    new_funded_key,
)
from executor.chain import ChainClient
from executor.errors import ChainRpcError
from executor.interface import describe_revert, encode_execute, revert_name
from executor.journal import AttemptStatus, read_journal
from executor.path import HopKind, decode_path
from executor.route import HopKinds
from executor.session import OpportunityExecutor
from executor.settings import ExecutorSettings
from exex_bridge.whitelist import load_whitelist_file
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig
from tests.chain.executor_fixtures import expected_gas_units
from tests.chain.test_balancer_cycle import v2_pair
from tests.chain.test_executor_realization import transfers_net

pytestmark = pytest.mark.chain

APPROVAL = "0x" + keccak(text="Approval(address,address,uint256)").hex()
TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[AnvilNode, BalancerWorld]]:
    with AnvilNode() as node:
        yield node, deploy_balancer_world(node.web3())


def test_a_cycle_through_the_vault_realizes_the_expected_profit(
    world: tuple[AnvilNode, BalancerWorld], tmp_path: Path
) -> None:
    node, balancer = world
    w3 = balancer.w3
    pool = next(p for p in balancer.pools if p.version == "v2" and len(p.tokens) == 2)
    balances = balancer.balances(pool)
    weth_raw = balances[pool.tokens.index(balancer.tokens["BWETH"])]
    usdc_raw = balances[pool.tokens.index(balancer.tokens["BUSDC"])]
    pair = v2_pair(balancer, weth_raw // 10, usdc_raw * 105 // 1000)
    t0 = checksum(call(w3, pair, "UniswapV2Pair", "token0")[0])
    decimals = {balancer.tokens["BWETH"]: 18, balancer.tokens["BUSDC"]: 6}
    t1 = balancer.tokens["BUSDC"] if t0 == balancer.tokens["BWETH"] else balancer.tokens["BWETH"]
    document = balancer.whitelist_document()
    document["pools"].append(
        {
            "address": pair.lower(),
            "protocol": "v2",
            "token0": {"address": t0.lower(), "decimals": decimals[t0]},
            "token1": {"address": t1.lower(), "decimals": decimals[t1]},
            "fee": 3000,
        }
    )
    whitelist = tmp_path / "whitelist.json"
    whitelist.write_bytes(msgspec.json.encode(document))
    pools = load_whitelist_file(whitelist).pools
    kinds = HopKinds(pools)
    key, secret = new_funded_key(w3)
    key_file = tmp_path / "executor.key"
    key_file.write_text(secret.hex() + "\n")
    executor_address = deploy_executor_contract(w3, node.url, key)
    settings = ExecutorSettings(
        rpc_url=node.url,
        executor=executor_address,
        whitelist=str(whitelist),
        journal=str(tmp_path / "journal.jsonl"),
        key_file=str(key_file),
        live=True,
        receipt_timeout_s=30.0,
    )
    weth = bytes.fromhex(balancer.tokens["BWETH"][2:])
    config = PathfinderConfig(base_tokens=(weth,), top_k=64)
    found = arena_opportunities(w3, pools, config=config)
    through_vault = [o for o in found if HopKind.BALANCER_V2 in {kinds.kind(p) for p in o.pools}]
    assert through_vault, found
    best = through_vault[0]
    assert best.gas_units == expected_gas_units(kinds, best)
    assert kinds.routable(best)
    hops = decode_path(kinds.packed_path(best))
    assert hops[0].kind is HopKind.UNISWAP_V2 and hops[1].kind is HopKind.BALANCER_V2
    executor = OpportunityExecutor.open(settings)
    try:
        with automine(w3):
            executor([best])
    finally:
        executor.close()
    journal = read_journal(tmp_path / "journal.jsonl")
    print([(e.status.value, e.reason, e.gas_used) for e in journal])
    (included,) = [e for e in journal if e.status is AttemptStatus.INCLUDED]
    assert included.tx_hash is not None and included.start_token is not None
    receipt = ChainClient(node.url).receipt(included.tx_hash)
    assert receipt is not None and receipt["status"] == "0x1"
    realized = transfers_net(receipt, included.start_token, executor_address)
    assert realized == included.expected_profit == included.realized_profit == best.profit > 0
    assert call(w3, included.start_token, "ERC20", "balanceOf", executor_address)[0] == realized
    # the Vault was approved exactly the hop's input, then zero; no allowance is left
    holder = "0x" + "00" * 12 + executor_address.lower()[2:]
    approvals = [
        (str(log["address"]).lower(), int(str(log["data"]), 16))
        for log in receipt["logs"]
        if log["topics"][0] == APPROVAL and str(log["topics"][1]).lower() == holder
    ]
    busdc = balancer.tokens["BUSDC"].lower()
    pair_out = sum(  # the pair's output, sent to the contract
        int(str(log["data"]), 16)
        for log in receipt["logs"]
        if str(log["address"]).lower() == busdc
        and log["topics"][0] == TRANSFER
        and str(log["topics"][2]).lower() == holder
    )
    assert pair_out > 0 and approvals == [(busdc, pair_out), (busdc, 0)]
    for token in balancer.tokens.values():
        allowance = call(w3, token, "ERC20", "allowance", executor_address, balancer.vault)[0]
        assert allowance == 0
    # the same cycle started at the Vault: no flash swap funds it, refused by name
    packed = kinds.packed_path(best)
    vault_record = packed[21:]  # the second record: the Balancer hop
    rotated = vault_record + packed[:21]
    data = encode_execute(rotated, best.amount_in, 0, 0, w3.eth.block_number + 5)
    client = ChainClient(node.url)
    with pytest.raises(ChainRpcError) as err:
        client.call({"from": key.address_hex, "to": executor_address, "data": "0x" + data.hex()})
    assert err.value.revert_data is not None
    assert revert_name(describe_revert(err.value.revert_data)) == "FirstHopCannotFlash"


def test_a_balancer_hop_sends_its_output_straight_to_the_next_pair(
    world: tuple[AnvilNode, BalancerWorld], tmp_path: Path
) -> None:
    """BWETH -> BUSDC on a pair paying 5 % more BUSDC, BUSDC -> BDAI in the Vault's
    4-token pool, BDAI -> BWETH on a pair paying 5 % more BWETH: the Vault's output goes
    to the second pair as the swap's recipient, never through the contract."""
    node, balancer = world
    w3, t = balancer.w3, balancer.tokens
    big = next(p for p in balancer.pools if len(p.tokens) == 4)
    balances = dict(zip(big.tokens, balancer.balances(big), strict=True))
    weights = dict(zip(big.tokens, big.weights, strict=True))

    def spot(base: str, quote: str) -> tuple[int, int]:
        """Amounts of `base` and `quote` at the 4-token pool's spot price, a tenth deep."""
        b = balances[base] // 10
        return b, balances[quote] * weights[base] // weights[quote] * b // balances[base]

    weth, usdc = spot(t["BWETH"], t["BUSDC"])
    pair1 = v2_pair(balancer, weth, usdc * 105 // 100)
    weth, dai = spot(t["BWETH"], t["BDAI"])
    pair2 = v2_pair(balancer, weth, dai * 100 // 105, other="BDAI")
    document = balancer.whitelist_document()
    decimals = {t["BWETH"]: 18, t["BUSDC"]: 6, t["BDAI"]: 18}
    for pair in (pair1, pair2):
        a = checksum(call(w3, pair, "UniswapV2Pair", "token0")[0])
        b = checksum(call(w3, pair, "UniswapV2Pair", "token1")[0])
        document["pools"].append(
            {
                "address": pair.lower(),
                "protocol": "v2",
                "token0": {"address": a.lower(), "decimals": decimals[a]},
                "token1": {"address": b.lower(), "decimals": decimals[b]},
                "fee": 3000,
            }
        )
    whitelist = tmp_path / "whitelist.json"
    whitelist.write_bytes(msgspec.json.encode(document))
    pools = load_whitelist_file(whitelist).pools
    kinds = HopKinds(pools)
    key, secret = new_funded_key(w3)
    key_file = tmp_path / "executor.key"
    key_file.write_text(secret.hex() + "\n")
    executor_address = deploy_executor_contract(w3, node.url, key)
    settings = ExecutorSettings(
        rpc_url=node.url,
        executor=executor_address,
        whitelist=str(whitelist),
        journal=str(tmp_path / "journal.jsonl"),
        key_file=str(key_file),
        live=True,
        receipt_timeout_s=30.0,
    )
    config = PathfinderConfig(base_tokens=(bytes.fromhex(t["BWETH"][2:]),), top_k=64)
    found = arena_opportunities(w3, pools, config=config)

    def vault_then_pair(o: Opportunity) -> bool:
        k = [kinds.kind(p) for p in o.pools]
        return any(a is HopKind.BALANCER_V2 and b is HopKind.UNISWAP_V2 for a, b in pairwise(k))

    wanted = [o for o in found if vault_then_pair(o) and kinds.routable(o)]
    assert wanted, [(o.pools, o.profit) for o in found]
    best = wanted[0]
    assert best.gas_units == expected_gas_units(kinds, best)
    executor = OpportunityExecutor.open(settings)
    try:
        with automine(w3):
            executor([best])
    finally:
        executor.close()
    journal = read_journal(tmp_path / "journal.jsonl")
    print([(e.status.value, e.reason, e.gas_used) for e in journal])
    (included,) = [e for e in journal if e.status is AttemptStatus.INCLUDED]
    assert included.tx_hash is not None and included.start_token is not None
    receipt = ChainClient(node.url).receipt(included.tx_hash)
    assert receipt is not None and receipt["status"] == "0x1"
    realized = transfers_net(receipt, included.start_token, executor_address)
    assert realized == included.expected_profit == included.realized_profit == best.profit > 0
    # the Vault sent its output to the pair, not to the contract
    n = [kinds.kind(p) for p in best.pools].index(HopKind.BALANCER_V2)
    token_out, next_pair = best.tokens[n + 1].lower(), best.pools[n + 1].lower()
    vault_topic = "0x" + "00" * 12 + balancer.vault.lower()[2:]
    sent = [
        "0x" + str(log["topics"][2])[-40:]
        for log in receipt["logs"]
        if str(log["address"]).lower() == token_out
        and log["topics"][0] == TRANSFER
        and str(log["topics"][1]).lower() == vault_topic
    ]
    assert sent == [next_pair]
    for token in t.values():
        allowance = call(w3, token, "ERC20", "allowance", executor_address, balancer.vault)[0]
        assert allowance == 0
