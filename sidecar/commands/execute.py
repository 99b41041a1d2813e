"""`arena execute`: act on opportunities with the executor contract — dry run by default.

Reads opportunities from a JSONL file being appended to (followed like `tail -f`) or from
NATS (`nats://HOST:PORT`, subject `arena.{chain}.opportunities`), picks per block the
non-conflicting cycles with the best net profit, builds each one's transaction,
simulates it against the latest state and journals the attempt. Only with `--live` is
anything signed *and sent*; then each receipt is awaited and its outcome journaled.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from executor.errors import ExecutorError
from executor.feeds import OpportunityFeed, open_feed
from executor.keys import KEY_ENV_VAR
from executor.session import OpportunityExecutor
from executor.settings import GWEI, ExecutorSettings
from exex_bridge.whitelist import load_whitelist_file
from sidecar.commands.common import flag_type
from sidecar.commands.executor_options import add_key_arguments, address, token_cap
from sidecar.setting_values import NON_NEGATIVE_INT, POSITIVE_INT, SECONDS
from sidecar.settings import ArenaSettings

HELP = "simulate (default) or send (--live) the opportunities' transactions via the executor"

DESCRIPTION = f"""\
Act on opportunities with the deployed ArenaExecutor contract.

DRY RUN BY DEFAULT: without --live every chosen opportunity is built, simulated
against the node's latest state, signed and journaled as `simulated`; nothing is sent
and the sender's nonce does not move.

With --live, transactions are SENT and cost real gas. Risks, plainly:
  * a transaction that reverts on chain (the state moved between simulation and
    inclusion, a competitor was first) still pays its gas; the contract's profit guard
    then reverts it, so the loss is the gas, not the tokens;
  * a public mempool shows the transaction to everyone: it can be front-run or
    sandwiched until it is included; use a private relay for real money;
  * the sending key pays all gas: fund it with only what you are ready to lose, and
    keep the contract's profits withdrawn;
  * a wrong --whitelist (a pool's kind) or a wrong --executor sends transactions that
    revert.

The key comes from --key-file (hex, or a keystore JSON with --password-file) or the
environment variable {KEY_ENV_VAR}; never from a command-line value. It is never
logged or journaled.
"""

log = logging.getLogger(__name__)

_IDLE_TICK_S = 0.25


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--rpc", required=True, metavar="URL", help="node JSON-RPC (HTTP)")
    parser.add_argument(
        "--executor", required=True, type=address, metavar="0x…", help="the contract's address"
    )
    add_key_arguments(parser)
    parser.add_argument(
        "--opportunities",
        required=True,
        metavar="SRC",
        help="a JSONL file (followed as it grows) or nats://HOST:PORT",
    )
    parser.add_argument(
        "--journal", required=True, type=Path, metavar="J.jsonl", help="attempt journal"
    )
    parser.add_argument(
        "--whitelist", required=True, type=Path, metavar="W.json", help="pools and their kinds"
    )
    parser.add_argument(
        "--live", action="store_true", help="SEND the transactions (default: dry run)"
    )
    parser.add_argument("--chain", help="chain name in the NATS subject (default: whitelist's)")
    parser.add_argument(
        "--until-idle", type=flag_type(SECONDS), metavar="S", help="stop after S s idle"
    )
    parser.add_argument(
        "--max-opportunities",
        type=flag_type(POSITIVE_INT),
        metavar="N",
        help="stop after N opportunities",
    )
    parser.add_argument(
        "--priority-fee-gwei",
        type=flag_type(NON_NEGATIVE_INT),
        default=1,
        metavar="G",
        help="default 1",
    )
    parser.add_argument(
        "--gas-margin-percent", type=flag_type(NON_NEGATIVE_INT), default=25, metavar="P"
    )
    parser.add_argument(
        "--deadline-blocks", type=flag_type(NON_NEGATIVE_INT), default=2, metavar="N"
    )
    parser.add_argument(
        "--min-net-profit",
        type=flag_type(NON_NEGATIVE_INT),
        default=1,
        metavar="WEI",
        help="after gas",
    )
    parser.add_argument(
        "--max-amount-in",
        type=token_cap,
        action="append",
        default=[],
        metavar="TOKEN=AMOUNT",
        help="cap on amount_in per start token (repeatable)",
    )
    parser.add_argument(
        "--coinbase-share-bps", type=flag_type(NON_NEGATIVE_INT), default=0, metavar="BPS"
    )
    parser.add_argument("--wrapped-native", type=address, metavar="0x…")
    parser.add_argument("--receipt-timeout", type=flag_type(SECONDS), default=60.0, metavar="S")


def settings_from(args: argparse.Namespace) -> ExecutorSettings:
    return ExecutorSettings(
        rpc_url=args.rpc,
        executor=args.executor,
        whitelist=str(args.whitelist),
        journal=str(args.journal),
        key_file=None if args.key_file is None else str(args.key_file),
        password_file=None if args.password_file is None else str(args.password_file),
        live=args.live,
        priority_fee_per_gas=args.priority_fee_gwei * GWEI,
        gas_margin_percent=args.gas_margin_percent,
        deadline_blocks=args.deadline_blocks,
        min_net_profit=args.min_net_profit,
        max_amount_in=dict(args.max_amount_in),
        coinbase_share_bps=args.coinbase_share_bps,
        wrapped_native=args.wrapped_native,
        receipt_timeout_s=args.receipt_timeout,
    )


async def _consume(
    feed: OpportunityFeed, executor: OpportunityExecutor, args: argparse.Namespace
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        stop.set()
        executor.stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    seen, last_activity = 0, loop.time()
    while not stop.is_set():
        batch = await feed.next_batch(_IDLE_TICK_S)
        if batch:
            if args.max_opportunities is not None:
                batch = batch[: args.max_opportunities - seen]
            await asyncio.to_thread(executor, batch)
            seen += len(batch)
            last_activity = loop.time()
            if args.max_opportunities is not None and seen >= args.max_opportunities:
                break
        elif args.until_idle is not None and loop.time() - last_activity >= args.until_idle:
            break
    return seen


async def _run(args: argparse.Namespace, settings: ExecutorSettings) -> int:
    chain = args.chain or load_whitelist_file(settings.whitelist).chain
    executor = await asyncio.to_thread(OpportunityExecutor.open, settings)
    try:
        feed = await open_feed(args.opportunities, chain)
        try:
            seen = await _consume(feed, executor, args)
        finally:
            await feed.close()
    finally:
        executor.close()
    counts = ", ".join(f"{s.value} {n}" for s, n in executor.counts.items() if n)
    mode = "live" if settings.live else "dry run"
    print(f"arena execute ({mode}): {seen} opportunities; {counts or 'no attempts'}")
    return 0


def execute(args: argparse.Namespace, settings: ArenaSettings) -> int:
    """`settings` (the arena's) are not used: the executor's come from its own flags."""
    try:
        executor_settings = settings_from(args)
        return asyncio.run(_run(args, executor_settings))
    except (ExecutorError, OSError, ValueError) as exc:
        print(f"arena execute: {exc}", file=sys.stderr)
        return 2
