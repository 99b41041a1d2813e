"""`arena relay`: the ExEx socket's frames, byte for byte, into a JetStream stream that
any number of arenas consume and replay (`arena run --jetstream`).

On SIGINT/SIGTERM the socket is closed, the frames still held get a few seconds to be
confirmed by JetStream, and the command exits 0. Errors at start (no NATS, no JetStream,
a refused socket, a first connection that times out, `--batch-bytes` above the server's
`max_payload`) are one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from exex_bridge.frame_publisher import FramePublisher
from exex_bridge.frame_relay import FrameRelay, RelayOptions, connect_nats
from exex_bridge.redaction import shown_url
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.relay_stream import Retention, check_chain
from exex_bridge.socket_source import SocketSource
from sidecar.commands.common import MetricsServer
from sidecar.config_file import add_setting_flags
from sidecar.errors import ConfigError
from sidecar.settings import RELAY, ArenaSettings
from sidecar.socket_owners import expected_owners

HELP = "publish the ExEx socket's frames to a JetStream stream for `arena run --jetstream`"

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, RELAY)


def relay_options(settings: ArenaSettings) -> RelayOptions:
    relay = settings.relay
    return RelayOptions(
        chain=check_chain(settings.pathfinder.chain),
        retention=Retention(
            max_age=relay.max_age,
            max_bytes=relay.max_bytes,
            duplicate_window=relay.duplicate_window,
        ),
        max_buffered=relay.buffer_frames,
        batch_frames=relay.batch_frames,
        batch_bytes=relay.batch_bytes,
        linger=relay.linger,
    )


async def run_relay(
    settings: ArenaSettings, metrics: RelayMetrics, stop: asyncio.Event | None = None
) -> None:
    """Relay until `stop` is set (or, without one, until SIGINT/SIGTERM)."""
    url = settings.relay.nats_url
    if url is None:
        raise ConfigError("--nats", None, "required (or [relay] nats_url in the --config file)")
    options = relay_options(settings)
    loop = asyncio.get_running_loop()
    signals: tuple[signal.Signals, ...] = ()
    if stop is None:
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
    hook: list[FramePublisher] = []
    nc = await connect_nats(url, options.connect_timeout, hook)
    if options.batch_bytes > nc.max_payload:
        await nc.close()
        raise ConfigError(
            "--batch-bytes",
            None,
            f"{options.batch_bytes} is above the NATS server's max_payload ({nc.max_payload} "
            "bytes): it would refuse the messages",
        )
    socket = settings.socket
    source = SocketSource(
        socket.path,
        max_frame=socket.max_frame_size,
        expected_owners=expected_owners(socket),
        connect_timeout=socket.connect_timeout,
    )
    relay = FrameRelay(source, nc, options, metrics)
    try:
        publisher = await relay.open(hook)
        log.info("relaying %s to %s on %s", socket.path, publisher.stream, shown_url(url))
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(relay.run())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        await source.close()
        stopper.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure  # a refused socket, a first connection that timed out
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await relay.close()


def execute(args: argparse.Namespace, settings: ArenaSettings) -> int:
    metrics = RelayMetrics()
    server = None
    if settings.metrics.port is not None:
        server = MetricsServer.start(metrics.registry, settings.metrics.addr, settings.metrics.port)
    try:
        asyncio.run(run_relay(settings, metrics))
    finally:
        if server is not None:
            server.stop()
    return 0
