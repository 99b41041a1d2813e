"""`arena replay`: run the engine over a recording (or a raw socket dump) offline."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO, final

import msgspec

import sidecar
from arena.pipeline import Pipeline, PipelineConfig, open_pipeline
from arena.state_file import write_state_file
from arena.summary import ReplaySummary, render_table
from exex_bridge.errors import FrameTooLargeError
from exex_bridge.framing import LENGTH_PREFIX
from exex_bridge.recording import RecordingReader, open_recording
from pathfinder.sinks import SinkError
from sidecar.commands.common import (
    MetricsServer,
    add_engine_options,
    add_metrics_options,
    add_state_options,
    non_negative,
)
from sidecar.pathfinder_outputs import PathfinderOutputs, add_pathfinder_arguments

HELP = "replay a recording or raw dump of the ExEx stream through the arena"

EXIT_OK: Final = 0
EXIT_DATA_LOST: Final = 1
EXIT_USAGE: Final = 2
EXIT_BLOCK_NOT_REACHED: Final = 3

EPILOG = """\
exit status:
  0  the whole input was replayed and the final state is trustworthy
  1  data was lost: a truncated file, undecodable frames, stream_seq gaps, a block or
     reorg envelope cut off at the end. The state of the last complete block is still
     written to --state-out, marked "unsynced": true
  2  bad usage or unusable input: missing file, bad whitelist or initial state
  3  --at-block N: block N never settled; no state written
"""

SAMPLES_DIR: Final = Path(sidecar.__file__).parent / "samples"
SAMPLE_FILES: Final = ("sample.arec", "sample_whitelist.json", "sample_initial_state.json")
_PROGRESS_EVERY: Final = 1024  # frames between clock reads

log = logging.getLogger(__name__)


class _UsageError(Exception):
    pass


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="recording (arena record) or headerless raw dump",
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help=f"replay the bundled sample ({', '.join(SAMPLE_FILES)} in {SAMPLES_DIR})",
    )
    add_state_options(parser, whitelist_required=False)
    parser.add_argument(
        "--at-block",
        type=non_negative,
        metavar="N",
        help="stop when the state settles at block N (outside a reorg) and write that state",
    )
    parser.add_argument(
        "--json-summary", action="store_true", help="print the summary as JSON instead of a table"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    add_engine_options(
        parser, spill_help="RocksDB spill directory (default: a temporary one, removed at exit)"
    )
    add_metrics_options(parser)
    add_pathfinder_arguments(parser)


@dataclass(frozen=True, slots=True)
class _Inputs:
    recording: Path
    whitelist: Path
    initial_state: Path | None


def _inputs(args: argparse.Namespace) -> _Inputs:
    if args.sample:
        if args.file is not None:
            raise _UsageError("give either FILE or --sample, not both")
        missing = [name for name in SAMPLE_FILES if not (SAMPLES_DIR / name).is_file()]
        if missing:
            raise _UsageError(
                f"the bundled sample is missing from {SAMPLES_DIR} ({', '.join(missing)}); "
                "this installation has no sample to replay"
            )
        return _Inputs(
            SAMPLES_DIR / SAMPLE_FILES[0],
            args.whitelist or SAMPLES_DIR / SAMPLE_FILES[1],
            args.initial_state or SAMPLES_DIR / SAMPLE_FILES[2],
        )
    if args.file is None:
        raise _UsageError("give the FILE to replay (or --sample)")
    if args.whitelist is None:
        raise _UsageError("--whitelist is required with FILE")
    return _Inputs(args.file, args.whitelist, args.initial_state)


@final
class _Progress:
    """One line on stderr: redrawn in place on a terminal, else every `interval` s."""

    def __init__(self, out: TextIO, total_bytes: int, *, enabled: bool) -> None:
        self.out = out
        self.total = max(1, total_bytes)
        self.enabled = enabled
        self.tty = out.isatty()
        self.interval = 0.2 if self.tty else 5.0
        self.started = self.last = time.monotonic()
        self.drawn = False

    def update(self, pipeline: Pipeline, position: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.interval):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        blocks = len(pipeline.apply_latency) + len(pipeline.revert_latency)
        line = (
            f"arena replay: {pipeline.frames} frames, {blocks} blocks, "
            f"{100.0 * position / self.total:5.1f}% of bytes, "
            f"{pipeline.frames / elapsed:,.0f} frames/s"
        )
        if self.tty:
            self.out.write(f"\r\x1b[K{line}")
            self.drawn = True
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()


@dataclass(frozen=True, slots=True)
class _Outcome:
    position: int
    reached: bool  # --at-block N settled (always False without --at-block)
    unread_bytes: int = 0  # an incomplete or corrupt tail that was not replayed


def _replay(
    pipeline: Pipeline, reader: RecordingReader, progress: _Progress, at_block: int | None
) -> _Outcome:
    position = reader.data_offset
    feed = pipeline.feed_frame
    try:
        # Returning early drops the generator, which closes the file map (CPython refcount).
        for payload in reader.frames():
            position += LENGTH_PREFIX + len(payload)
            settled = feed(payload)
            if settled is not None and settled.block == at_block:
                progress.update(pipeline, position, force=True)
                return _Outcome(position, reached=True)
            if pipeline.frames % _PROGRESS_EVERY == 0:
                progress.update(pipeline, position)
    except FrameTooLargeError as exc:
        # Framing is lost from here on: the rest of the file is as good as truncated.
        unread = os.stat(reader.path).st_size - position
        log.error(
            "%s: %s at byte %d; the %d bytes after it are not replayed",
            reader.path,
            exc,
            position,
            unread,
        )
        progress.update(pipeline, position, force=True)
        return _Outcome(position, reached=False, unread_bytes=unread)
    progress.update(pipeline, position, force=True)
    return _Outcome(position, reached=False, unread_bytes=reader.truncated_bytes)


@contextlib.contextmanager
def _spill_path(args: argparse.Namespace) -> Iterator[Path | None]:
    if args.spill_depth == 0:
        yield None
    elif args.spill_path is not None:
        yield args.spill_path
    else:
        with tempfile.TemporaryDirectory(prefix="arena-replay-spill-") as tmp:
            yield Path(tmp) / "spill"


def execute(args: argparse.Namespace) -> int:
    try:
        inputs = _inputs(args)
        reader = open_recording(inputs.recording, tolerate_truncated=True)
    except _UsageError as exc:
        print(f"arena replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"arena replay: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    with _spill_path(args) as spill_path:
        config = PipelineConfig(
            whitelist=inputs.whitelist,
            initial_state=inputs.initial_state,
            spill_path=spill_path,
            spill_depth=args.spill_depth,
            ring_depth=args.ring_depth,
        )
        with open_pipeline(config) as pipeline:
            try:
                outputs = PathfinderOutputs.open(pipeline.engine, args)
            except SinkError as exc:
                print(f"arena replay: {exc}", file=sys.stderr)
                return EXIT_USAGE
            with outputs:
                pipeline.subscribe_settled(outputs.on_settled)
                return _run(args, pipeline, reader, outputs)


def _run(
    args: argparse.Namespace,
    pipeline: Pipeline,
    reader: RecordingReader,
    outputs: PathfinderOutputs,
) -> int:
    server = None
    if args.metrics_port is not None:
        server = MetricsServer.start(
            pipeline.metrics.registry, args.metrics_addr, args.metrics_port
        )
    try:
        size = os.stat(reader.path).st_size
        progress = _Progress(sys.stderr, size, enabled=not args.no_progress)
        try:
            outcome = _replay(pipeline, reader, progress, args.at_block)
        finally:
            progress.finish()
    finally:
        if server is not None:
            server.stop()
    summary = _finish(pipeline, reader, outcome)
    return _report(args, pipeline, summary, outcome, outputs)


def _finish(pipeline: Pipeline, reader: RecordingReader, outcome: _Outcome) -> ReplaySummary:
    """Close the input like a lost connection if it stopped short of a block boundary."""
    ended_inside = not outcome.reached and not pipeline.at_boundary
    if outcome.unread_bytes or ended_inside:
        # The end of the input is a lost connection: what was open never completed.
        pipeline.on_connection_lost()
    return pipeline.summary(
        source=reader.path,
        format=reader.format,
        bytes_read=outcome.position,
        truncated_bytes=outcome.unread_bytes,
        ended_inside_block=ended_inside,
    )


def _report(
    args: argparse.Namespace,
    pipeline: Pipeline,
    summary: ReplaySummary,
    outcome: _Outcome,
    outputs: PathfinderOutputs,
) -> int:
    if args.json_summary:
        document = msgspec.to_builtins(summary)
        document["best_opportunities"] = outputs.best_rows()
        print(msgspec.json.encode(document).decode())
    else:
        print(render_table(summary))
        print(outputs.render_best())
    if args.at_block is not None and not outcome.reached:
        print(
            f"arena replay: block {args.at_block} never settled; no state written", file=sys.stderr
        )
        return EXIT_BLOCK_NOT_REACHED
    if args.state_out is not None:
        write_state_file(pipeline.engine, args.state_out)
        log.info("state at block %s written to %s", pipeline.engine.tip_block, args.state_out)
    if summary.unsynced is not None or summary.truncated_bytes:
        print(
            f"arena replay: data was lost; the final state is unsynced ({summary.unsynced})",
            file=sys.stderr,
        )
        return EXIT_DATA_LOST
    return EXIT_OK
