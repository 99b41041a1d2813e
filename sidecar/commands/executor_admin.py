"""`arena executor deploy`: deploy the ArenaExecutor contract, owned by the sending key.

The key comes from --key-file (hex, or a keystore JSON with --password-file) or the
environment variable ARENA_EXECUTOR_KEY; only the owner can start a cycle or withdraw.
Prints the contract's address as the last line of stdout.
"""

from __future__ import annotations

import argparse
import sys

from prometheus_client import CollectorRegistry

from executor.chain_pool import ChainPool
from executor.deployment import ZERO_ADDRESS, deploy_executor
from executor.errors import ExecutorError
from executor.keys import load_signing_key
from exex_bridge.rpc import RpcMetrics
from sidecar.commands.executor_options import add_key_arguments, address
from sidecar.settings import ArenaSettings

HELP = "manage the executor contract: `arena executor deploy` deploys it"


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    deploy = actions.add_parser(
        "deploy",
        help="deploy ArenaExecutor (owner: the sending key); prints its address",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deploy.add_argument(
        "--rpc",
        required=True,
        metavar="URL[,URL…]",
        help="node JSON-RPC endpoints (http(s):// or ws(s)://, comma-separated): reads fail "
        "over between them, the deployment transaction goes to the first only",
    )
    add_key_arguments(deploy)
    deploy.add_argument(
        "--wrapped-native",
        type=address,
        metavar="0x…",
        help="the wrapped native token (WETH9-like) coinbase payments unwrap (default: none, "
        "and every payment must be 0)",
    )
    deploy.add_argument("--timeout", type=float, default=120.0, metavar="S")


def execute(args: argparse.Namespace, settings: ArenaSettings) -> int:
    try:
        key = load_signing_key(args.key_file, args.password_file)
        wrapped = bytes.fromhex(args.wrapped_native[2:]) if args.wrapped_native else ZERO_ADDRESS
        pool = ChainPool(
            args.rpc, RpcMetrics(CollectorRegistry()), health_interval_s=None, named="--rpc"
        )
        try:
            print(f"deploying ArenaExecutor from {key.address_hex}", file=sys.stderr)
            deployed = deploy_executor(pool.chain, key, wrapped, timeout_s=args.timeout)
        finally:
            pool.close()
    except ExecutorError as exc:
        print(f"arena executor: {exc}", file=sys.stderr)
        return 2
    print("0x" + deployed.hex())
    return 0
