"""`python -m devchain`: anvil + Uniswap deployment + seeded traffic with reorgs.

Progress goes to stderr; the whitelist `.full` document is written where --whitelist says.
With --hold the node stays up (its URL on stderr) until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from devchain.anvil import AnvilConfig, AnvilNode
from devchain.deploy import deploy
from devchain.errors import DevchainError
from devchain.scenario import ChainEvent, ScenarioConfig, run_scenario
from devchain.traffic import TrafficGenerator
from devchain.whitelist_file import write_whitelist


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devchain", description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--blocks", type=int, default=50)
    p.add_argument("--reorg-probability", type=float, default=0.08)
    p.add_argument("--rollback-probability", type=float, default=0.02)
    p.add_argument("--max-reorg-depth", type=int, default=3)
    p.add_argument("--whitelist", default="devchain-whitelist.json")
    p.add_argument("--chain", default="ethereum")
    p.add_argument("--hold", action="store_true", help="keep anvil running until Ctrl-C")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _report(event: ChainEvent) -> None:
    if event.block is not None:
        b = event.block
        print(f"block {b.number} {b.hash[:18]} txs={len(b.labels)}", file=sys.stderr)
    elif event.reorg is not None:
        r = event.reorg
        print(f"{event.kind} depth={r.depth} fork={r.fork_block} tip={r.tip}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        with AnvilNode(AnvilConfig()) as node:
            w3 = node.web3()
            deployment = deploy(w3)
            path = write_whitelist(deployment, args.whitelist, chain=args.chain)
            print(
                f"anvil {node.url}; {len(deployment.pools)} pools; whitelist {path}",
                file=sys.stderr,
            )
            config = ScenarioConfig(
                blocks=args.blocks,
                reorg_probability=args.reorg_probability,
                rollback_probability=args.rollback_probability,
                max_reorg_depth=args.max_reorg_depth,
            )
            events = run_scenario(TrafficGenerator(w3, deployment, args.seed), config, _report)
            reorgs = sum(e.kind != "block" for e in events)
            print(f"done: {args.blocks} blocks, {reorgs} reorgs/rollbacks", file=sys.stderr)
            if args.hold:
                print(f"holding {node.url}; Ctrl-C to stop", file=sys.stderr)
                threading.Event().wait()
    except DevchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
