"""The `arena` command line: one module per subcommand under `sidecar/commands/`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Final, Protocol

from prometheus_client import disable_created_metrics

from arena.errors import ArenaError
from exex_bridge.errors import BridgeError
from sidecar.config_file import add_setting_flags, load_settings
from sidecar.errors import SidecarError
from sidecar.settings import GLOBAL, ArenaSettings

# Subcommand name -> module in sidecar.commands. Each module has `register` and `execute`.
SUBCOMMANDS: dict[str, str] = {
    "replay": "replay",
    "run": "run",
    "record": "record",
    "relay": "relay",
    "follow": "follow",
    "execute": "execute",
    "executor": "executor_admin",
}


class Command(Protocol):
    HELP: str

    def register(self, parser: argparse.ArgumentParser) -> None: ...

    def execute(self, args: argparse.Namespace, settings: ArenaSettings) -> int: ...


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
    add_setting_flags(parser, GLOBAL)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        command = _load(name)
        if command is None:
            continue
        p = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.register(p)
        p.set_defaults(_command=command)
    return parser


# Their DEBUG lines print the endpoint URL (or its path), which can hold a password or
# an API key: they stay at INFO whatever the level.
_ENDPOINT_LOGGERS: Final = (
    "web3.providers",
    "web3._utils.http_session_manager",
    "urllib3.connectionpool",
)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in _ENDPOINT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


def main(argv: list[str] | None = None) -> int:
    # The `_created` series double the exposition and no dashboard uses them. A process
    # setting: libraries importing the floors below keep prometheus_client's default.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
    except SidecarError as exc:
        print(f"arena {args.command}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.service.log_level)
    command: Command = args._command
    try:
        return command.execute(args, settings)
    except (BridgeError, ArenaError, SidecarError) as exc:
        print(f"arena {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
