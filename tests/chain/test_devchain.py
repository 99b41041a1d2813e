"""The dev chain itself: a real anvil, the real Uniswap contracts, traffic and reorgs."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak

from arena.hydration import V3PoolSnapshot, hydrate_pools
from devchain import (
    DEFAULT_SPEC,
    AnvilConfig,
    AnvilNode,
    AnvilNotFoundError,
    AnvilStartError,
    BlockTraffic,
    ReorgDepthError,
    ScenarioConfig,
    TrafficConfig,
    TrafficGenerator,
    TxRequest,
    canonical_hashes,
    deploy,
    execute_block,
    mine,
    reorg,
    reorg_with_traffic,
    rollback,
    rpc_call,
    run_scenario,
    write_whitelist,
)
from devchain.__main__ import main as devchain_main
from devchain.abi import call, decode_result, encode_call
from devchain.artifacts import ArtifactName, load_artifact
from devchain.rpc import block_header, block_number
from devchain.spec import raw_price
from devchain.tokens import decimals_operand_offset
from exex_bridge.whitelist import load_whitelist_file
from tests.chain.conftest import DevChain

pytestmark = pytest.mark.chain


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


EVENT_TOPICS = {
    "v2 Sync": _topic("Sync(uint112,uint112)"),
    "v2 Swap": _topic("Swap(address,uint256,uint256,uint256,uint256,address)"),
    "v2 Mint": _topic("Mint(address,uint256,uint256)"),
    "v2 Burn": _topic("Burn(address,uint256,uint256,address)"),
    "v3 Swap": _topic("Swap(address,address,int256,int256,uint160,uint128,int24)"),
    "v3 Mint": _topic("Mint(address,address,int24,int24,uint128,uint256,uint256)"),
    "v3 Burn": _topic("Burn(address,int24,int24,uint128,uint256,uint256)"),
}


def test_missing_anvil_names_the_install_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARENA_ANVIL", str(tmp_path / "no-anvil"))
    with pytest.raises(AnvilNotFoundError, match=r"bash scripts/test\.sh"):
        AnvilNode().start()


def test_a_node_that_exits_at_startup_fails_fast_with_its_output() -> None:
    node = AnvilNode(AnvilConfig(extra_args=("--no-such-flag",), startup_timeout_s=20))
    with pytest.raises(AnvilStartError, match="no-such-flag") as info:
        node.start()
    assert info.value.output_tail
    assert not node.running


def test_node_mines_only_on_demand_and_stops() -> None:
    with AnvilNode(AnvilConfig(chain_id=4242)) as node:
        w3 = node.web3()
        assert int(rpc_call(w3, "eth_chainId", []), 16) == 4242
        account = rpc_call(w3, "eth_accounts", [])[0]
        tx = TxRequest(sender=account, to=account, data=b"", gas=21_000, value=1)
        rpc_call(w3, "eth_sendTransaction", [tx.to_json()])
        assert block_number(w3) == 0
        assert mine(w3) == 1
        assert len(block_header(w3, 1)["transactions"]) == 1
        # Block timestamps follow the configured genesis and interval, not the wall clock.
        assert int(block_header(w3, 1)["timestamp"], 16) == 1_700_000_000 + 12
        assert node.running
    assert not node.running


async def test_async_context_manager_starts_two_nodes_on_distinct_ports() -> None:
    async with AnvilNode() as first, AnvilNode() as second:
        assert first.port != second.port
        assert int(rpc_call(second.web3(), "eth_chainId", []), 16) == 31337
    assert not first.running
    assert not second.running


def test_tokens_have_the_spec_decimals(devchain: DevChain) -> None:
    w3, dep = devchain.w3, devchain.deployment
    assert {t.symbol for t in dep.tokens} == {"WETH", "USDC", "DAI", "WBTC"}
    for token in dep.tokens:
        (decimals,) = call(w3, token.address, "ERC20", "decimals")
        assert decimals == token.decimals == DEFAULT_SPEC.token(token.symbol).decimals
    assert dep.weth == dep.token("WETH").address
    code = load_artifact("ERC20").deployed_bytecode
    assert code[decimals_operand_offset(code)] == 18


def test_pools_are_real_and_priced_as_specified(devchain: DevChain) -> None:
    w3, dep = devchain.w3, devchain.deployment
    assert len(dep.pools_of("v2")) == 4
    assert {(p.fee, p.tick_spacing) for p in dep.pools_of("v3")} == {
        (500, 10),
        (3000, 60),
        (10000, 200),
    }
    for pool in dep.pools:
        artifact: ArtifactName = "UniswapV2Pair" if pool.protocol == "v2" else "UniswapV3Pool"
        assert call(w3, pool.address, artifact, "token0")[0] == pool.token0.address.lower()
        assert call(w3, pool.address, artifact, "token1")[0] == pool.token1.address.lower()
        assert int(pool.token0.address, 16) < int(pool.token1.address, 16)
    for pool in dep.pools_of("v3"):
        assert call(w3, pool.address, "UniswapV3Pool", "fee")[0] == pool.fee
        assert call(w3, pool.address, "UniswapV3Pool", "tickSpacing")[0] == pool.tick_spacing
        assert call(w3, pool.address, "UniswapV3Pool", "liquidity")[0] > 0
        sqrt_price = call(w3, pool.address, "UniswapV3Pool", "slot0")[0]
        spec_price = raw_price(
            DEFAULT_SPEC.token(pool.token0.symbol), DEFAULT_SPEC.token(pool.token1.symbol)
        )
        ratio = Fraction(sqrt_price**2, 2**192) / spec_price
        assert Fraction(99, 100) < ratio < Fraction(101, 100), pool.label


def _quote(devchain: DevChain, token_in: str, token_out: str, fee: int, amount: int) -> int:
    dep = devchain.deployment
    params = (token_in, token_out, fee, dep.trader, 2**63, amount, 0, 0)
    data = encode_call("SwapRouter", "exactInputSingle", params)
    raw = rpc_call(
        devchain.w3,
        "eth_call",
        [{"from": dep.trader, "to": dep.swap_router, "data": "0x" + data.hex()}, "latest"],
    )
    return int(decode_result("SwapRouter", "exactInputSingle", bytes.fromhex(raw[2:]))[0])


def test_a_two_hop_cycle_is_profitable_at_deployment(clean_devchain: DevChain) -> None:
    dep = clean_devchain.deployment
    weth, usdc = dep.token("WETH").address, dep.token("USDC").address
    amount_in = 10**18
    usdc_out = _quote(clean_devchain, weth, usdc, 500, amount_in)
    weth_back = _quote(clean_devchain, usdc, weth, 3000, usdc_out)
    assert weth_back > amount_in
    # Three tokens with pools on every edge: triangular cycles exist too.
    edges = {frozenset((p.token0.symbol, p.token1.symbol)) for p in dep.pools}
    assert {
        frozenset(("WETH", "USDC")),
        frozenset(("USDC", "DAI")),
        frozenset(("WETH", "DAI")),
    } <= edges


def _pool_logs(devchain: DevChain, first: int, last: int) -> list[dict[str, Any]]:
    addresses = [p.address for p in devchain.deployment.pools]
    return list(
        rpc_call(
            devchain.w3,
            "eth_getLogs",
            [{"fromBlock": hex(first), "toBlock": hex(last), "address": addresses}],
        )
    )


def test_traffic_emits_every_pool_event_and_crosses_ranges(clean_devchain: DevChain) -> None:
    w3, dep = clean_devchain.w3, clean_devchain.deployment
    generator = TrafficGenerator(w3, dep, seed=5)
    start = block_number(w3)
    ticks_seen = {
        p.address: [t] for p, t in ((v.pool, v.tick) for v in generator.load_view().v3.values())
    }
    blocks = []
    for _ in range(25):
        blocks.append(generator.generate_block())
        for view in generator.load_view().v3.values():
            ticks_seen[view.pool.address].append(view.tick)
    assert [b.number for b in blocks] == list(range(start + 1, start + 26))
    assert sum(len(b.labels) for b in blocks) > 50
    logs = _pool_logs(clean_devchain, start + 1, blocks[-1].number)
    topics = {str(log["topics"][0]) for log in logs}
    missing = {name for name, topic in EVENT_TOPICS.items() if topic not in topics}
    assert not missing
    assert any("limited" in label for b in blocks for label in b.labels)
    # Swaps move prices across initialized ticks (range boundaries).
    final = hydrate_pools(w3, [(p.address, "v3") for p in dep.pools_of("v3")], blocks[-1].number)
    crossings = 0
    for snapshot in final:
        path = ticks_seen[snapshot.address]
        assert isinstance(snapshot, V3PoolSnapshot)
        for a, b in itertools.pairwise(path):
            crossings += sum(min(a, b) < t <= max(a, b) for t in snapshot.ticks)
    assert crossings > 0


def _fresh_run(seed: int, blocks: int) -> list[BlockTraffic]:
    with AnvilNode() as node:
        w3 = node.web3()
        return TrafficGenerator(w3, deploy(w3), seed=seed).run(blocks)


def test_traffic_is_deterministic_for_a_seed(clean_devchain: DevChain) -> None:
    first, again = _fresh_run(9, 6), _fresh_run(9, 6)
    assert [b.labels for b in first] == [b.labels for b in again]
    # Fresh nodes give identical block hashes too (after evm_revert they differ: anvil
    # does not rewind its base fee).
    assert [b.hash for b in first] == [b.hash for b in again]
    rewound = TrafficGenerator(clean_devchain.w3, clean_devchain.deployment, seed=9).run(6)
    assert [b.labels for b in rewound] == [b.labels for b in first]
    different = TrafficGenerator(clean_devchain.w3, clean_devchain.deployment, seed=10).run(6)
    assert [b.labels for b in different] != [b.labels for b in first]


def _assert_linked(devchain: DevChain, first: int, last: int) -> None:
    for number in range(first, last + 1):
        header = block_header(devchain.w3, number)
        assert header["parentHash"] == block_header(devchain.w3, number - 1)["hash"]


def test_reorg_replaces_hashes_and_keeps_the_chain_linked(devchain: DevChain) -> None:
    # No empty blocks: once the base fee sits at its floor (earlier tests' blocks lower
    # it, and no rewind restores it), an empty block replacing an empty one at the same
    # height and time is the same block, hash included.
    no_empty = TrafficConfig(empty_block_probability=0.0)
    generator = TrafficGenerator(devchain.w3, devchain.deployment, seed=3, config=no_empty)
    generator.run(5)
    tip = block_number(devchain.w3)
    fork_hash = block_header(devchain.w3, tip - 3)["hash"]
    outcome = reorg_with_traffic(generator, 3)
    assert outcome.fork_block == tip - 3
    assert outcome.tip == tip
    assert len(outcome.old_hashes) == len(outcome.new_hashes) == 3
    assert all(old != new for old, new in zip(outcome.old_hashes, outcome.new_hashes, strict=True))
    assert block_header(devchain.w3, tip - 3)["hash"] == fork_hash
    assert canonical_hashes(devchain.w3, tip - 2, tip) == outcome.new_hashes
    _assert_linked(devchain, tip - 2, tip)
    # The chain goes on from the new tip.
    after = generator.generate_block()
    assert block_header(devchain.w3, after.number)["parentHash"] == outcome.new_hashes[-1]


def test_reorg_with_explicit_replacements_places_them_by_offset(devchain: DevChain) -> None:
    w3, dep = devchain.w3, devchain.deployment
    TrafficGenerator(w3, dep, seed=4).run(2)
    token = dep.token("DAI").address
    txs = [
        (
            TxRequest(
                sender=dep.deployer,
                to=token,
                gas=100_000,
                label=f"offset {offset}",
                data=encode_call("ERC20", "transfer", dep.trader, offset + 1),
            ),
            offset,
        )
        for offset in (0, 1, 1)
    ]
    outcome = reorg(w3, 2, txs, floor=dep.block)
    counts = [len(block_header(w3, outcome.fork_block + i)["transactions"]) for i in (1, 2)]
    assert counts == [1, 2]


def test_rollback_drops_blocks_and_new_blocks_differ(devchain: DevChain) -> None:
    w3 = devchain.w3
    no_empty = TrafficConfig(empty_block_probability=0.0)  # see the reorg test above
    generator = TrafficGenerator(w3, devchain.deployment, seed=8, config=no_empty)
    generator.run(3)
    tip = block_number(w3)
    outcome = rollback(w3, 2, devchain.deployment.block)
    assert block_number(w3) == outcome.tip == tip - 2
    assert rpc_call(w3, "eth_getBlockByNumber", [hex(tip), False]) is None
    replacement = generator.generate_block()
    assert replacement.number == tip - 1
    assert replacement.hash != outcome.old_hashes[0]
    _assert_linked(devchain, tip - 1, tip - 1)


def test_reorg_depth_is_bounded_by_the_deployment(devchain: DevChain) -> None:
    available = block_number(devchain.w3) - devchain.deployment.block
    with pytest.raises(ReorgDepthError):
        rollback(devchain.w3, available + 1, devchain.deployment.block)
    with pytest.raises(ReorgDepthError):
        reorg(devchain.w3, 0)


def test_log_filters_report_no_removed_logs_after_a_reorg(devchain: DevChain) -> None:
    # Anvil quirk the chain follower must live with: reorg detection needs block hashes.
    w3, dep = devchain.w3, devchain.deployment
    generator = TrafficGenerator(w3, dep, seed=12)
    log_filter = rpc_call(w3, "eth_newFilter", [{"address": [p.address for p in dep.pools]}])
    generator.run(3)
    before = rpc_call(w3, "eth_getFilterChanges", [log_filter])
    reorg_with_traffic(generator, 2)
    after = rpc_call(w3, "eth_getFilterChanges", [log_filter])
    assert before
    assert not any(log.get("removed") for log in after)


def test_whitelist_file_parses_as_a_full_document(devchain: DevChain, tmp_path: Path) -> None:
    dep = devchain.deployment
    path = write_whitelist(dep, tmp_path / "wl.json", chain="ethereum", snapshot_id=1)
    raw = json.loads(path.read_text())
    assert raw["chain"] == "ethereum"
    assert raw["snapshot_id"] == 1
    assert all(p["address"] == p["address"].lower() for p in raw["pools"])
    whitelist = load_whitelist_file(path)
    assert whitelist.skipped == 0
    assert [("0x" + p.address.hex()) for p in whitelist.pools] == [
        p.address.lower() for p in dep.pools
    ]
    for parsed, pool in zip(whitelist.pools, dep.pools, strict=True):
        assert parsed.token0.decimals == pool.token0.decimals
        assert parsed.tick_spacing == pool.tick_spacing
        assert parsed.fee == pool.fee


def test_scenario_mixes_reorgs_into_a_linked_chain(devchain: DevChain) -> None:
    generator = TrafficGenerator(devchain.w3, devchain.deployment, seed=21)
    start = block_number(devchain.w3)
    config = ScenarioConfig(blocks=12, reorg_probability=0.4, rollback_probability=0.2)
    events = run_scenario(generator, config)
    kinds = {e.kind for e in events}
    assert {"block", "reorg", "rollback"} <= kinds
    _assert_linked(devchain, start, block_number(devchain.w3))


def test_explicit_blocks_fail_loudly_on_a_revert(devchain: DevChain) -> None:
    dep = devchain.deployment
    pair = dep.pools_of("v2")[0]
    # A swap without payment violates the pair's K check and must raise.
    bad = TxRequest(
        sender=dep.trader,
        to=pair.address,
        gas=300_000,
        label="unpaid swap",
        data=encode_call("UniswapV2Pair", "swap", 0, 1000, dep.trader, b""),
    )
    with pytest.raises(Exception, match="unpaid swap"):
        execute_block(devchain.w3, [bad])


def test_cli_deploys_writes_the_whitelist_and_runs(tmp_path: Path) -> None:
    target = tmp_path / "whitelist.json"
    code = devchain_main(
        ["--blocks", "4", "--seed", "2", "--reorg-probability", "0.5", "--whitelist", str(target)]
    )
    assert code == 0
    assert len(load_whitelist_file(target).pools) == len(DEFAULT_SPEC.pools)
