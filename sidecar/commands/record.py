"""`arena record`: save the ExEx socket stream to a recording, frames verbatim."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import struct
import sys
from typing import Final, TextIO

from exex_bridge.codec import decode_message
from exex_bridge.errors import BridgeError, CodecError
from exex_bridge.messages import BeginBlock, EndBlock
from exex_bridge.recording import RecordingMetadata, RecordingWriter
from exex_bridge.socket_source import Disconnection, SocketSource
from sidecar.commands.common import flag_type
from sidecar.config_file import add_setting_flags
from sidecar.setting_values import POSITIVE_INT, SECONDS
from sidecar.settings import RECORD, ArenaSettings
from sidecar.socket_owners import expected_owners

HELP = "record the ExEx socket stream to a file (frames verbatim) for `arena replay`"

log = logging.getLogger(__name__)

_TAG = struct.Struct("<I")
_BLOCK_TAGS: Final = frozenset({1, 3})  # BeginBlock, EndBlock: decoded only to show progress


def register(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser, RECORD)
    parser.add_argument("--out", required=True, metavar="FILE", help="recording file to create")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.add_argument(
        "--max-frames",
        type=flag_type(POSITIVE_INT),
        metavar="N",
        help="stop after this many frames",
    )
    parser.add_argument(
        "--progress-interval",
        type=flag_type(SECONDS),
        default=1.0,
        metavar="SECONDS",
        help=argparse.SUPPRESS,
    )


class _Recorder:
    """Writes every frame and keeps the counters shown on stderr."""

    def __init__(
        self,
        writer: RecordingWriter,
        source: SocketSource,
        max_frames: int | None,
        err: TextIO,
    ) -> None:
        self.writer = writer
        self.source = source
        self.max_frames = max_frames
        self.err = err
        self.blocks = 0
        self.last_block: int | None = None
        self.decode_errors = 0

    def counters(self) -> str:
        stats = self.source.stats
        return (
            f"frames={self.writer.frames} bytes={stats.bytes} blocks={self.blocks} "
            f"last_block={self.last_block if self.last_block is not None else '-'} "
            f"reconnects={max(0, stats.generation - 1)} disconnects={stats.disconnects} "
            f"decode_errors={self.decode_errors}"
        )

    async def run(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        consumer = asyncio.create_task(self._consume())
        ticker = asyncio.create_task(self._tick(interval))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({consumer, stopper, ticker}, return_when=asyncio.FIRST_COMPLETED)
            await self.source.close()
            if ticker.done():
                ticker.result()  # a failed flush (disk full) must not pass silently
            await consumer
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            for task in (consumer, ticker, stopper):
                task.cancel()
            await asyncio.gather(consumer, ticker, stopper, return_exceptions=True)

    async def _consume(self) -> None:
        async with contextlib.aclosing(self.source.frames()) as frames:
            async for payload in frames:
                self.writer.write_frame(payload)
                if len(payload) >= 4 and _TAG.unpack_from(payload)[0] in _BLOCK_TAGS:
                    self._note_block(payload)
                if self.max_frames is not None and self.writer.frames >= self.max_frames:
                    return

    def _note_block(self, payload: bytes) -> None:
        try:
            msg = decode_message(payload)
        except CodecError as exc:
            self.decode_errors += 1
            log.warning("undecodable block frame (stream_seq %s): %s", exc.stream_seq, exc)
            return
        if isinstance(msg, EndBlock):
            self.blocks += 1
            self.last_block = msg.block_number
        elif isinstance(msg, BeginBlock):
            self.last_block = msg.block_number

    async def _tick(self, interval: float) -> None:
        shown = ""
        while True:
            await asyncio.sleep(interval)
            self.writer.flush()
            line = self.counters()
            if line != shown:
                print(f"arena record: {line}", file=self.err, flush=True)
                shown = line


def _note_disconnect(event: Disconnection) -> None:
    log.warning(
        "recording continues after losing connection %d (%s): the frames that follow may "
        "come after a gap (last stream_seq %s)",
        event.generation,
        event.reason,
        event.last_stream_seq,
    )


def execute(args: argparse.Namespace, settings: ArenaSettings) -> int:
    out: str = args.out
    socket = settings.socket
    metadata = RecordingMetadata.new(socket.path, {"command": "arena record"})
    try:
        writer = RecordingWriter(out, metadata, overwrite=args.force)
    except FileExistsError:
        print(f"arena record: {out} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"arena record: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    source = SocketSource(
        socket.path,
        max_frame=socket.max_frame_size,
        expected_owners=expected_owners(socket),
        connect_timeout=socket.connect_timeout,
        on_disconnect=_note_disconnect,
    )
    recorder = _Recorder(writer, source, args.max_frames, sys.stderr)
    try:
        asyncio.run(recorder.run(args.progress_interval))
    except BridgeError:
        _discard_if_empty(writer)
        raise
    except OSError as exc:
        print(f"arena record: writing {out} failed: {exc}", file=sys.stderr)
        return 2
    finally:
        writer.close()
    print(f"arena record: stopped; {recorder.counters()} file={out}", file=sys.stderr)
    return 0


def _discard_if_empty(writer: RecordingWriter) -> None:
    writer.close()
    if writer.frames == 0:
        # Only the header: nothing worth keeping, and a stale file would block a retry.
        with contextlib.suppress(OSError):
            os.unlink(writer.path)
