"""`arena replay` on what a user pipes in, on inputs that hold nothing, and when it is
stopped: streams are replayed, empty or foreign inputs are refused (exit 2), an
unwritable --state-out is refused before any work, SIGTERM/SIGINT stop cleanly (exit 4)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from exex_bridge import messages as m
from exex_bridge.codec import encode_frame
from tests.arena.replay_scenario import Scenario, standard_scenario

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # bound for any wait on the process; events normally take milliseconds


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return standard_scenario()


@pytest.fixture
def inputs(tmp_path: Path, scenario: Scenario) -> tuple[Path, Path]:
    return scenario.write_inputs(tmp_path)


def replay_args(
    source: str | Path, whitelist: Path, initial: Path, *extra: str | Path
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sidecar.cli",
        "replay",
        str(source),
        "--whitelist",
        str(whitelist),
        "--initial-state",
        str(initial),
        "--no-progress",
        *map(str, extra),
    ]


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, cwd=ROOT, timeout=WAIT, check=False, **kwargs
    )  # type: ignore[call-overload, no-any-return]


def final_state(path: Path) -> dict[str, object]:
    state: dict[str, object] = json.loads(path.read_bytes())
    return state


def test_a_pipe_replays_like_the_file(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    """`arena replay <(cat s.arec)`: a /dev/fd path onto a pipe."""
    recording = tmp_path / "s.arec"
    scenario.builder.write_recording(recording)
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: _write_all(write_fd, recording.read_bytes()))
    writer.start()
    out = tmp_path / "piped.json"
    done = run(
        replay_args(f"/dev/fd/{read_fd}", *inputs, "--state-out", out, "--json-summary"),
        pass_fds=(read_fd,),
    )
    os.close(read_fd)
    writer.join(WAIT)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == len(scenario.builder.messages)
    assert summary["format"] == "recording"
    assert final_state(out) == scenario.model.state_json()


def test_stdin_replays_like_the_file(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    """`cat s.raw | arena replay /dev/stdin`."""
    out = tmp_path / "stdin.json"
    done = run(
        replay_args("/dev/stdin", *inputs, "--state-out", out),
        input=scenario.builder.raw_dump().decode("latin-1"),
        encoding="latin-1",
    )
    assert done.returncode == 0, done.stderr
    assert final_state(out) == scenario.model.state_json()


def test_a_fifo_is_opened_once(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path]
) -> None:
    fifo = tmp_path / "stream.fifo"
    os.mkfifo(fifo)
    data = scenario.builder.raw_dump()
    writer = threading.Thread(target=lambda: _write_all(os.open(fifo, os.O_WRONLY), data))
    writer.start()
    out = tmp_path / "fifo.json"
    done = run(replay_args(fifo, *inputs, "--state-out", out))
    writer.join(WAIT)
    assert done.returncode == 0, done.stderr
    assert final_state(out) == scenario.model.state_json()


@pytest.mark.parametrize("source", ["empty", "/dev/null"])
def test_an_input_without_frames_is_refused(
    tmp_path: Path, inputs: tuple[Path, Path], source: str
) -> None:
    path = tmp_path / "empty.arec" if source == "empty" else Path(source)
    if source == "empty":
        path.write_bytes(b"")
    out = tmp_path / "never.json"
    done = run(replay_args(path, *inputs, "--state-out", out))
    assert done.returncode == 2
    assert "holds no frames" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_random_bytes_are_not_a_recording(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    garbage = tmp_path / "random.bin"
    garbage.write_bytes(os.urandom(65536) + b"\xff\xff\xff\xff")
    garbage.write_bytes(b"\xff\xff\xff\x7f" + garbage.read_bytes())
    done = run(replay_args(garbage, *inputs))
    assert done.returncode == 2
    assert "neither a recording nor a raw dump" in done.stderr
    assert "truncated" not in done.stdout + done.stderr


@pytest.mark.parametrize("where", ["missing/dir/state.json", "a-directory"])
def test_an_unwritable_state_out_is_refused_before_replaying(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path], where: str
) -> None:
    raw = tmp_path / "s.raw"
    raw.write_bytes(scenario.builder.raw_dump())
    (tmp_path / "a-directory").mkdir()
    done = run(replay_args(raw, *inputs, "--state-out", tmp_path / where))
    assert done.returncode == 2
    assert where.split("/", maxsplit=1)[0] in done.stderr
    assert done.stdout == ""  # refused before anything was replayed or summarized
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_cleanly_with_the_last_complete_block(
    tmp_path: Path, scenario: Scenario, inputs: tuple[Path, Path], sig: signal.Signals
) -> None:
    """Two blocks arrive on a pipe that then stays open and quiet; the signal comes while
    the replay waits. State of block 102 written, marked unsynced; no temporary spill
    left behind; exit 4."""
    messages = scenario.builder.messages
    end_102 = next(
        i
        for i, msg in enumerate(messages)
        if isinstance(msg, m.EndBlock) and msg.block_number == 102
    )
    first = b"".join(encode_frame(msg) for msg in messages[: end_102 + 1])
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = tmp_path / "stopped.json"
    read_fd, write_fd = os.pipe()
    env = {**os.environ, "TMPDIR": str(temp)}
    args = replay_args(f"/dev/fd/{read_fd}", *inputs, "--state-out", out, "--metrics-port", "0")
    with subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        pass_fds=(read_fd,),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        os.close(read_fd)
        assert proc.stderr is not None
        os.write(write_fd, first)  # the replay reads the first bytes before serving metrics
        url = _metrics_url(proc.stderr)
        _wait_for_blocks(url, 2)
        assert os.listdir(temp), "the replay's temporary spill exists while it runs"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=WAIT)
    os.close(write_fd)
    assert proc.returncode == 4, stderr
    assert f"stopped by {sig.name}" in stderr
    assert "Traceback" not in stderr
    assert final_state(out) == scenario.model.state_json(102, unsynced=True)
    assert os.listdir(temp) == []
    assert "blocks applied" in stdout


def _write_all(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _metrics_url(stderr: object) -> str:
    deadline = time.monotonic() + WAIT
    for line in stderr:  # type: ignore[attr-defined]
        found = re.search(r"serving metrics at (\S+)", line)
        if found:
            return found.group(1)
        assert time.monotonic() < deadline
    raise AssertionError("the replay never served metrics")


def _wait_for_blocks(url: str, blocks: int) -> None:
    """Scrape until the replay applied `blocks` blocks (bounded by WAIT)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(url, timeout=WAIT).read().decode()
        found = re.search(r"^arena_block_applied_total (\S+)$", text, re.M)
        if found and float(found.group(1)) >= blocks:
            return
    raise AssertionError(f"the replay did not apply {blocks} blocks within {WAIT} s")
