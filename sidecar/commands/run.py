"""`arena run`: follow the ExEx socket live, keep the exact state, serve metrics.

On SIGINT/SIGTERM the open block (or reorg envelope) is given `--stop-grace` seconds to
complete; whatever is still open then is discarded, the state of the last complete block
is written to `--state-out`, and the command exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Final, final

import nats.errors

from arena.block_assembler import Settled
from arena.checkpoint import DEFAULT_KEEP
from arena.pipeline import Pipeline, PipelineConfig, open_pipeline
from arena.rpc_sync import RpcSync
from arena.state_file import write_state_file
from arena.whitelist_changes import boundary_hook
from exex_bridge.errors import WhitelistError
from exex_bridge.framing import DEFAULT_MAX_FRAME
from exex_bridge.socket_owner import SocketOwners
from exex_bridge.socket_source import DEFAULT_SOCKET_PATH, Disconnection, SocketSource
from exex_bridge.whitelist_feed import WhitelistFeed
from pathfinder.sinks import SinkError
from sidecar.commands.common import (
    MetricsServer,
    add_engine_options,
    add_metrics_options,
    add_state_options,
    default_data_dir,
    non_negative,
    positive,
    seconds,
)
from sidecar.health import Health, health_of
from sidecar.pathfinder_outputs import PathfinderOutputs, add_pathfinder_arguments

HELP = "follow the ExEx socket live: exact pool state, reorgs, Prometheus metrics"

log = logging.getLogger(__name__)

_ANY_OWNER: Final = "any"


def _owner(value: str) -> str:
    if value != _ANY_OWNER and not value.isdigit() and not value.isidentifier():
        raise argparse.ArgumentTypeError(f"not a uid or user name: {value!r}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET_PATH,
        metavar="PATH",
        help=f"ExEx socket (default {DEFAULT_SOCKET_PATH})",
    )
    add_state_options(parser, whitelist_required=True)
    parser.add_argument(
        "--state-every",
        type=non_negative,
        default=0,
        metavar="N",
        help="also write --state-out every N settled blocks (default: only at exit)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        metavar="DIR",
        help="where the spill lives by default (default %(default)s)",
    )
    add_engine_options(parser, spill_help="RocksDB spill directory (default DATA_DIR/spill)")
    _add_checkpoint_options(parser)
    parser.add_argument(
        "--socket-owner",
        type=_owner,
        action="append",
        metavar="UID|NAME|any",
        help="accepted owner of the socket (repeatable; default: you or root; any: no check)",
    )
    parser.add_argument(
        "--connect-timeout",
        type=seconds,
        metavar="SECONDS",
        help="give up if the first connection fails this long (default: retry)",
    )
    parser.add_argument(
        "--max-frame-size",
        type=positive,
        default=DEFAULT_MAX_FRAME,
        metavar="BYTES",
        help="a longer length prefix drops the connection",
    )
    parser.add_argument(
        "--stop-grace",
        type=seconds,
        default=2.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, time the open block gets to complete (default 2)",
    )
    parser.add_argument(
        "--health-interval",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="log a health line this often (default 30)",
    )
    add_metrics_options(parser)
    parser.add_argument(
        "--rpc",
        metavar="URL",
        help="node JSON-RPC: hydrate every pool at N-1 when the first block N arrives, "
        "resync after a loss, hydrate pools added mid-stream (default: none)",
    )
    parser.add_argument(
        "--whitelist-nats",
        metavar="URL",
        help="follow whitelist.pools.{chain}.full|add|remove on this NATS server; changes "
        "apply at the next block boundary (with --rpc, added pools are hydrated there)",
    )
    add_pathfinder_arguments(parser)


def _add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint-every",
        type=non_negative,
        default=0,
        metavar="N",
        help="checkpoint the whole state every N trustworthy blocks, and at a clean stop "
        "(default 0: never)",
    )
    parser.add_argument(
        "--checkpoint-path",
        type=Path,
        metavar="DIR",
        help="RocksDB checkpoint directory (default DATA_DIR/checkpoints)",
    )
    parser.add_argument(
        "--checkpoint-keep",
        type=positive,
        default=DEFAULT_KEEP,
        metavar="K",
        help=f"checkpoints retained (default {DEFAULT_KEEP})",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="start from the latest checkpoint (else from --initial-state, if given)",
    )


def _expected_owners(values: list[str] | None) -> list[int | str] | SocketOwners | None:
    if not values:
        return SocketOwners.CURRENT_USER_OR_ROOT
    if _ANY_OWNER in values:
        return None
    return list(values)


@final
class LiveRunner:
    """The consumer, the health ticker and the graceful stop around one pipeline.

    `args` are this command's parsed options. `run()` stops on SIGINT/SIGTERM, or when
    the `stop` event it is given is set (then no signal handler is installed). The runner
    subscribes to the pipeline's settled points: each one dates the last block and counts
    towards `--state-every`.
    """

    def __init__(
        self, pipeline: Pipeline, args: argparse.Namespace, feed: WhitelistFeed | None = None
    ) -> None:
        self.pipeline = pipeline
        self.args = args
        self.feed = feed
        self.source = SocketSource(
            args.socket,
            max_frame=args.max_frame_size,
            expected_owners=_expected_owners(args.socket_owner),
            connect_timeout=args.connect_timeout,
            on_disconnect=self._on_disconnect,
        )
        self.stopping = False
        self.at_boundary = asyncio.Event()
        self.last_block_at: float | None = None
        self.settled_since_write = 0
        pipeline.subscribe_settled(self._on_settled)

    def health(self) -> Health:
        return health_of(
            self.pipeline.engine,
            connection=self.source.state,
            last_block_at=self.last_block_at,
            now=time.monotonic(),
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        signals: tuple[signal.Signals, ...] = ()
        if stop is None:
            stop = asyncio.Event()
            signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        if self.feed is not None:
            try:
                await self.feed.start()
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                for sig in signals:
                    loop.remove_signal_handler(sig)
                raise WhitelistError(self.feed.url, f"cannot subscribe: {exc!r}") from exc
        consumer = asyncio.create_task(self._consume())
        ticker = asyncio.create_task(self._tick())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not consumer.done():
                await self._stop(consumer)
            if not consumer.cancelled():
                consumer.result()  # a fatal source error (ownership, connect timeout) surfaces
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            for task in (consumer, ticker, stopper):
                task.cancel()
            await asyncio.gather(consumer, ticker, stopper, return_exceptions=True)
            await self.source.close()
            if self.feed is not None:
                await self.feed.close()

    async def _stop(self, consumer: asyncio.Task[None]) -> None:
        """Let the open block or envelope complete within the grace period, then stop."""
        self.stopping = True
        pipeline = self.pipeline
        if not pipeline.at_boundary:
            log.info(
                "stopping: giving the open block up to %.1f s to complete", self.args.stop_grace
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.at_boundary.wait(), self.args.stop_grace)
        await self.source.close()
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        assembler = pipeline.assembler
        if assembler.phase.in_reorg:
            # Half a reorg applied is no chain's state.
            log.warning("stopped inside a reorg envelope: the state is marked unsynced")
            pipeline.on_connection_lost()
        elif assembler.open_block is not None:
            log.warning(
                "stopped inside block %d: discarded, the state stays at block %s",
                assembler.open_block.begin.block_number,
                pipeline.engine.tip_block,
            )

    async def _consume(self) -> None:
        pipeline = self.pipeline
        async with contextlib.aclosing(self.source.frames()) as frames:
            async for payload in frames:
                pipeline.feed_frame(payload)
                if self.stopping and pipeline.at_boundary:
                    self.at_boundary.set()
                    return

    def _on_settled(self, settled: Settled) -> None:
        self.last_block_at = time.monotonic()
        every = self.args.state_every
        if every and self.args.state_out is not None:
            self.settled_since_write += 1
            if self.settled_since_write >= every:
                self.settled_since_write = 0
                write_state_file(self.pipeline.engine, self.args.state_out)

    def _on_disconnect(self, event: Disconnection) -> None:
        log.warning(
            "connection %d lost (%s) after %d frames: state unsynced until resync",
            event.generation,
            event.reason,
            event.frames,
        )
        self.pipeline.on_connection_lost()
        if self.stopping:
            self.at_boundary.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.args.health_interval)
            log.info("health: %s", self.health().line())


def _spill_path(args: argparse.Namespace) -> Path | None:
    if args.spill_depth == 0:
        return None
    if args.spill_path is not None:
        return Path(args.spill_path)
    path = Path(args.data_dir) / "spill"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    checkpoint_path = None
    if args.checkpoint_every or args.resume:
        checkpoint_path = args.checkpoint_path or Path(args.data_dir) / "checkpoints"
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    return PipelineConfig(
        whitelist=args.whitelist,
        initial_state=args.initial_state,
        spill_path=_spill_path(args),
        spill_depth=args.spill_depth,
        ring_depth=args.ring_depth,
        checkpoint_path=checkpoint_path,
        checkpoint_every=args.checkpoint_every,
        checkpoint_keep=args.checkpoint_keep,
        resume=args.resume,
    )


def execute(args: argparse.Namespace) -> int:
    with open_pipeline(pipeline_config(args)) as pipeline:
        if pipeline.resumed is not None:
            print(f"arena run: resumed at block {pipeline.resumed.block}", file=sys.stderr)
        server = None
        if args.metrics_port is not None:
            server = MetricsServer.start(
                pipeline.metrics.registry, args.metrics_addr, args.metrics_port
            )
        feed = None
        if args.whitelist_nats is not None:
            feed = WhitelistFeed(args.whitelist_nats, args.chain)
            pipeline.subscribe_block_start(boundary_hook(pipeline.engine, pipeline.assembler, feed))
        if args.rpc is not None:  # after the whitelist: added pools are hydrated at once
            pipeline.subscribe_block_start(RpcSync(pipeline.engine, args.rpc).before_block)
        try:
            outputs = PathfinderOutputs.open(pipeline.engine, args)
        except SinkError as exc:
            if server is not None:
                server.stop()
            print(f"arena run: {exc}", file=sys.stderr)
            return 2
        pipeline.subscribe_settled(outputs.on_settled)  # before the runner's state writer
        live = LiveRunner(pipeline, args, feed)
        try:
            asyncio.run(live.run())
        finally:
            outputs.close()  # publishes what is queued (bounded by a timeout)
            if server is not None:
                server.stop()
        if args.checkpoint_every:
            pipeline.checkpoint_now()
        if args.state_out is not None:
            write_state_file(pipeline.engine, args.state_out)
            log.info("state at block %s written to %s", pipeline.engine.tip_block, args.state_out)
        log.info(
            "stopped: %s; %d frames, %d blocks applied, %d reverted",
            live.health().line(),
            pipeline.frames,
            len(pipeline.apply_latency),
            len(pipeline.revert_latency),
        )
    return 0
