"""Soak the whole pipeline on a dev chain for thousands of blocks and print a result table.

anvil (real Uniswap V2/V3 contracts, seeded traffic, reorgs of depth 1..max with
replacement traffic, rollbacks) → chain follower → Unix socket → arena, the arena's
state compared with eth_call after every settled point (`--check-every N` to thin it
out; reorgs and the end are always checked). Exit status 0 only with zero mismatches,
zero divergences, no stale pool and no loss.

    .venv/bin/python scripts/soak.py --blocks 2000 [--seed 7] [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import tempfile

from devchain import AnvilNode, TrafficGenerator, deploy
from devchain.chain_proof import ChainProof, ProofConfig, ProofResult, plan_steps
from devchain.whitelist_file import whitelist_json
from exex_bridge.whitelist import parse_pools_document

PROGRESS_EVERY = 100


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--blocks", type=int, default=2000, help="traffic blocks (reorgs add more)")
    p.add_argument("--reorgs", type=int, help="reorgs (default: one per 10 blocks)")
    p.add_argument("--rollbacks", type=int, help="rollbacks (default: one per 50 blocks)")
    p.add_argument("--max-depth", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--check-every", type=int, default=1, metavar="N")
    p.add_argument("--no-ticks", action="store_true", help="compare slot0/reserves only")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    return p


async def _soak(config: ProofConfig) -> ProofResult:
    with AnvilNode() as node:
        w3 = node.web3()
        deployment = deploy(w3)
        whitelist = parse_pools_document(whitelist_json(deployment))
        generator = TrafficGenerator(w3, deployment, config.seed)
        with tempfile.TemporaryDirectory(prefix="soak") as tmp:
            sock = os.path.join(tmp, "exex.sock")
            async with ChainProof(generator, whitelist.pools, sock, config) as proof:
                steps = plan_steps(config)
                for i, step in enumerate(steps, 1):
                    await proof.step(step)
                    if i % PROGRESS_EVERY == 0 or i == len(steps):
                        r = proof.result
                        print(
                            f"soak: step {i}/{len(steps)}, tip {proof.engine.tip_block}, "
                            f"{r.checks} checks, {r.mismatch_count} mismatches",
                            file=sys.stderr,
                        )
                return proof.finish()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = ProofConfig(
        blocks=args.blocks,
        reorgs=args.blocks // 10 if args.reorgs is None else args.reorgs,
        rollbacks=args.blocks // 50 if args.rollbacks is None else args.rollbacks,
        max_depth=args.max_depth,
        seed=args.seed,
        check_every=args.check_every,
        check_ticks=not args.no_ticks,
    )
    result = asyncio.run(_soak(config))
    table = result.table()
    if args.markdown:
        table = "| measure | value |\n|---|---|\n" + table
    print(
        f"soak: seed {config.seed}, {config.blocks} traffic blocks, {config.reorgs} reorgs, "
        f"{config.rollbacks} rollbacks, depth 1..{config.max_depth}, check every "
        f"{config.check_every}, ticks {'on' if config.check_ticks else 'off'}; "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(table)
    for found in result.mismatches[:20]:
        print(found.line(), file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
