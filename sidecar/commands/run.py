"""`arena run`: follow the ExEx socket (or the JetStream stream `arena relay` fills from it)
live, keep the exact state, serve metrics.

On SIGINT/SIGTERM the open block (or reorg envelope) is given `[service] stop_grace`
seconds to complete; whatever is still open then is discarded, the state of the last
complete block is written to `[state] state_out`, and the command exits 0 (1 when that
last write failed: the failure is logged; periodic writes that fail are logged and
counted in `arena_state_file_writes_total{outcome="failed"}` and the service keeps running).
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
from typing import Any, Final, final

import nats.errors
from prometheus_client import CollectorRegistry

from arena.background_resync import BackgroundRpcSync
from arena.block_assembler import Settled
from arena.pipeline import Pipeline, PipelineConfig, open_pipeline
from arena.state_file import StateFileError, check_state_path, write_state_file
from arena.summary import render_table
from arena.sync_state import SyncState
from arena.whitelist_changes import boundary_hook
from exex_bridge.errors import WhitelistError
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.redaction import shown_url
from exex_bridge.rpc import (
    BlockingRpc,
    Endpoint,
    EndpointLimits,
    RpcClient,
    RpcMetrics,
    endpoints_from,
)
from exex_bridge.socket_source import Disconnection, SocketSource
from exex_bridge.whitelist_feed import WhitelistFeed
from pathfinder.sinks import SinkError
from sidecar.commands.common import MetricsServer, prepare_directory
from sidecar.commands.run_source import (
    FrameSource,
    add_window_flags,
    check_source_flags,
    jetstream_source,
)
from sidecar.config_file import add_setting_flags
from sidecar.errors import ConfigError
from sidecar.execution import open_executor_sink
from sidecar.health import NO_RESYNC_REMEDY, Health, health_of, readiness_reasons
from sidecar.loop_heartbeat import LoopHeartbeat
from sidecar.pathfinder_outputs import PathfinderOutputs
from sidecar.service_metrics import ServiceMetrics
from sidecar.settings import RUN, ArenaSettings, EngineSettings
from sidecar.socket_owners import expected_owners

EXIT_STATE_NOT_WRITTEN: Final = 1  # stopped cleanly, but the final state file failed
EXIT_WINDOW_UNSYNCED: Final = 3  # a --to-seq window ended with data lost: state unsynced

HELP = (
    "follow the ExEx socket (or its JetStream relay, --jetstream) live: exact pool state, "
    "reorgs, Prometheus metrics"
)

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, RUN)
    add_window_flags(parser)


@final
class LiveRunner:
    """The consumer, the health ticker and the graceful stop around one pipeline.

    `run()` stops on SIGINT/SIGTERM, or when the `stop` event it is given is set (then
    no signal handler is installed). The runner subscribes to the pipeline's settled
    points: each one dates the last block and counts towards `[state] every`. It is the
    `Probes` of the HTTP server: `/healthz` from the loop's heartbeat, `/readyz` from
    `readiness_reasons` (asked from the server's thread: it only reads).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        settings: ArenaSettings,
        feed: WhitelistFeed | None = None,
        outputs: PathfinderOutputs | None = None,
        *,
        rpc: RpcClient | None = None,
        source: FrameSource | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.feed = feed
        self.outputs = outputs  # its NATS worker runs on the loop of `run()`
        self.rpc = rpc  # its HTTP sessions and health checks too
        self.rpc_sync: BackgroundRpcSync | None = None
        socket = settings.socket
        self.source: FrameSource = source or SocketSource(
            socket.path,
            max_frame=socket.max_frame_size,
            expected_owners=expected_owners(socket),
            connect_timeout=socket.connect_timeout,
            on_disconnect=self._on_disconnect,
        )
        self.stopping = False
        self.at_boundary = asyncio.Event()
        self.last_block_at: float | None = None
        self.settled_since_write = 0
        self.hinted = False  # the no-resync remedy was logged
        self.metrics = ServiceMetrics(pipeline.metrics.registry)
        self.heartbeat = LoopHeartbeat(settings.service.loop_stall)
        pipeline.subscribe_settled(self._on_settled)

    def liveness_reasons(self) -> list[str]:
        return self.heartbeat.liveness_reasons()

    def readiness_reasons(self) -> list[str]:
        reasons = readiness_reasons(self.health(), self.settings.service.ready_block_age)
        self.metrics.ready.set(int(not reasons))
        return reasons

    def health(self) -> Health:
        return health_of(
            self.pipeline.engine,
            connection=self.source.state,
            last_block_at=self.last_block_at,
            now=time.monotonic(),
            can_resync=self.settings.rpc.url is not None,
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        signals: tuple[signal.Signals, ...] = ()
        if stop is None:
            stop = asyncio.Event()
            signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        try:
            await self._start_clients()
        except BaseException:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self._close_clients()
            raise
        # Every task below is this method's: cancelled and awaited however it ends.
        tasks: list[asyncio.Task[Any]] = [
            asyncio.create_task(self.heartbeat.run(self._on_beat)),
            asyncio.create_task(self._tick()),
            stopper := asyncio.create_task(stop.wait()),
        ]
        if self.rpc is not None:
            # after the whitelist hook (subscribed before): added pools are hydrated at once
            view = self.settings.rpc.state_view
            self.rpc_sync = BackgroundRpcSync(
                self.pipeline,
                BlockingRpc(self.rpc, loop),
                v4_state_view=None if view is None else "0x" + view.hex(),
            )
            self.pipeline.subscribe_block_start(self.rpc_sync.before_block)
            interval = self.settings.rpc.health_interval
            tasks.append(asyncio.create_task(self.rpc.run_health_checks(interval)))
        try:
            if self.feed is not None:
                await self._wait_for_snapshot(self.feed, stopper)
            tasks.append(consumer := asyncio.create_task(self._consume()))
            await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not consumer.done():
                await self._stop(consumer)
            if not consumer.cancelled():
                consumer.result()  # a fatal source error (ownership, connect timeout) surfaces
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self.rpc_sync is not None:
                self.rpc_sync.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.source.close()
            self._observe_source()  # the last counts, for the final scrape
            await self._close_clients()

    async def _start_clients(self) -> None:
        """The NATS clients, on this loop: the opportunities sink and the whitelist feed."""
        if self.outputs is not None:
            await self.outputs.astart()
        if self.feed is not None:
            try:
                await self.feed.start()
            except (OSError, TimeoutError, nats.errors.Error) as exc:
                raise WhitelistError("feed", f"cannot subscribe: {exc!r}") from exc

    async def _close_clients(self) -> None:
        if self.feed is not None:
            await self.feed.close()
        if self.outputs is not None:
            await self.outputs.aclose()  # publishes what is queued (bounded by a timeout)
        if self.rpc is not None:
            await self.rpc.close()

    async def _wait_for_snapshot(self, feed: WhitelistFeed, stopper: asyncio.Task[bool]) -> None:
        """The first `.full` document (asked for by `feed.start()`), for at most
        `[whitelist_feed] snapshot_wait` seconds or until a stop; said once either way."""
        wait = self.settings.whitelist_feed.snapshot_wait
        waiter = asyncio.create_task(feed.wait_for_snapshot(wait))
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        received = not waiter.cancelled() and waiter.result()
        if stopper.done():
            return
        outcome = "received" if received else "timed_out"
        self.metrics.whitelist_snapshots.labels(outcome=outcome).inc()
        if received:
            log.info("whitelist snapshot received on whitelist.pools.%s.full", feed.chain)
        else:
            log.warning(
                "no whitelist snapshot on whitelist.pools.%s.full within %gs of asking on "
                "whitelist.snapshot.request.%s: starting with the whitelist file (%d pools)",
                feed.chain,
                wait,
                feed.chain,
                len(self.pipeline.engine.registry.lookup),
            )

    def _on_beat(self) -> None:
        self._observe_source()
        self.readiness_reasons()  # keeps arena_service_ready current between probes

    def _observe_source(self) -> None:
        source = self.source
        if isinstance(source, SocketSource):
            self.metrics.observe_socket(source.stats, source.backoff_attempts)
        elif isinstance(source, JetStreamSource):
            self.metrics.observe_jetstream(source)

    async def _stop(self, consumer: asyncio.Task[None]) -> None:
        """Let the open block or envelope complete within the grace period, then stop."""
        self.stopping = True
        pipeline = self.pipeline
        grace = self.settings.service.stop_grace
        if not pipeline.at_boundary:
            log.info("stopping: giving the open block up to %.1f s to complete", grace)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.at_boundary.wait(), grace)
        await self.source.close()
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        if self.rpc_sync is not None:
            self.rpc_sync.cancel()  # an RPC still answering: its held frames are dropped
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
        if self.stopping and self.pipeline.at_boundary:  # held frames replayed to a boundary
            self.at_boundary.set()
        unsynced = settled.sync is SyncState.UNSYNCED
        if unsynced and not self.hinted and self.settings.rpc.url is None:
            self.hinted = True  # once: the state stays untrusted until a restart
            log.warning(
                "the arena is %s at block %s and stays so: %s",
                settled.sync.value,
                settled.block,
                NO_RESYNC_REMEDY,
            )
        state = self.settings.state
        if state.every and state.state_out is not None:
            self.settled_since_write += 1
            if self.settled_since_write >= state.every:
                self.settled_since_write = 0
                write_state_safely(self.pipeline, state.state_out)

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
            await asyncio.sleep(self.settings.service.health_interval)
            log.info("health: %s", self.health().line())


def rpc_endpoints(settings: ArenaSettings) -> list[Endpoint]:
    """The endpoints of `[rpc] url` with their limits (none if unset). Raises ConfigError."""
    rpc = settings.rpc
    if rpc.url is None:
        return []
    limits = EndpointLimits(
        rate=rpc.rate_limit,
        failure_threshold=rpc.breaker_failures,
        cooldown_s=rpc.breaker_cooldown,
        timeout_s=rpc.timeout,
    )
    try:
        return endpoints_from(rpc.url, limits)
    except ValueError as exc:  # the message shows no path, user or password
        raise ConfigError("--rpc", None, str(exc)) from None


def rpc_client(settings: ArenaSettings, registry: CollectorRegistry) -> RpcClient | None:
    """The pooled client of `[rpc]` (no I/O until used). Raises ConfigError."""
    endpoints = rpc_endpoints(settings)
    if not endpoints:
        return None
    return RpcClient(
        endpoints, client="arena", retries=settings.rpc.retries, metrics=RpcMetrics(registry)
    )


def _spill_path(engine: EngineSettings) -> Path | None:
    if engine.spill_depth == 0:
        return None
    return prepare_directory(engine.spill_path or engine.data_dir / "spill", "spill")


def pipeline_config(settings: ArenaSettings) -> PipelineConfig:
    """Creates the spill and checkpoint directories (DirectoryError if it cannot)."""
    state, engine, checkpoints = settings.state, settings.engine, settings.checkpoints
    if state.whitelist is None:
        raise ConfigError(
            "--whitelist", None, "required (or [state] whitelist in the --config file)"
        )
    checkpoint_path = None
    if checkpoints.every or checkpoints.resume:
        checkpoint_path = checkpoints.path or engine.data_dir / "checkpoints"
        prepare_directory(checkpoint_path, "checkpoint")
    return PipelineConfig(
        whitelist=state.whitelist,
        initial_state=state.initial_state,
        spill_path=_spill_path(engine),
        spill_depth=engine.spill_depth,
        ring_depth=engine.ring_depth,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoints.every,
        checkpoint_keep=checkpoints.keep,
        resume=checkpoints.resume,
    )


def execute(args: argparse.Namespace, settings: ArenaSettings) -> int:
    check_source_flags(args, settings)
    if settings.state.state_out is not None:
        check_state_path(settings.state.state_out)  # now, not after hours of blocks
    rpc_endpoints(settings)  # a bad URL is said before the whitelist loads
    with open_pipeline(pipeline_config(settings)) as pipeline:
        if pipeline.resumed is not None:
            print(f"arena run: resumed at block {pipeline.resumed.block}", file=sys.stderr)
        feed = None
        if settings.whitelist_feed.nats_url is not None:
            feed = WhitelistFeed(settings.whitelist_feed.nats_url, settings.pathfinder.chain)
            pipeline.subscribe_block_start(boundary_hook(pipeline.engine, pipeline.assembler, feed))
        rpc = rpc_client(settings, pipeline.metrics.registry)  # resyncs off the loop in `run()`
        try:
            outputs = _open_outputs(pipeline, settings, None if rpc is None else rpc.metrics)
        except (SinkError, ConfigError) as exc:
            print(f"arena run: {exc}", file=sys.stderr)
            return 2
        pipeline.subscribe_settled(outputs.on_settled)  # before the runner's state writer
        try:
            source = jetstream_source(args, settings, pipeline)
        except ConfigError as exc:
            outputs.close()
            print(f"arena run: {exc}", file=sys.stderr)
            return 2
        live = LiveRunner(pipeline, settings, feed, outputs, rpc=rpc, source=source)
        server = None
        metrics = settings.metrics
        if metrics.port is not None:
            try:
                server = MetricsServer.start(
                    pipeline.metrics.registry, metrics.addr, metrics.port, probes=live
                )
            except BaseException:
                outputs.close()
                raise
        try:
            asyncio.run(live.run())
        finally:
            outputs.close()  # the file and executor sinks; NATS closed on the loop
            if server is not None:
                server.stop()
        written = _write_final_state(pipeline, settings)
        window_unsynced: str | None = None
        if getattr(args, "to_seq", None) is not None:  # a window replayed: as `arena replay`
            source_name = shown_url(settings.jetstream.url or "")
            summary = pipeline.summary(source=source_name, format="jetstream", bytes_read=0)
            print(render_table(summary))
            window_unsynced = summary.unsynced
        log.info(
            "stopped: %s; %d frames, %d blocks applied, %d reverted",
            live.health().line(),
            pipeline.frames,
            len(pipeline.apply_latency),
            len(pipeline.revert_latency),
        )
    if not written:
        print(
            f"arena run: the final state could not be written to {settings.state.state_out}",
            file=sys.stderr,
        )
        return EXIT_STATE_NOT_WRITTEN
    if window_unsynced is not None:
        print(
            f"arena run: the window ended with data lost; the final state is unsynced "
            f"({window_unsynced})",
            file=sys.stderr,
        )
        return EXIT_WINDOW_UNSYNCED
    return 0


def _open_outputs(
    pipeline: Pipeline, settings: ArenaSettings, rpc_metrics: RpcMetrics | None
) -> PathfinderOutputs:
    """The pathfinder's sinks, and the executor on its own thread when `[executor]
    enabled` (it loads the key and checks the node and the contract first; its endpoints
    join the arena's `arena_rpc_*` families)."""
    registry = pipeline.metrics.registry
    executor = (
        open_executor_sink(settings, registry, rpc_metrics) if settings.executor.enabled else None
    )
    more = [] if executor is None else [executor]
    if executor is not None:  # inclusion follows the arena's settled blocks and reorgs
        pipeline.subscribe_settled(executor.on_settled)
    try:
        return PathfinderOutputs.open(pipeline.engine, settings.pathfinder, more, on_loop=True)
    except BaseException:
        if executor is not None:
            executor.close()
        raise


def _write_final_state(pipeline: Pipeline, settings: ArenaSettings) -> bool:
    if settings.checkpoints.every:
        pipeline.checkpoint_now()
    state_out = settings.state.state_out
    return state_out is None or write_state_safely(pipeline, state_out)


def write_state_safely(pipeline: Pipeline, path: Path) -> bool:
    """Write the state file; a failure is logged and counted, never fatal to the service."""
    writes = pipeline.metrics.state_writes
    try:
        write_state_file(pipeline.engine, path)
    except StateFileError as exc:
        writes.labels(outcome="failed").inc()
        log.error("state file not written (the service keeps running): %s", exc)
        return False
    writes.labels(outcome="written").inc()
    log.info("state at block %s written to %s", pipeline.engine.tip_block, path)
    return True
