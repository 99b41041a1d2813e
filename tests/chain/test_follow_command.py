"""`arena follow` as a process: serves the socket, reports progress, records, stops cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devchain import TrafficGenerator
from devchain.chain_proof import Step, change_chain
from devchain.whitelist_file import write_whitelist
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.connection_state import ConnectionState
from exex_bridge.recording import open_recording
from exex_bridge.socket_source import SocketSource
from tests.chain.conftest import DevChain
from tests.exex_bridge.socket_streams import socket_path_in

pytestmark = pytest.mark.chain


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "follow.sock")


async def _line(stream: asyncio.StreamReader, pattern: str) -> str:
    """The first stderr line matching `pattern` (readiness from output, no sleeps)."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), 60)).decode()
        if not line:
            raise AssertionError(f"arena follow exited before printing {pattern!r}")
        if re.search(pattern, line):
            return line


async def test_follow_serves_records_and_stops_cleanly(
    clean_devchain: DevChain, tmp_path: Path, sock: str
) -> None:
    w3 = clean_devchain.w3
    whitelist = write_whitelist(clean_devchain.deployment, tmp_path / "w.json")
    record = tmp_path / "follow.arec"
    start = w3.eth.block_number + 1
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "follow",
        "--rpc",
        clean_devchain.node.url,
        "--socket",
        sock,
        "--whitelist",
        str(whitelist),
        "--from-block",
        str(start),
        "--poll-interval",
        "0.05",
        "--record",
        str(record),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    received: list[bytes] = []
    complete = asyncio.Event()
    generator = TrafficGenerator(w3, clean_devchain.deployment, seed=12)
    # 5 blocks, the 2 the reorg reverts and the 2 that replace them: the follower may see
    # the node between the replacement's blocks (the second then follows the envelope)
    ends_expected = 9

    async def read(source: SocketSource) -> None:
        reorged, ends = False, 0
        async for payload in source.frames():
            received.append(payload)
            msg = decode_message(payload)
            reorged |= isinstance(msg, m.ReorgComplete)
            ends += isinstance(msg, m.EndBlock)
            if reorged and ends == ends_expected:
                complete.set()

    try:
        await _line(process.stderr, rf"serving {re.escape(sock)} .*\(10 pools\)")
        async with SocketSource(sock, connect_timeout=30) as source:
            reader = asyncio.create_task(read(source))
            await asyncio.wait_for(source.wait_for_state(ConnectionState.CONNECTED), 30)
            await asyncio.to_thread(change_chain, generator, Step("blocks", 5))
            await _line(process.stderr, rf"block .*{start + 4}: \d+ updates")
            await asyncio.to_thread(change_chain, generator, Step("reorg", 2))
            await _line(process.stderr, rf"reorg at fork {start + 2}: 2 blocks reverted")
            await asyncio.wait_for(complete.wait(), 30)
        await asyncio.gather(reader, return_exceptions=True)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert re.search(rb"stopped at block \d+: 7 blocks, 1 reorgs", err)
    messages = [decode_message(p) for p in received]
    assert [getattr(msg, "stream_seq", None) for msg in messages] == list(
        range(1, len(messages) + 1)
    )
    begins = [msg for msg in messages if isinstance(msg, m.BeginBlock)]
    assert [b.block_number for b in begins if not b.is_revert][:5] == list(range(start, start + 5))
    assert [b.block_number for b in begins if b.is_revert] == [start + 4, start + 3]
    # The recording holds exactly the frames the socket client read.
    assert list(open_recording(record).frames()) == received
