"""The `arena` command line: one module per subcommand under `sidecar/commands/`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Protocol

from arena.errors import ArenaError
from exex_bridge.errors import BridgeError

# Subcommand name -> module in sidecar.commands. Each module has `register` and `execute`.
SUBCOMMANDS: dict[str, str] = {
    "replay": "replay",
    "run": "run",
    "record": "record",
    "follow": "follow",
    "execute": "execute",
    "executor": "executor_admin",
}


class Command(Protocol):
    HELP: str

    def register(self, parser: argparse.ArgumentParser) -> None: ...

    def execute(self, args: argparse.Namespace) -> int: ...


def _load(name: str) -> Command | None:
    try:
        module = importlib.import_module(f"sidecar.commands.{SUBCOMMANDS[name]}")
    except ModuleNotFoundError as exc:
        if exc.name == f"sidecar.commands.{SUBCOMMANDS[name]}":
            return None
        raise
    command: Command = module
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arena",
        description=(
            "Exact Uniswap V2/V3/V4 pool state beside a Reth node: consumes the Liquidity "
            "ExEx stream, survives reorgs, and re-evaluates the arbitrage cycles each block "
            "touched."
        ),
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log verbosity on stderr (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        command = _load(name)
        if command is None:
            continue
        p = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.register(p)
        p.set_defaults(_command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    command: Command = args._command
    try:
        return command.execute(args)
    except (BridgeError, ArenaError) as exc:
        print(f"arena {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
