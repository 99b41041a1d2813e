"""`arena run` against a real Unix socket server: the command as a subprocess (metrics
scraped and checked by the real promtool, SIGTERM, state file), and the live runner
in-process for the graceful-stop paths."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from arena.pipeline import Pipeline, open_pipeline
from arena.sync_state import LossCause
from exex_bridge import messages as m
from exex_bridge.connection_state import ConnectionState
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from sidecar.cli import build_parser
from sidecar.commands.run import LiveRunner, pipeline_config
from sidecar.config_file import load_settings
from tests.arena.replay_scenario import (
    V2_A,
    V3_B,
    Scenario,
    sqrt_at,
    standard_scenario,
    swap,
    sync,
)

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = Path("/usr/bin/promtool")
DEADLINE = 60.0


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return standard_scenario()


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def _scrape_until(url: str, name: str, value: float) -> str:
    """Scrape until `name` reaches `value`; each round waits on the HTTP answer."""
    while True:
        text = await asyncio.to_thread(_scrape, url)
        current = _sample(text, name)
        if current is not None and current >= value:
            return text


class _Stderr:
    """Collects the subprocess's stderr lines and lets a test wait for one."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._stream = stream
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self._stream.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for(self, needle: str) -> str:
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if needle in line:
                    return line
            seen = len(self.lines)
            if self._task.done():
                raise AssertionError(f"{needle!r} never logged:\n" + "\n".join(self.lines))
            await self._changed.wait()

    async def close(self) -> str:
        await self._task
        return "\n".join(self.lines)


@contextlib.asynccontextmanager
async def _arena_run(*args: str | Path) -> AsyncIterator[_Stderr]:
    """`arena run ARGS` as a subprocess; SIGTERM on leaving, which must exit 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "run",
        *map(str, args),
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    stderr = _Stderr(proc.stderr)
    try:
        async with asyncio.timeout(DEADLINE):
            yield stderr
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
        log = await stderr.close()
    assert code == 0, log
    assert "Traceback" not in log


async def test_run_follows_the_socket_serves_metrics_and_stops_on_sigterm(
    tmp_path: Path, scenario: Scenario
) -> None:
    assert PROMTOOL.is_file(), "promtool (Debian package prometheus) is required"
    whitelist, initial = scenario.write_inputs(tmp_path)
    sock, out = tmp_path / "exex.sock", tmp_path / "state.json"
    checkpoints = tmp_path / "checkpoints"
    async with FrameBroadcastServer(sock) as server:
        async with _arena_run(
            "--socket",
            sock,
            "--whitelist",
            whitelist,
            "--initial-state",
            initial,
            "--state-out",
            out,
            "--metrics-port",
            "0",
            "--spill-path",
            tmp_path / "spill",
            "--health-interval",
            "0.2",
            "--checkpoint-every",
            "4",
            "--checkpoint-path",
            checkpoints,
        ) as stderr:
            line = await stderr.wait_for("serving metrics at http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            await server.wait_for_accepted(1)
            await server.publish_many(scenario.builder.messages)
            text = await asyncio.wait_for(
                _scrape_until(url, "arena_block_applied_total", 10), DEADLINE
            )
            await stderr.wait_for("health: synced tip=108 stale=0")
        assert json.loads(out.read_bytes()) == scenario.model.state_json()

        # A restart resumes from the checkpoint written at the clean stop.
        resumed = tmp_path / "resumed.json"
        async with _arena_run(
            "--socket",
            sock,
            "--whitelist",
            whitelist,
            "--resume",
            "--checkpoint-path",
            checkpoints,
            "--state-out",
            resumed,
            "--spill-path",
            tmp_path / "spill",
        ) as stderr:
            await stderr.wait_for("arena run: resumed at block 108")
            await server.wait_for_accepted(2)
    assert resumed.read_bytes() == out.read_bytes()
    assert _sample(text, "arena_block_reverted_total") == 2
    assert _sample(text, "arena_reorg_envelopes_total") == 1
    assert _sample(text, "arena_reorg_divergences_total", kind="v3") == 1
    assert _sample(text, "arena_state_tip_block") == 108
    assert _sample(text, "arena_state_synced") == 1
    assert _sample(text, "arena_pools_tracked") == 6
    check = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_run_refuses_a_bad_whitelist_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "wl.json"
    bad.write_text("[]")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar.cli",
            "run",
            "--socket",
            str(tmp_path / "s.sock"),
            "--whitelist",
            str(bad),
            "--spill-depth",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"arena run: whitelist {bad}" in done.stderr
    assert "Traceback" not in done.stderr


# -- the live runner in-process: graceful stop and connection loss ----------------------


@contextlib.asynccontextmanager
async def _live(
    tmp_path: Path, scenario: Scenario, grace: str, *extra: str
) -> AsyncIterator[tuple[FrameBroadcastServer, Pipeline, LiveRunner, asyncio.Event, _Changes]]:
    whitelist, initial = scenario.write_inputs(tmp_path)
    sock = tmp_path / "exex.sock"
    settings = load_settings(
        build_parser().parse_args(
            [
                "run",
                "--socket",
                str(sock),
                "--whitelist",
                str(whitelist),
                "--initial-state",
                str(initial),
                "--spill-depth",
                "0",
                "--stop-grace",
                grace,
                *extra,
            ]
        ),
        environ={},
    )
    async with FrameBroadcastServer(sock) as server:
        with open_pipeline(pipeline_config(settings)) as pipeline:
            runner = LiveRunner(pipeline, settings)
            changes = _Changes(pipeline, runner)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop))
            try:
                async with asyncio.timeout(DEADLINE):
                    await server.wait_for_clients(1)
                    yield server, pipeline, runner, stop, changes
                    stop.set()
                    await task
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


class _Changes:
    """An event set whenever the runner's state may have moved: after each frame the
    pipeline takes, after a lost connection, and once a stop has begun."""

    def __init__(self, pipeline: Pipeline, runner: LiveRunner) -> None:
        self.event = asyncio.Event()
        feed_frame, lost, stop = pipeline.feed_frame, pipeline.on_connection_lost, runner._stop

        def feed_and_tell(payload: bytes) -> object:
            try:
                return feed_frame(payload)
            finally:
                self.event.set()

        def lost_and_tell() -> None:
            lost()
            self.event.set()

        async def stop_and_tell(consumer: asyncio.Task[None]) -> None:
            stopping = asyncio.ensure_future(stop(consumer))
            # Runs right after the stop's first step, which sets `runner.stopping`.
            asyncio.get_running_loop().call_soon(self.event.set)
            await stopping

        pipeline.feed_frame = feed_and_tell  # type: ignore[method-assign,assignment]
        pipeline.on_connection_lost = lost_and_tell  # type: ignore[method-assign]
        runner._stop = stop_and_tell  # type: ignore[method-assign]

    async def until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait on the event (cleared before each check, so no change is missed) until
        `condition` holds; fail after `timeout` seconds rather than hang."""

        async def wait() -> None:
            while True:
                self.event.clear()
                if condition():
                    return
                await self.event.wait()

        await asyncio.wait_for(wait(), timeout)


def _blocks(seq: StreamSequencer) -> tuple[list[m.ControlMessage], list[m.ControlMessage]]:
    """Block 101 complete, and block 102 without its EndBlock."""
    b101 = seq.block(101, [_update(101, V2_A, sync(1, 2))])
    b102 = seq.block(102, [_update(102, V3_B, swap(sqrt_at(3) + 7, 10**18, 3))])
    return list(b101), list(b102)


def _update(block: int, pool: str, payload: m.PoolUpdatePayload) -> m.PoolUpdateMessage:
    protocol = m.Protocol.UNISWAP_V2 if isinstance(payload, m.V2Sync) else m.Protocol.UNISWAP_V3
    return m.PoolUpdateMessage(
        pool_id=m.PoolAddress(value=bytes.fromhex(pool[2:])),
        protocol=protocol,
        update_type=m.UpdateType.SWAP,
        block_number=block,
        block_timestamp=block,
        tx_index=0,
        log_index=0,
        is_revert=False,
        update=payload,
    )


def _open_block(pipeline: Pipeline) -> int | None:
    block = pipeline.assembler.open_block
    return None if block is None else block.begin.block_number


async def test_stop_lets_the_open_block_complete(tmp_path: Path, scenario: Scenario) -> None:
    seq = StreamSequencer()
    b101, b102 = _blocks(seq)
    async with _live(tmp_path, scenario, grace="30") as (server, pipeline, runner, stop, changes):
        await server.publish_many(b101 + b102[:-1])
        await changes.until(lambda: _open_block(pipeline) == 102 and pipeline.frames == 5)
        stop.set()
        await changes.until(lambda: runner.stopping)
        await server.publish(b102[-1])
    assert pipeline.engine.tip_block == 102
    assert pipeline.engine.synced
    engine = pipeline.engine
    assert engine.table.slot0(engine.registry.index_of[bytes.fromhex(V3_B[2:])]) == (
        sqrt_at(3) + 7,
        10**18,
        3,
    )


async def test_stop_discards_a_block_that_does_not_complete(
    tmp_path: Path, scenario: Scenario
) -> None:
    seq = StreamSequencer()
    b101, b102 = _blocks(seq)
    started = time.monotonic()
    async with _live(tmp_path, scenario, grace="0.2") as (server, pipeline, _runner, stop, changes):
        await server.publish_many(b101 + b102[:-1])
        await changes.until(lambda: _open_block(pipeline) == 102 and pipeline.frames == 5)
        stop.set()
    assert time.monotonic() - started < DEADLINE
    assert pipeline.engine.tip_block == 101
    assert pipeline.engine.synced  # block 101's state is exact; 102 never became visible


async def test_stop_inside_a_reorg_envelope_marks_the_state_unsynced(
    tmp_path: Path, scenario: Scenario
) -> None:
    seq = StreamSequencer()
    b101, _ = _blocks(seq)
    start = seq.reorg_start(
        m.ReorgRange(first_block=101, last_block=101, block_count=1),
        m.ReorgRange(first_block=101, last_block=101, block_count=1),
    )
    async with _live(tmp_path, scenario, grace="0.2") as (server, pipeline, _runner, stop, changes):
        await server.publish_many([*b101, start])
        await changes.until(lambda: pipeline.assembler.phase.in_reorg)
        stop.set()
    assert not pipeline.engine.synced
    assert pipeline.engine.tip_block == 101


async def test_connection_loss_discards_the_open_block(tmp_path: Path, scenario: Scenario) -> None:
    seq = StreamSequencer()
    b101, b102 = _blocks(seq)
    async with _live(tmp_path, scenario, grace="0.2") as (server, pipeline, runner, _stop, changes):
        await server.publish_many(b101 + b102[:-1])
        await changes.until(lambda: _open_block(pipeline) == 102 and pipeline.frames == 5)
        await server.close()
        await changes.until(lambda: not pipeline.engine.synced)
        health = runner.health()
        assert health.connection is not ConnectionState.CONNECTED
        assert not health.synced and not health.healthy
        assert health.tip_block == 101
        assert health.last_block_age_seconds is not None
    assert pipeline.assembler.open_block is None
    loss = pipeline.engine.sync_status.loss
    assert loss is not None and loss.cause is LossCause.CONNECTION_LOST
    assert str(loss).startswith("connection_lost: ")


async def test_a_failing_periodic_state_write_is_counted_and_the_service_keeps_running(
    tmp_path: Path, scenario: Scenario
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    state_out = out / "state.json"
    seq = StreamSequencer()
    b101, b102 = _blocks(seq)
    extra = ("--state-out", str(state_out), "--state-every", "1")
    async with _live(tmp_path, scenario, "5", *extra) as (server, pipeline, _, _, changes):
        out.rmdir()  # the folder goes away under the running service
        await server.publish_many(b101)
        await changes.until(lambda: pipeline.engine.tip_block == 101)
        written = pipeline.metrics.state_writes
        assert written.labels(outcome="failed")._value.get() == 1
        out.mkdir()
        await server.publish_many(b102)
        await changes.until(lambda: pipeline.engine.tip_block == 102)
        assert written.labels(outcome="written")._value.get() == 1
        assert json.loads(state_out.read_bytes())["block"] == 102


def test_run_refuses_an_unwritable_state_out_at_start(tmp_path: Path) -> None:
    whitelist = tmp_path / "wl.json"
    whitelist.write_text('{"chain": "ethereum", "pools": []}')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar.cli",
            "run",
            "--socket",
            str(tmp_path / "s.sock"),
            "--whitelist",
            str(whitelist),
            "--state-out",
            str(tmp_path / "no" / "such" / "s.json"),
            "--connect-timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no/such/s.json" in done.stderr
    assert "Traceback" not in done.stderr


async def test_without_rpc_an_unsynced_arena_says_once_how_to_recover(
    tmp_path: Path, scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    seq = StreamSequencer()
    b101, b102 = _blocks(seq)
    async with _live(tmp_path, scenario, "5") as (server, pipeline, runner, _, changes):
        await server.publish_many(b101)
        await changes.until(lambda: pipeline.engine.tip_block == 101)
        seq.skip(3)  # the producer dropped messages for this client: a stream_seq gap
        await server.publish_many(b102)
        b103 = seq.block(103, [_update(103, V2_A, sync(3, 4))])
        b104 = seq.block(104, [_update(104, V2_A, sync(5, 6))])
        await server.publish_many([*b103, *b104])
        await changes.until(lambda: pipeline.engine.tip_block == 104)
        reasons = runner.health().reasons()
    hints = [r for r in caplog.records if "nothing can resync it" in r.getMessage()]
    assert len(hints) == 1
    assert "--rpc" in hints[0].getMessage() and "--initial-state" in hints[0].getMessage()
    assert any(r.startswith("unsynced (seq_gap") and "--rpc" in r for r in reasons)
