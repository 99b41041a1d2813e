"""`arena follow`: be the ExEx for a node without it — serve its pool updates on a socket.

Polls the node's JSON-RPC for new blocks, decodes the whitelisted V2/V3 pools' events as
the Liquidity ExEx does, and serves the socket protocol (v2) on a Unix socket that
`arena run` (or any ExEx client) reads. Reorgs and rollbacks are found by block hash and
sent as the producer's envelopes. `--record` also writes every frame to a recording that
`arena replay` reads. SIGINT/SIGTERM stop it between two polls: never inside a block or
an envelope.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.producers.chain_follower import (
    DEFAULT_KEEP_BLOCKS,
    ChainFollower,
    EpilogueScope,
    PollReport,
)
from exex_bridge.producers.log_decoding import MAINNET_BALANCER_VAULT
from exex_bridge.recording import RecordingMetadata, RecordingWriter
from exex_bridge.redaction import shown_url
from exex_bridge.rpc import BlockingRpc, EndpointLimits, RpcClient, endpoints_from
from exex_bridge.socket_source import DEFAULT_SOCKET_PATH
from exex_bridge.whitelist import Whitelist, load_whitelist_file
from sidecar.commands.common import flag_type
from sidecar.setting_values import POSITIVE_INT, SECONDS
from sidecar.settings import ArenaSettings

HELP = "follow a node's JSON-RPC and serve its pool updates on the ExEx socket (no ExEx needed)"

log = logging.getLogger(__name__)

_FLUSH_TIMEOUT_S: Final = 2.0


def _keep(value: str) -> int:
    n = flag_type(POSITIVE_INT)(value)
    if n < 2:
        raise argparse.ArgumentTypeError("keeps at least 2 blocks (a tip and its parent)")
    return n


def _rpc_urls(value: str) -> str:
    try:
        endpoints_from(value, EndpointLimits())
    except ValueError as exc:  # the message shows no path, user or password
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _address(value: str) -> bytes:
    text = value.removeprefix("0x")
    if len(text) != 40 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 20-byte hex address")
    return bytes.fromhex(text)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rpc",
        required=True,
        type=_rpc_urls,
        metavar="URL",
        help="node JSON-RPC: one URL or several separated by commas (http(s):// or "
        "ws(s)://); reads go to the fastest healthy one and are retried on the next",
    )
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET_PATH,
        metavar="PATH",
        help=f"Unix socket to serve (default {DEFAULT_SOCKET_PATH})",
    )
    parser.add_argument(
        "--whitelist",
        type=Path,
        required=True,
        metavar="W.json",
        help="pools to follow: a whitelist.pools.{chain}.full JSON document (Uniswap V2/V3 "
        "and Balancer V2 weighted pools)",
    )
    parser.add_argument(
        "--from-block",
        type=flag_type(POSITIVE_INT),
        metavar="N",
        help="first block to send (default: the next new block)",
    )
    parser.add_argument(
        "--poll-interval",
        type=flag_type(SECONDS),
        default=1.0,
        metavar="S",
        help="seconds between polls of the node (default 1)",
    )
    parser.add_argument(
        "--record", type=Path, metavar="FILE", help="also record every frame sent (new file)"
    )
    parser.add_argument(
        "--keep-blocks",
        type=_keep,
        default=DEFAULT_KEEP_BLOCKS,
        metavar="N",
        help="recent blocks kept to revert in a reorg; deeper reorgs skip a stream_seq so "
        f"that consumers resync (default {DEFAULT_KEEP_BLOCKS})",
    )
    parser.add_argument(
        "--epilogue-scope",
        choices=["producer", "touched"],
        default="producer",
        help="reorg finals for the producer's pools (reverted V2 events, reverted V3 swaps) "
        "or for every pool the reverted and new blocks touched (default producer)",
    )
    parser.add_argument(
        "--balancer-vault",
        type=_address,
        default=MAINNET_BALANCER_VAULT,
        metavar="0xADDRESS",
        help="the Balancer V2 Vault whose Swap/PoolBalanceChanged events update Balancer "
        "pools (default mainnet's 0xBA12222222228d8Ba445958a75a0704d566BF2C8)",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FollowRequest:
    """What `arena follow` was asked to do (its own flags; it reads no settings file)."""

    rpc: str
    socket: str
    whitelist: Path
    from_block: int | None
    poll_interval: float
    record: Path | None
    keep_blocks: int
    epilogue_scope: EpilogueScope
    balancer_vault: bytes = MAINNET_BALANCER_VAULT

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FollowRequest:
        return cls(
            rpc=args.rpc,
            socket=args.socket,
            whitelist=args.whitelist,
            from_block=args.from_block,
            poll_interval=args.poll_interval,
            record=args.record,
            keep_blocks=args.keep_blocks,
            epilogue_scope=args.epilogue_scope,
            balancer_vault=args.balancer_vault,
        )


def _progress(report: PollReport) -> None:
    if report.deep_reorg:
        print(
            "arena follow: reorg deeper than the kept blocks: stream_seq gap sent", file=sys.stderr
        )
    if report.reorg is not None:
        r = report.reorg
        kind = "reorg" if r.new_blocks else "revert"
        print(
            f"arena follow: {kind} at fork {r.fork_block}: {len(r.old_blocks)} blocks "
            f"reverted, {len(r.new_blocks)} new, {r.epilogues} finals, tip {r.final_tip}",
            file=sys.stderr,
        )
    if report.blocks:
        span = (
            f"{report.blocks[0]}"
            if len(report.blocks) == 1
            else (f"{report.blocks[0]}..{report.blocks[-1]}")
        )
        print(
            f"arena follow: block {span}: {report.updates} updates, {report.frames} frames",
            file=sys.stderr,
        )


async def _follow(
    request: FollowRequest, whitelist: Whitelist, recorder: RecordingWriter | None
) -> ChainFollower:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_report(report: PollReport) -> None:
        _progress(report)
        if recorder is not None:
            recorder.flush()

    client = RpcClient.from_urls(
        request.rpc, client="follow"
    )  # reads retried over every endpoint given
    try:
        async with client, FrameBroadcastServer(request.socket) as server:
            follower = ChainFollower(
                BlockingRpc(client, loop),
                whitelist,
                server,
                start_block=request.from_block,
                poll_interval=request.poll_interval,
                keep_blocks=request.keep_blocks,
                epilogue_scope=request.epilogue_scope,
                balancer_vault=request.balancer_vault,
                on_frame=None if recorder is None else recorder.write_frame,
            )
            print(
                f"arena follow: serving {request.socket} from {shown_url(request.rpc)} "
                f"({len(follower.tracked)} pools)",
                file=sys.stderr,
            )
            await follower.run(stop, on_report)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.flush(), _FLUSH_TIMEOUT_S)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return follower


def execute(args: argparse.Namespace, settings: ArenaSettings) -> int:
    """Reads its own flags; of the settings only the log level (applied by the CLI)."""
    request = FollowRequest.from_args(args)
    whitelist = load_whitelist_file(request.whitelist)
    recorder = None
    if request.record is not None:
        rpc = shown_url(request.rpc)  # the recording must not keep an API key or password
        notes = {"rpc": rpc, "whitelist": str(request.whitelist)}
        try:
            recorder = RecordingWriter(
                request.record, RecordingMetadata.new(f"follow:{rpc}", notes)
            )
        except OSError as exc:
            print(f"arena follow: cannot create {request.record}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        follower = asyncio.run(_follow(request, whitelist, recorder))
    finally:
        if recorder is not None:
            recorder.close()
    s = follower.stats
    print(
        f"arena follow: stopped at block {s.tip}: {s.blocks} blocks, {s.reorgs} reorgs, "
        f"{s.reverts} reverts, {s.updates} updates, {s.frames} frames, "
        f"{s.rpc_errors} node errors",
        file=sys.stderr,
    )
    return 0
