"""`arena execute`: act on opportunities with the executor contract — dry run by default.

Reads opportunities from a JSONL file being appended to (followed like `tail -f`) or from
NATS (`nats://HOST:PORT`, subject `arena.{chain}.opportunities`), picks per block the
non-conflicting cycles with the best net profit, builds each one's transaction,
simulates it against the latest state and journals the attempt. Only with `--live` is
anything signed *and sent* (`--channel`: the public mempool, or bundle relays); then it
is followed from the node's heads until confirmed, reverted, dropped or reorged, each
transition journaled.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from executor.channels.auth import AUTH_KEY_ENV_VAR
from executor.errors import ExecutorError
from executor.feeds import OpportunityFeed, open_feed
from executor.keys import KEY_ENV_VAR
from executor.session import OpportunityExecutor
from executor.settings import ExecutorSettings
from exex_bridge.whitelist import load_whitelist_file
from sidecar.commands.common import flag_type
from sidecar.config_file import add_setting_flags
from sidecar.errors import ConfigError
from sidecar.execution import executor_settings
from sidecar.setting_values import POSITIVE_INT, SECONDS
from sidecar.settings import EXECUTE, ArenaSettings

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
    sandwiched until it is included; for real money send bundles to relays
    (--channel bundle --relay URL; the requests are signed by the key in
    --relay-auth-key-file or ${AUTH_KEY_ENV_VAR}, which holds no funds);
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
    """`--config` and the settings `arena execute` shares with `[executor]` (`--rpc`,
    `--executor`, `--key-file`, `--live`, the fees and caps…), then its own flags."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_setting_flags(parser, EXECUTE)
    parser.add_argument(
        "--opportunities",
        required=True,
        metavar="SRC",
        help="a JSONL file (followed as it grows) or nats://HOST:PORT",
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
        elif executor.tracker.pending:  # inclusion from the node's heads between batches
            await asyncio.to_thread(executor.track)
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
    """The executor's settings: `[executor]`, `[rpc] url` and `[state] whitelist` from
    `--config`, the environment and the flags."""
    try:
        wanted = executor_settings(settings, EXECUTE)
        return asyncio.run(_run(args, wanted))
    except (ExecutorError, ConfigError, OSError, ValueError) as exc:
        print(f"arena execute: {exc}", file=sys.stderr)
        return 2
