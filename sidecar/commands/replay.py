"""`arena replay`: run the engine over a recording (or a raw socket dump) offline."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
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
from arena.state_file import check_state_path, write_state_file
from arena.summary import ReplaySummary, render_table
from arena.sync_state import LossCause
from exex_bridge.errors import FrameTooLargeError
from exex_bridge.framing import LENGTH_PREFIX
from exex_bridge.recording import RecordingReader, open_recording
from pathfinder.sinks import SinkError
from sidecar.commands.common import MetricsServer, flag_type
from sidecar.config_file import add_setting_flags
from sidecar.pathfinder_outputs import PathfinderOutputs
from sidecar.setting_values import NON_NEGATIVE_INT
from sidecar.settings import REPLAY, ArenaSettings, EngineSettings, StateSettings

HELP = "replay a recording or raw dump of the ExEx stream through the arena"

EXIT_OK: Final = 0
EXIT_DATA_LOST: Final = 1
EXIT_USAGE: Final = 2
EXIT_BLOCK_NOT_REACHED: Final = 3
EXIT_INTERRUPTED: Final = 4
NATS_CONNECT: Final = 15.0  # seconds: --nats must be connected before the replay starts

EPILOG = """\
FILE may be a pipe, a FIFO or /dev/stdin: anything that is not a regular file is read
once, as a stream.

exit status:
  0  the whole input was replayed and the final state is trustworthy
  1  data was lost: a truncated file, undecodable frames, stream_seq gaps, a block or
     reorg envelope cut off at the end. The state of the last complete block is still
     written to --state-out, marked "unsynced": true
  2  bad usage or unusable input: missing file, bad whitelist or initial state, an
     unwritable --state-out (checked before replaying), an input with no frames, an
     input that is neither a recording nor a raw dump
  3  --at-block N: block N never settled; no state written
  4  stopped by SIGINT or SIGTERM: the state of the last complete block is written to
     --state-out, marked "unsynced": true; temporary files are removed
"""

SAMPLES_DIR: Final = Path(sidecar.__file__).parent / "samples"
SAMPLE_FILES: Final = ("sample.arec", "sample_whitelist.json", "sample_initial_state.json")
_PROGRESS_EVERY: Final = 1024  # frames between clock reads

log = logging.getLogger(__name__)


class _UsageError(Exception):
    pass


class _StoppedWhileWaitingError(Exception):
    pass


@final
class _StopRequest:
    """Set by SIGINT/SIGTERM; the replay loop stops after the frame it is feeding. While
    the loop waits for input (a quiet pipe) the handler raises there instead: between
    two frames, where stopping loses nothing."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self.waiting = False

    def __call__(self, signum: int, frame: object) -> None:
        self.signal = signal.Signals(signum)
        if self.waiting:
            raise _StoppedWhileWaitingError

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopRequest]:
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


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
    parser.add_argument(
        "--at-block",
        type=flag_type(NON_NEGATIVE_INT),
        metavar="N",
        help="stop when the state settles at block N (outside a reorg) and write that state",
    )
    parser.add_argument(
        "--json-summary", action="store_true", help="print the summary as JSON instead of a table"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--no-pathfinder",
        action="store_true",
        help="state only: no path recalculation, no opportunity output (reorg tests)",
    )
    add_setting_flags(parser, REPLAY)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayRequest:
    """What one replay is asked to do; the settings say with which state and outputs."""

    file: Path | None
    sample: bool
    at_block: int | None
    json_summary: bool
    progress: bool
    pathfinder: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ReplayRequest:
        return cls(
            file=args.file,
            sample=args.sample,
            at_block=args.at_block,
            json_summary=args.json_summary,
            progress=not args.no_progress,
            pathfinder=not args.no_pathfinder,
        )


@dataclass(frozen=True, slots=True)
class _Inputs:
    recording: Path
    whitelist: Path
    initial_state: Path | None


def _inputs(request: ReplayRequest, state: StateSettings) -> _Inputs:
    if request.sample:
        if request.file is not None:
            raise _UsageError("give either FILE or --sample, not both")
        missing = [name for name in SAMPLE_FILES if not (SAMPLES_DIR / name).is_file()]
        if missing:
            raise _UsageError(
                f"the bundled sample is missing from {SAMPLES_DIR} ({', '.join(missing)}); "
                "this installation has no sample to replay"
            )
        return _Inputs(
            SAMPLES_DIR / SAMPLE_FILES[0],
            state.whitelist or SAMPLES_DIR / SAMPLE_FILES[1],
            state.initial_state or SAMPLES_DIR / SAMPLE_FILES[2],
        )
    if request.file is None:
        raise _UsageError("give the FILE to replay (or --sample)")
    if state.whitelist is None:
        raise _UsageError("--whitelist is required with FILE (or [state] whitelist in --config)")
    return _Inputs(request.file, state.whitelist, state.initial_state)


@final
class _Progress:
    """One line on stderr: redrawn in place on a terminal, else every `interval` s.
    `total_bytes` None: a stream of unknown length (bytes read are shown instead)."""

    def __init__(self, out: TextIO, total_bytes: int | None, *, enabled: bool) -> None:
        self.out = out
        self.total = None if total_bytes is None else max(1, total_bytes)
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
        done = (
            f"{position:,} bytes"
            if self.total is None
            else f"{100.0 * position / self.total:5.1f}% of bytes"
        )
        line = (
            f"arena replay: {pipeline.frames} frames, {blocks} blocks, {done}, "
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
    framing_lost: bool = False  # an impossible length prefix: the rest was not replayed
    stopped_by: signal.Signals | None = None


def _replay(
    pipeline: Pipeline,
    reader: RecordingReader,
    progress: _Progress,
    at_block: int | None,
    stop: _StopRequest,
) -> _Outcome:
    position = reader.data_offset
    feed = pipeline.feed_frame
    try:
        # Returning early drops the generator, which closes the file map (CPython refcount).
        for payload in _frames_until_stopped(reader, stop):
            position += LENGTH_PREFIX + len(payload)
            settled = feed(payload)
            if settled is not None and settled.block == at_block:
                progress.update(pipeline, position, force=True)
                return _Outcome(position, reached=True)
            if stop.signal is not None:
                progress.update(pipeline, position, force=True)
                return _Outcome(position, reached=False, stopped_by=stop.signal)
            if pipeline.frames % _PROGRESS_EVERY == 0:
                progress.update(pipeline, position)
    except _StoppedWhileWaitingError:
        progress.update(pipeline, position, force=True)
        return _Outcome(position, reached=False, stopped_by=stop.signal)
    except FrameTooLargeError as exc:
        if pipeline.frames == 0:
            raise _UsageError(
                f"{reader.path} is neither a recording nor a raw dump of the ExEx stream: "
                f"its first length prefix claims {exc.length} bytes (cap {exc.cap})"
            ) from exc
        # Framing is lost from here on: the rest of the input is as good as truncated.
        unread = None if reader.size is None else reader.size - position
        log.error(
            "%s: %s at byte %d; %s after it not replayed",
            reader.path,
            exc,
            position,
            "the rest of the stream is" if unread is None else f"the {unread} bytes",
        )
        progress.update(pipeline, position, force=True)
        return _Outcome(position, reached=False, unread_bytes=unread or 0, framing_lost=True)
    progress.update(pipeline, position, force=True)
    return _Outcome(position, reached=False, unread_bytes=reader.truncated_bytes)


def _frames_until_stopped(reader: RecordingReader, stop: _StopRequest) -> Iterator[bytes]:
    frames = reader.frames()
    while True:
        stop.waiting = True
        try:
            payload = next(frames)
        except StopIteration:
            return
        finally:
            stop.waiting = False
        yield payload


@contextlib.contextmanager
def _spill_path(engine: EngineSettings) -> Iterator[Path | None]:
    if engine.spill_depth == 0:
        yield None
    elif engine.spill_path is not None:
        yield engine.spill_path
    else:
        with tempfile.TemporaryDirectory(prefix="arena-replay-spill-") as tmp:
            yield Path(tmp) / "spill"


def execute(args: argparse.Namespace, settings: ArenaSettings) -> int:
    request = ReplayRequest.from_args(args)
    try:
        inputs = _inputs(request, settings.state)
        if settings.state.state_out is not None:
            check_state_path(settings.state.state_out)
        reader = open_recording(inputs.recording, tolerate_truncated=True)
    except _UsageError as exc:
        print(f"arena replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"arena replay: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with reader, _StopRequest().installed() as stop:
            return _replay_with_pipeline(request, settings, inputs, reader, stop)
    except _UsageError as exc:
        print(f"arena replay: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _replay_with_pipeline(
    request: ReplayRequest,
    settings: ArenaSettings,
    inputs: _Inputs,
    reader: RecordingReader,
    stop: _StopRequest,
) -> int:
    engine = settings.engine
    with _spill_path(engine) as spill_path:
        config = PipelineConfig(
            whitelist=inputs.whitelist,
            initial_state=inputs.initial_state,
            spill_path=spill_path,
            spill_depth=engine.spill_depth,
            ring_depth=engine.ring_depth,
        )
        with open_pipeline(config) as pipeline:
            if not request.pathfinder:
                return _run(request, settings, pipeline, reader, None, stop=stop)
            try:
                outputs = PathfinderOutputs.open(
                    pipeline.engine, settings.pathfinder, nats_connected_within=NATS_CONNECT
                )
            except SinkError as exc:
                print(f"arena replay: {exc}", file=sys.stderr)
                return EXIT_USAGE
            with outputs:
                pipeline.subscribe_settled(outputs.on_settled)
                return _run(request, settings, pipeline, reader, outputs, stop=stop)


def _run(
    request: ReplayRequest,
    settings: ArenaSettings,
    pipeline: Pipeline,
    reader: RecordingReader,
    outputs: PathfinderOutputs | None,
    *,
    stop: _StopRequest,
) -> int:
    server = None
    metrics = settings.metrics
    if metrics.port is not None:
        server = MetricsServer.start(pipeline.metrics.registry, metrics.addr, metrics.port)
    try:
        progress = _Progress(sys.stderr, reader.size, enabled=request.progress)
        try:
            outcome = _replay(pipeline, reader, progress, request.at_block, stop)
        finally:
            progress.finish()
    finally:
        if server is not None:
            server.stop()
    if pipeline.frames == 0:
        raise _UsageError(f"{reader.path} holds no frames: there is nothing to replay")
    summary = _finish(pipeline, reader, outcome)
    state_out = settings.state.state_out
    return _report(request, pipeline, summary, outcome, outputs, state_out=state_out)


def _finish(pipeline: Pipeline, reader: RecordingReader, outcome: _Outcome) -> ReplaySummary:
    """Close the input like a lost connection if it stopped short of a block boundary."""
    ended_inside = not outcome.reached and not pipeline.at_boundary
    if outcome.stopped_by is not None:
        # Stopped part-way: the last complete block's state, but not the input's end.
        detail = f"replay stopped by {outcome.stopped_by.name} at byte {outcome.position}"
        if pipeline.at_boundary:
            pipeline.engine.mark_unsynced(LossCause.STOPPED, detail)
        else:
            pipeline.on_stream_end(LossCause.STOPPED, detail)
    elif outcome.framing_lost:
        pipeline.on_stream_end(
            LossCause.INPUT_ENDED, f"framing lost at byte {outcome.position}: rest not replayed"
        )
    elif outcome.unread_bytes or ended_inside:
        # What was open when the input ended never completed.
        pipeline.on_stream_end(
            LossCause.INPUT_ENDED, f"the input ended inside a block at byte {outcome.position}"
        )
    return pipeline.summary(
        source=reader.path,
        format=reader.format,
        bytes_read=outcome.position,
        truncated_bytes=outcome.unread_bytes,
        ended_inside_block=ended_inside,
    )


def _report(
    request: ReplayRequest,
    pipeline: Pipeline,
    summary: ReplaySummary,
    outcome: _Outcome,
    outputs: PathfinderOutputs | None,
    *,
    state_out: Path | None,
) -> int:
    if request.json_summary:
        document = msgspec.to_builtins(summary)
        if outputs is not None:
            document["best_opportunities"] = outputs.best_rows()
        print(msgspec.json.encode(document).decode())
    else:
        print(render_table(summary))
        if outputs is not None:
            print(outputs.render_best())
    if request.at_block is not None and not outcome.reached:
        print(
            f"arena replay: block {request.at_block} never settled; no state written",
            file=sys.stderr,
        )
        return EXIT_BLOCK_NOT_REACHED
    if state_out is not None:
        write_state_file(pipeline.engine, state_out)
        log.info("state at block %s written to %s", pipeline.engine.tip_block, state_out)
    if outcome.stopped_by is not None:
        print(
            f"arena replay: stopped by {outcome.stopped_by.name} at block "
            f"{pipeline.engine.tip_block}; the state written is marked unsynced",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if summary.unsynced is not None or summary.truncated_bytes:
        print(
            f"arena replay: data was lost; the final state is unsynced ({summary.unsynced})",
            file=sys.stderr,
        )
        return EXIT_DATA_LOST
    return EXIT_OK
