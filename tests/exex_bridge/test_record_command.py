"""`arena record` as a real subprocess against the in-repo producer."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exex_bridge.codec import encode_message
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from exex_bridge.recording import open_recording
from tests.exex_bridge.socket_streams import committed_blocks, socket_path_in

WAIT = 60.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path)


class Recorder:
    """A running `arena record`, with its stderr read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def wait_for_line(self, wanted: Callable[[str], bool]) -> str:
        assert self.process.stderr is not None
        while True:
            raw = await asyncio.wait_for(self.process.stderr.readline(), WAIT)
            if not raw:
                raise AssertionError("arena record ended; stderr was:\n" + "".join(self.lines))
            line = raw.decode()
            self.lines.append(line)
            if wanted(line):
                return line

    async def wait_for_frames(self, n: int) -> None:
        await self.wait_for_line(lambda line: f" frames={n} " in line)

    async def finish(self) -> int:
        assert self.process.stderr is not None
        rest = await asyncio.wait_for(self.process.stderr.read(), WAIT)
        self.lines.extend(rest.decode().splitlines(keepends=True))
        return await asyncio.wait_for(self.process.wait(), WAIT)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


async def start_record(sock: str, out: Path, *extra: str) -> Recorder:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "record",
        "--socket",
        sock,
        "--out",
        str(out),
        "--progress-interval",
        "0.05",
        *extra,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    return Recorder(process)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_records_frames_verbatim_and_stops_cleanly_on_a_signal(
    sock: str, tmp_path: Path, signum: int
) -> None:
    messages = committed_blocks(StreamSequencer(), 21_000_000, 5, 6)  # 40 frames
    out = tmp_path / "stream.rec"
    async with FrameBroadcastServer(sock) as server:
        recorder = await start_record(sock, out)
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        await server.publish_many(messages)
        await recorder.wait_for_frames(40)
        recorder.process.send_signal(signum)
        code = await recorder.finish()
    assert code == 0, recorder.stderr
    summary = recorder.stderr.splitlines()[-1]
    assert "stopped" in summary
    assert " frames=40 " in summary
    assert " blocks=5 " in summary
    assert " last_block=21000004 " in summary
    reader = open_recording(out)
    assert reader.format == "recording"
    assert reader.metadata is not None
    assert reader.metadata.source == sock
    assert list(reader.frames()) == [encode_message(msg) for msg in messages]


async def test_max_frames_stops_by_itself_and_force_overwrites(sock: str, tmp_path: Path) -> None:
    messages = committed_blocks(StreamSequencer(), 1, 4, 8)  # 40 frames
    out = tmp_path / "first25.rec"
    out.write_bytes(b"an older recording")
    async with FrameBroadcastServer(sock) as server:
        recorder = await start_record(sock, out, "--max-frames", "25", "--force")
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        await server.publish_many(messages)
        code = await recorder.finish()
    assert code == 0, recorder.stderr
    assert list(open_recording(out).frames()) == [encode_message(m) for m in messages[:25]]


async def test_a_producer_restart_is_noted_and_recording_continues(
    sock: str, tmp_path: Path
) -> None:
    before = committed_blocks(StreamSequencer(), 1, 2, 3)  # 10 frames
    after = committed_blocks(StreamSequencer(), 3, 1, 3)  # 5 frames, stream_seq from 1 again
    out = tmp_path / "restart.rec"
    async with FrameBroadcastServer(sock) as server:
        recorder = await start_record(sock, out)
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        await server.publish_many(before)
        await recorder.wait_for_frames(10)
    await recorder.wait_for_line(lambda line: "recording continues" in line)
    async with FrameBroadcastServer(sock) as server:
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        await server.publish_many(after)
        await recorder.wait_for_frames(15)
        recorder.process.send_signal(signal.SIGINT)
        code = await recorder.finish()
    assert code == 0, recorder.stderr
    summary = recorder.stderr.splitlines()[-1]
    assert " reconnects=1 disconnects=1 " in summary
    assert list(open_recording(out).frames()) == [encode_message(m) for m in before + after]


async def test_refuses_to_overwrite_an_existing_file(sock: str, tmp_path: Path) -> None:
    out = tmp_path / "keep.rec"
    out.write_bytes(b"precious")
    recorder = await start_record(sock, out)
    assert await recorder.finish() == 2
    assert "exists; pass --force" in recorder.stderr
    assert out.read_bytes() == b"precious"


async def test_unwritable_output_is_a_clear_error(sock: str, tmp_path: Path) -> None:
    recorder = await start_record(sock, tmp_path / "no-such-dir" / "x.rec")
    assert await recorder.finish() == 2
    assert "cannot write" in recorder.stderr
    assert "Traceback" not in recorder.stderr


async def test_a_missing_socket_is_retried_then_given_up(sock: str, tmp_path: Path) -> None:
    out = tmp_path / "never.rec"
    recorder = await start_record(sock, out, "--connect-timeout", "0.5")
    assert await recorder.finish() == 2
    assert recorder.stderr.count("retrying with backoff") == 1
    assert f"could not connect to {sock}" in recorder.stderr
    assert "Traceback" not in recorder.stderr
    assert not out.exists()  # nothing was recorded: no header-only file left behind


async def test_a_socket_of_a_stranger_is_refused(sock: str, tmp_path: Path) -> None:
    out = tmp_path / "refused.rec"
    async with FrameBroadcastServer(sock) as server:
        if os.geteuid() == 0:
            os.chown(sock, 4242, 4242)
            recorder = await start_record(sock, out)
        else:
            recorder = await start_record(sock, out, "--socket-owner", str(os.getuid() + 1))
        code = await recorder.finish()
        assert server.stats.accepted == 0
    assert code == 2
    assert "refusing to read it" in recorder.stderr
    assert not out.exists()
