"""The in-repo stand-in for the ExEx socket server, and the stream_seq sequencer."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from exex_bridge import messages as m
from exex_bridge.codec import encode_frame
from exex_bridge.errors import NotASocketError, SocketServeError
from exex_bridge.framing import iter_frames
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from tests.exex_bridge.socket_streams import committed_blocks, socket_path_in, swap_event

WAIT = 30.0


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), WAIT)


async def test_binds_mode_0666_and_replaces_a_stale_socket(sock: str) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()  # leaves the socket file behind, as a crashed producer does
    async with FrameBroadcastServer(sock) as server:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
        _, writer = await asyncio.open_unix_connection(sock)
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        writer.close()
    assert not os.path.exists(sock)


async def test_refuses_to_replace_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "precious"
    path.write_bytes(b"keep me")
    with pytest.raises(NotASocketError):
        await FrameBroadcastServer(path).start()
    assert path.read_bytes() == b"keep me"


async def test_broadcasts_every_frame_to_every_client(sock: str) -> None:
    messages = committed_blocks(StreamSequencer(), 1, 3, 4)
    async with FrameBroadcastServer(sock) as server:
        clients = [await asyncio.open_unix_connection(sock) for _ in range(3)]
        await asyncio.wait_for(server.wait_for_clients(3), WAIT)
        await server.publish_many(messages)
        await asyncio.wait_for(server.flush(), WAIT)
    for reader, writer in clients:
        data = await read_to_eof(reader)
        writer.close()
        assert data == b"".join(encode_frame(msg) for msg in messages)
    assert server.stats.accepted == 3
    assert server.stats.published == len(messages)


async def test_a_lagging_client_loses_messages_and_is_disconnected(sock: str) -> None:
    messages = committed_blocks(StreamSequencer(), 1, 1, 20)  # 22 messages
    async with FrameBroadcastServer(sock, client_queue=10) as server:
        reader, writer = await asyncio.open_unix_connection(sock)
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        # All 22 are queued before the client's sender can run: the 11th overflows, the
        # client gets the 10 queued before it, then EOF, never anything after the gap.
        await server.publish_many(messages)
        data = await read_to_eof(reader)
        writer.close()
        stats = server.stats
    got = [bytes(p) for p in iter_frames(data)]
    assert got == [encode_frame(msg)[4:] for msg in messages[:10]]
    assert stats.lagging_disconnects == 1
    assert stats.dropped == 1
    assert stats.clients == 0


def test_sequencer_builds_a_committed_block() -> None:
    seq = StreamSequencer()
    events = [swap_event(7, i) for i in range(3)]
    block = seq.block(7, events, block_timestamp=99, base_fee_per_gas=5)
    assert block[0] == m.BeginBlock(
        stream_seq=1, block_number=7, block_timestamp=99, base_fee_per_gas=5, is_revert=False
    )
    assert block[1:4] == [
        m.PoolUpdate(stream_seq=i + 2, event=event) for i, event in enumerate(events)
    ]
    assert block[4] == m.EndBlock(stream_seq=5, block_number=7, num_updates=3)
    assert seq.next_seq == 6


def test_sequencer_numbers_a_reorg_envelope_and_allows_gaps() -> None:
    seq = StreamSequencer(start=10)
    old = m.ReorgRange(first_block=5, last_block=5, block_count=1)
    new = m.ReorgRange(first_block=5, last_block=6, block_count=2)
    start = seq.reorg_start(old, new)
    reverted = seq.block(5, [swap_event(5, 0)], is_revert=True)
    final = m.V2ReservesFinal(pool_id=m.PoolAddress(value=b"\x01" * 20), reserve0=1, reserve1=2)
    epilogue = seq.epilogue(6, final, final_tip_timestamp=1234)
    seq.skip(5)
    complete = seq.reorg_complete(6)
    assert start.stream_seq == 10
    assert [msg.stream_seq for msg in reverted] == [11, 12, 13]
    assert isinstance(reverted[0], m.BeginBlock) and reverted[0].is_revert
    assert epilogue == m.ReorgEpilogue(
        stream_seq=14, final_tip_block=6, final_tip_timestamp=1234, update=final
    )
    assert complete == m.ReorgComplete(stream_seq=20, final_tip_block=6)


def test_sequencer_end_block_counts_updates_unless_told_otherwise() -> None:
    seq = StreamSequencer()
    seq.begin_block(1)
    seq.pool_update(swap_event(1, 0))
    seq.pool_update(swap_event(1, 1))
    assert seq.end_block(1).num_updates == 2
    seq.begin_block(2)
    assert seq.end_block(2).num_updates == 0
    seq.begin_block(3)
    assert seq.end_block(3, num_updates=9).num_updates == 9  # a deliberately bad block


@pytest.mark.parametrize("where", ["missing-folder", "too-long"])
async def test_a_path_it_cannot_listen_on_is_a_socket_serve_error(
    tmp_path: Path, where: str
) -> None:
    path = tmp_path / "absent" / "x.sock" if where == "missing-folder" else tmp_path / ("s" * 120)
    with pytest.raises(SocketServeError, match=r"^cannot serve the socket .+: .+"):
        await FrameBroadcastServer(str(path)).start()
