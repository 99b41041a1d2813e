"""`arena replay` end to end: the command run as a subprocess on recordings and raw dumps
of a stream with committed blocks, a reorg envelope and V2/V3 pools."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sidecar.commands.replay as replay_command
from arena.pipeline import PipelineConfig, open_pipeline
from arena.state_file import export_state
from exex_bridge import messages as m
from exex_bridge.codec import encode_frame, encode_message
from sidecar.cli import main
from tests.arena.replay_scenario import (
    FIRST_BLOCK,
    V2_A,
    V2_F,
    V3_B,
    V3_C,
    Model,
    Scenario,
    StreamBuilder,
    initial_pools,
    liquidity,
    sqrt_at,
    standard_scenario,
    swap,
    sync,
    whitelist_document,
)

ROOT = Path(__file__).resolve().parents[2]


def arena(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "replay", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return standard_scenario()


@pytest.fixture
def inputs(tmp_path: Path, scenario: Scenario) -> tuple[Path, Path]:
    return scenario.write_inputs(tmp_path)


def _updates_by_protocol(scenario: Scenario) -> dict[str, int]:
    names = {m.Protocol.UNISWAP_V2: "v2", m.Protocol.UNISWAP_V3: "v3"}
    counts = Counter(
        names[msg.event.protocol]
        for msg in scenario.builder.messages
        if isinstance(msg, m.PoolUpdate)
    )
    return dict(sorted(counts.items()))


def _raw_dump(tmp_path: Path, scenario: Scenario) -> Path:
    """The scenario's stream as a headerless raw dump, bytes as read from the socket."""
    raw = tmp_path / "stream.raw"
    raw.write_bytes(scenario.builder.raw_dump())
    return raw


def test_recording_and_raw_dump_give_the_same_expected_state(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    whitelist, initial = inputs
    recording, raw = tmp_path / "stream.arec", tmp_path / "stream.raw"
    scenario.builder.write_recording(recording)
    raw.write_bytes(scenario.builder.raw_dump())
    outs, summaries = [], []
    for path in (recording, raw):
        out = tmp_path / f"{path.name}.state.json"
        done = arena(
            path,
            "--whitelist",
            whitelist,
            "--initial-state",
            initial,
            "--state-out",
            out,
            "--json-summary",
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        outs.append(out.read_bytes())
        summaries.append(json.loads(done.stdout))
    assert outs[0] == outs[1]
    assert json.loads(outs[0]) == scenario.model.state_json()
    assert [s["format"] for s in summaries] == ["recording", "raw"]
    for summary in summaries:
        assert summary["frames"] == len(scenario.builder.messages)
        assert summary["blocks_applied"] == scenario.builder.blocks_applied == 10
        assert summary["blocks_reverted"] == scenario.builder.blocks_reverted == 2
        assert summary["reorgs"] == 1
        assert summary["divergences_by_kind"] == {"v3": 1}
        assert summary["discarded_by_reason"] == {}
        assert summary["unsynced"] is None
        assert summary["tip_block"] == 108
        assert summary["updates_by_protocol"] == _updates_by_protocol(scenario)
        assert summary["apply_latency"]["count"] == 10
        assert summary["revert_latency"]["count"] == 2
        assert 0 < summary["apply_latency"]["p50_us"] <= summary["apply_latency"]["p99_us"]
    assert summaries[1]["bytes_read"] == raw.stat().st_size


def test_table_summary_and_at_block(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    whitelist, initial = inputs
    raw = _raw_dump(tmp_path, scenario)
    out = tmp_path / "at103.json"
    done = arena(
        raw,
        "--whitelist",
        whitelist,
        "--initial-state",
        initial,
        "--state-out",
        out,
        "--at-block",
        "103",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_bytes()) == scenario.model.state_json(103)
    assert "blocks applied        3" in done.stdout
    assert "tip block             103" in done.stdout

    # Block 105 settled once before the reorg replaced it: that is where replay stops.
    done = arena(
        raw,
        "--whitelist",
        whitelist,
        "--initial-state",
        initial,
        "--state-out",
        out,
        "--at-block",
        "105",
        "--json-summary",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["blocks_reverted"] == 0
    assert json.loads(out.read_bytes())["block"] == 105


def test_at_block_never_settled_writes_nothing(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    whitelist, initial = inputs
    raw = _raw_dump(tmp_path, scenario)
    out = tmp_path / "never.json"
    done = arena(
        raw,
        "--whitelist",
        whitelist,
        "--initial-state",
        initial,
        "--state-out",
        out,
        "--at-block",
        "999",
    )
    assert done.returncode == 3
    assert "block 999 never settled" in done.stderr
    assert not out.exists()


def test_truncated_recording_writes_the_last_complete_block(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    whitelist, initial = inputs
    messages = scenario.builder.messages
    # Cut inside the third PoolUpdate frame of block 103 (after its first update).
    cut = (
        next(
            i
            for i, msg in enumerate(messages)
            if isinstance(msg, m.BeginBlock) and msg.block_number == 103
        )
        + 2
    )
    data = b"".join(encode_frame(msg) for msg in messages[:cut])
    partial = encode_frame(messages[cut])
    raw = tmp_path / "cut.raw"
    raw.write_bytes(data + partial[: len(partial) // 2])
    out = tmp_path / "cut.json"
    done = arena(
        raw,
        "--whitelist",
        whitelist,
        "--initial-state",
        initial,
        "--state-out",
        out,
        "--json-summary",
    )
    assert done.returncode == 1, done.stderr
    assert "data was lost" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["truncated_bytes"] == len(partial) // 2
    assert summary["ended_inside_block"] is True
    assert summary["discarded_by_reason"] == {"input_ended": 1}
    assert summary["bytes_read"] == len(data)
    assert json.loads(out.read_bytes()) == scenario.model.state_json(102, unsynced=True)


def test_undecodable_frame_discards_its_block(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    whitelist, initial = inputs
    messages = scenario.builder.messages
    bad = (
        next(
            i
            for i, msg in enumerate(messages)
            if isinstance(msg, m.BeginBlock) and msg.block_number == 102
        )
        + 1
    )
    end_102 = next(
        i
        for i, msg in enumerate(messages)
        if isinstance(msg, m.EndBlock) and msg.block_number == 102
    )
    frames = [encode_frame(msg) for msg in messages[: end_102 + 1]]
    payload = frames[bad][4:-1]  # one byte short: undecodable, stream_seq still readable
    frames[bad] = len(payload).to_bytes(4, "little") + payload
    raw = tmp_path / "bad.raw"
    raw.write_bytes(b"".join(frames))
    done = arena(raw, "--whitelist", whitelist, "--initial-state", initial, "--json-summary")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    assert summary["decode_errors"] == 1
    assert summary["discarded_by_reason"] == {"decode_error": 1}
    assert summary["unsynced"].startswith("decode_error: ")
    assert (summary["sync"], summary["unsynced_cause"]) == ("unsynced", "decode_error")
    assert summary["tip_block"] == 101


def test_without_an_initial_state_a_stream_ends_synced_and_no_stream_unseeded(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    """No state loaded: the first block taken seeds the arena (a good stream ends synced);
    a stream with no block at all (pings only) ends unseeded, which is no data lost either.
    (An input with no frames at all is refused: tests/arena/test_replay_inputs.py.)"""
    whitelist, _ = inputs
    empty = tmp_path / "pings.raw"
    empty.write_bytes(encode_frame(m.Ping()) * 3)
    summaries = []
    for recording in (_raw_dump(tmp_path, scenario), empty):
        done = arena(recording, "--whitelist", whitelist, "--json-summary")
        assert done.returncode == 0, done.stderr
        summaries.append(json.loads(done.stdout))
    seeded, unseeded = summaries
    assert (seeded["sync"], seeded["unsynced"], seeded["tip_block"]) == ("synced", None, 108)
    assert (unseeded["sync"], unseeded["unsynced"], unseeded["tip_block"]) == (
        "unseeded",
        None,
        None,
    )
    table = arena(empty, "--whitelist", whitelist)
    assert ["state", "unseeded"] in [line.split() for line in table.stdout.splitlines()]


def test_missing_file_and_bad_whitelist_fail_cleanly(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    whitelist, _ = inputs
    missing = tmp_path / "nope.arec"
    done = arena(missing, "--whitelist", whitelist)
    assert done.returncode == 2
    assert f"cannot read {missing}: No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr

    raw = _raw_dump(tmp_path, scenario)
    broken = tmp_path / "broken.json"
    broken.write_text('{"pools": [')
    for bad in (broken, tmp_path / "absent.json"):
        done = arena(raw, "--whitelist", bad)
        assert done.returncode == 2
        assert f"arena replay: whitelist {bad}" in done.stderr
        assert "Traceback" not in done.stderr

    done = arena(raw)
    assert done.returncode == 2
    assert "--whitelist is required" in done.stderr

    bad_state = tmp_path / "bad_state.json"
    bad_state.write_text('{"block": "x"}')
    done = arena(raw, "--whitelist", whitelist, "--initial-state", bad_state)
    assert done.returncode == 2
    assert f"state file {bad_state}" in done.stderr
    assert "Traceback" not in done.stderr


def test_sample_missing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(replay_command, "SAMPLES_DIR", tmp_path / "samples")
    assert main(["replay", "--sample"]) == 2
    err = capsys.readouterr().err
    assert "the bundled sample is missing" in err
    assert "sample.arec" in err


def test_sample_replays_when_present(
    tmp_path: Path,
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    scenario.builder.write_recording(samples / "sample.arec")
    (samples / "sample_whitelist.json").write_text(json.dumps(scenario.whitelist))
    (samples / "sample_initial_state.json").write_text(json.dumps(scenario.initial_state))
    monkeypatch.setattr(replay_command, "SAMPLES_DIR", samples)
    out = tmp_path / "sample_state.json"
    code = main(["replay", "--sample", "--state-out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.read_bytes()) == scenario.model.state_json()


# -- property: any stream of blocks and reorgs replays to the model's state -------------

_POOL_EVENTS = st.sampled_from(["sync_a", "sync_f", "swap_b", "mint_c", "burn_c"])


def _event(kind: str, draw_value: int) -> tuple[str, m.PoolUpdatePayload]:
    match kind:
        case "sync_a":
            return V2_A, sync(draw_value, draw_value + 1)
        case "sync_f":
            return V2_F, sync(draw_value + 2, draw_value)
        case "swap_b":
            tick = draw_value % 120 - 60
            return V3_B, swap(sqrt_at(tick) + draw_value, 10**18 + draw_value, tick)
        case "mint_c":
            return V3_C, liquidity(-60, 60, 10**12 + draw_value)
        case _:
            return V3_C, liquidity(-600, 600, -(10**9) - draw_value)


_BLOCK = st.lists(st.tuples(_POOL_EVENTS, st.integers(1, 10**9)), max_size=6)


@st.composite
def _streams(draw: st.DrawFn) -> StreamBuilder:
    model = Model(pools=initial_pools(), block=FIRST_BLOCK)
    model.record(FIRST_BLOCK)
    builder = StreamBuilder(model)
    for _ in range(draw(st.integers(1, 4))):
        tip = model.block
        for number in range(tip + 1, tip + 1 + draw(st.integers(1, 4))):
            builder.block(number, [_event(k, v) for k, v in draw(_BLOCK)])
        depth = draw(st.integers(0, min(3, model.block - FIRST_BLOCK)))
        if depth:
            reverted = list(range(model.block, model.block - depth, -1))
            new_count = draw(st.integers(0, depth + 1))
            start = reverted[-1]
            new = [(start + i, [_event(k, v) for k, v in draw(_BLOCK)]) for i in range(new_count)]
            builder.reorg(reverted, new, [])
    return builder


@pytest.fixture(scope="module")
def property_inputs(tmp_path_factory: pytest.TempPathFactory) -> PipelineConfig:
    path = tmp_path_factory.mktemp("replay-property")
    model = Model(pools=initial_pools(), block=FIRST_BLOCK)
    (path / "whitelist.json").write_text(json.dumps(whitelist_document()))
    (path / "initial.json").write_text(json.dumps(model.state_json()))
    # A 2-block ring: reorgs of depth 3 must come back through the RocksDB spill.
    return PipelineConfig(
        whitelist=path / "whitelist.json",
        initial_state=path / "initial.json",
        spill_path=path / "spill",
        ring_depth=2,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(builder=_streams())
def test_replayed_state_equals_the_model(
    property_inputs: PipelineConfig, builder: StreamBuilder
) -> None:
    with open_pipeline(property_inputs) as pipeline:
        for msg in builder.messages:
            pipeline.feed_frame(encode_message(msg))
        state = msgspec.to_builtins(export_state(pipeline.engine))
        assert pipeline.decode_errors == 0
        assert len(pipeline.revert_latency) == builder.blocks_reverted
    assert state == builder.model.state_json()


def test_metrics_port_in_use_fails_cleanly(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    whitelist, _ = inputs
    raw = _raw_dump(tmp_path, scenario)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = arena(raw, "--whitelist", whitelist, "--metrics-port", str(port))
    assert done.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_progress_line(tmp_path: Path, scenario: Scenario, tty: bool) -> None:
    whitelist, _ = scenario.write_inputs(tmp_path)
    out = _Terminal() if tty else io.StringIO()
    with open_pipeline(PipelineConfig(whitelist=whitelist)) as pipeline:
        for msg in scenario.builder.messages[:8]:
            pipeline.feed_frame(encode_message(msg))
        progress = replay_command._Progress(out, 1000, enabled=True)
        progress.update(pipeline, 250, force=True)
        progress.update(pipeline, 260)  # within the interval: not drawn
        progress.finish()
    line = "arena replay: 8 frames, 1 blocks,  25.0% of bytes"
    text = out.getvalue()
    if tty:
        assert text.startswith("\r\x1b[K" + line) and text.endswith("\n")
    else:
        assert text.startswith(line) and text.count("\n") == 1
