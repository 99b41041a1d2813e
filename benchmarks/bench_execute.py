"""Opportunity → signed transaction bytes (no RPC), and → transaction accepted by anvil.

.venv/bin/python -m benchmarks.bench_execute [--signs 5000] [--sends 300] [--save-baseline]

Starts anvil with the real Uniswap deployment (`devchain`), deploys ArenaExecutor, takes
the arena's opportunities at the tip (2- and 3-hop) and times:

- build + sign: packed path from the whitelist, `execute` calldata, EIP-1559 fields,
  RLP, keccak, secp256k1 signature (budget p99 ≤ 1 ms);
- the whole way to the node: latest header, pending nonce, eth_estimateGas, the exact
  eth_call simulation, signing and eth_sendRawTransaction until anvil returns the hash
  (anvil mines on demand only, and each transaction is dropped from its pool once
  accepted, so every round runs against the state of the opportunity).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from web3 import Web3

from benchmarks.common import Row, compare_baseline, percentile, print_report, save_baseline
from devchain import AnvilNode, deploy
from devchain.executor_world import arena_opportunities, deploy_executor_contract, new_funded_key
from devchain.rpc import rpc_call
from devchain.whitelist_file import write_whitelist
from executor.attempt import AttemptBuilder, ChainHead, Prepared
from executor.chain import ChainClient
from executor.route import HopKinds
from executor.settings import ExecutorSettings
from executor.transaction import sign_transaction
from exex_bridge.whitelist import load_whitelist_file
from pathfinder.opportunity import Opportunity

NAME = "bench_execute"


def time_signing(
    builder: AttemptBuilder, found: list[Opportunity], n: int
) -> tuple[list[float], list[float]]:
    """(wall-clock, this thread's CPU time) per opportunity: on a machine with more
    runnable processes than cores, the wall clock also counts time spent preempted."""
    head = ChainHead(chain_id=31337, number=100, base_fee_per_gas=7)
    wall, cpu = [], []
    for i in range(n):
        opportunity = found[i % len(found)]
        started, started_cpu = time.perf_counter(), time.thread_time()
        tx, _ = builder.build(opportunity, head, i, 300_000)
        sign_transaction(tx, builder.key)
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return wall, cpu


def time_sending(
    w3: Web3, builder: AttemptBuilder, found: list[Opportunity], n: int
) -> list[float]:
    chain, key = builder.chain, builder.key
    chain_id = chain.chain_id()
    samples = []
    for i in range(n):
        opportunity = found[i % len(found)]
        started = time.perf_counter()
        number, base_fee = chain.latest_header()
        head = ChainHead(chain_id=chain_id, number=number, base_fee_per_gas=base_fee)
        prepared = builder.prepare(opportunity, head, chain.nonce(key.address))
        if not isinstance(prepared, Prepared):
            raise RuntimeError(f"not prepared: {prepared}")
        tx_hash = chain.send_raw(sign_transaction(prepared.transaction, key).raw)
        samples.append(time.perf_counter() - started)
        # out of the pool again: the next round simulates against the same state
        rpc_call(w3, "anvil_dropTransaction", [tx_hash])
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 50) * 1e6, percentile(samples, 99) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signs", type=int, default=5000)
    parser.add_argument("--sends", type=int, default=300)
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()
    with AnvilNode() as node, tempfile.TemporaryDirectory() as tmp:
        w3 = node.web3()
        deployment = deploy(w3)
        whitelist = write_whitelist(deployment, Path(tmp) / "w.json")
        pools = load_whitelist_file(whitelist).pools
        key, _ = new_funded_key(w3)
        executor = deploy_executor_contract(w3, node.url, key)
        found = arena_opportunities(w3, pools)
        settings = ExecutorSettings(
            rpc_url=node.url, executor=executor, whitelist=str(whitelist), journal="-"
        )
        builder = AttemptBuilder(
            settings, HopKinds(pools), key, ChainClient(node.url), bytes.fromhex(executor[2:])
        )
        hops = sorted({len(o.pools) for o in found})
        sending = summary(time_sending(w3, builder, found, args.sends))
    # no node running while signing is timed: only our own work on the cores
    wall, cpu = time_signing(builder, found, args.signs)
    signing, signing_cpu = summary(wall), summary(cpu)
    scale = f"{len(found)} opportunities, {'/'.join(map(str, hops))} hops"
    rows = [
        Row(
            "opportunity → signed tx bytes (no RPC)",
            scale,
            f"p50 {signing[0]:.0f} µs, p99 {signing[1]:.0f} µs",
            "p99 ≤ 1 ms",
            signing[1] <= 1000,
        ),
        Row(
            "  the same, CPU time of the thread",
            scale,
            f"p50 {signing_cpu[0]:.0f} µs, p99 {signing_cpu[1]:.0f} µs",
            "p99 ≤ 1 ms",
            signing_cpu[1] <= 1000,
        ),
        Row(
            "opportunity → accepted by local anvil",
            f"{scale}; estimate + simulate + send",
            f"p50 {sending[0] / 1000:.2f} ms, p99 {sending[1] / 1000:.2f} ms",
            "—",
            None,
        ),
    ]
    print_report("executor: build, sign, simulate, send", rows)
    figures = {
        "sign_p50_us": signing[0],
        "sign_p99_us": signing[1],
        "sign_cpu_p99_us": signing_cpu[1],
        "send_p50_us": sending[0],
        "send_p99_us": sending[1],
    }
    for line in compare_baseline(NAME, figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"saved {save_baseline(NAME, figures)}")


if __name__ == "__main__":
    main()
