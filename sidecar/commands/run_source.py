"""Where `arena run` reads its frames: the ExEx socket, or the JetStream stream that
`arena relay` fills from it (`--jetstream`), and the flags that choose between them."""

from __future__ import annotations

import argparse
from collections.abc import AsyncGenerator
from typing import Protocol

from arena.pipeline import Pipeline
from exex_bridge.connection_state import ConnectionState
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.relay_stream import default_durable
from exex_bridge.socket_source import DEFAULT_SOCKET_PATH
from sidecar.commands.common import flag_type
from sidecar.errors import ConfigError
from sidecar.setting_values import POSITIVE_INT
from sidecar.settings import ArenaSettings


class FrameSource(Protocol):
    """Where `arena run` reads frames: the ExEx socket or a relayed JetStream stream."""

    @property
    def state(self) -> ConnectionState: ...

    def frames(self) -> AsyncGenerator[bytes, None]: ...

    async def close(self) -> None: ...


def add_window_flags(parser: argparse.ArgumentParser) -> None:
    """`--from-seq`/`--to-seq`: a window of the relayed stream (flags, not settings)."""
    window = "with --jetstream: "
    parser.add_argument(
        "--from-seq",
        type=flag_type(POSITIVE_INT),
        metavar="SEQ",
        help=window + "start at this stream sequence (not with --resume)",
    )
    parser.add_argument(
        "--to-seq",
        type=flag_type(POSITIVE_INT),
        metavar="SEQ",
        help=window
        + "stop after this stream sequence, write the state and exit (3 if data was lost "
        + "in the window: the state is then marked unsynced)",
    )


def check_source_flags(args: argparse.Namespace, settings: ArenaSettings) -> None:
    """`--jetstream` replaces the socket; `--from-seq`/`--to-seq` need it."""
    given_socket = hasattr(args, "socket.path") or settings.socket.path != DEFAULT_SOCKET_PATH
    if settings.jetstream.url is not None and given_socket:
        raise ConfigError("--jetstream", None, "reads the relayed stream: not with --socket")
    window = getattr(args, "from_seq", None), getattr(args, "to_seq", None)
    if settings.jetstream.url is None and window != (None, None):
        raise ConfigError("--from-seq/--to-seq", None, "need --jetstream")
    if window[0] is not None and settings.checkpoints.resume:
        raise ConfigError("--from-seq", None, "not with --resume (it starts after the checkpoint)")
    if None not in window and window[0] > window[1]:  # type: ignore[operator]
        raise ConfigError("--to-seq", None, f"{window[1]} is before --from-seq {window[0]}")


def jetstream_source(
    args: argparse.Namespace, settings: ArenaSettings, pipeline: Pipeline
) -> JetStreamSource | None:
    """The relayed stream's consumer when `--jetstream` is given, starting right after
    the resumed checkpoint (or at `--from-seq`, or at the stream's first message)."""
    url = settings.jetstream.url
    if url is None:
        return None
    chain = settings.pathfinder.chain
    start: int | None = getattr(args, "from_seq", None)
    skip: int | None = None
    resumed = pipeline.resumed
    if resumed is not None:
        if resumed.source_seq is None:
            raise ConfigError(
                "--resume",
                None,
                f"the checkpoint of block {resumed.block} was not taken from a JetStream "
                "stream: where to continue in it is unknown",
            )
        # Old checkpoints (one frame per message) name the whole message applied.
        skip = resumed.source_frames
        start = resumed.source_seq if skip is not None else resumed.source_seq + 1
        # The next frame must continue the producer's sequence: a gap is seen at once.
        pipeline.assembler.last_seq = resumed.stream_seq
    source = JetStreamSource(
        url,
        chain,
        settings.jetstream.durable or default_durable(chain),
        start_seq=start,
        skip_frames=skip or 0,
        stop_seq=getattr(args, "to_seq", None),
        batch=settings.jetstream.fetch_batch,
        on_restart=lambda seq: pipeline.on_producer_restart(
            f"the relay marks a producer restart at stream sequence {seq}"
        ),
    )
    pipeline.source_position = source.checkpoint_position
    return source
