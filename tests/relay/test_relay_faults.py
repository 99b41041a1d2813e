"""The relay against a real nats-server with JetStream and a real Unix socket producer:
deduplication, a restarted producer, a restarted NATS server, a full buffer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from arena.pipeline import PipelineConfig, open_pipeline
from arena.sync_state import LossCause, SyncState
from exex_bridge import messages as m
from exex_bridge.codec import SEQUENCED_TAGS, encode_message
from exex_bridge.framing import frame
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from exex_bridge.relay_stream import (
    MSG_ID_HEADER,
    BatchId,
    MessageId,
    frames_subject,
    stream_name,
)
from tests.arena.replay_scenario import V2_A, standard_scenario, sync
from tests.nats_server import NatsServer
from tests.relay.long_stream import long_stream
from tests.relay.relay_world import last_sequence, read_stream, running_relay, until


def _framed(payloads: list[bytes]) -> list[bytes]:
    return [frame(p) for p in payloads]


async def _stored(url: str, chain: str) -> int:
    """Frames the chain's stream holds."""
    return len((await read_stream(url, chain)).payloads)


async def test_a_frame_sent_twice_is_stored_once(tmp_path: Path) -> None:
    frames = [encode_message(msg) for msg in standard_scenario().builder.messages]
    repeated = [*frames[:10], frames[9], *frames[10:]]  # the producer repeats one frame
    async with (
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(tmp_path / "s.sock") as producer,
        running_relay(server.url, tmp_path / "s.sock", "dedup") as relay,
    ):
        await producer.wait_for_clients(1)
        await producer.publish_many(_framed(repeated))
        await until(lambda: relay.value("arena_relay_frames_acked_total") == len(repeated))
        assert relay.value("arena_relay_frames_duplicate_total") == 1
        assert await _stored(server.url, "dedup") == len(frames)
        contents = await read_stream(server.url, "dedup")
    assert contents.payloads == frames
    assert contents.restarts == []


async def test_publishing_the_same_message_id_again_keeps_one_copy(tmp_path: Path) -> None:
    frames = [encode_message(msg) for msg in standard_scenario().builder.messages]
    async with (
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(tmp_path / "s.sock") as producer,
        running_relay(server.url, tmp_path / "s.sock", "again") as relay,
    ):
        await producer.wait_for_clients(1)
        await producer.publish_many(_framed(frames))
        await until(lambda: relay.value("arena_relay_frames_acked_total") == len(frames))
        publisher = relay.relay.publisher
        assert publisher is not None
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            last = await js.get_last_msg(stream_name("again"), frames_subject("again"))
            again = await js.publish(
                frames_subject("again"),
                frames[-1],
                headers={MSG_ID_HEADER: last.headers[MSG_ID_HEADER]},
            )
        finally:
            await nc.close()
        assert again.duplicate
        assert await _stored(server.url, "again") == len(frames)


async def test_a_restarted_producer_is_marked_and_the_consumer_becomes_unsynced(
    tmp_path: Path,
) -> None:
    scenario = standard_scenario()
    whitelist, initial = scenario.write_inputs(tmp_path)
    first = [encode_message(msg) for msg in scenario.builder.messages]
    seq = StreamSequencer()  # the new producer session counts from 1 again
    second = [
        encode_message(msg)
        for number in (109, 110)
        for msg in seq.block(number, [_v2_update(number)])
    ]
    sock = tmp_path / "s.sock"
    async with NatsServer(jetstream_dir=tmp_path / "js") as server:
        async with running_relay(server.url, sock, "restart") as relay:
            async with FrameBroadcastServer(sock) as producer:
                await producer.wait_for_clients(1)
                await producer.publish_many(_framed(first))
                await until(lambda: relay.value("arena_relay_frames_acked_total") == len(first))
            async with FrameBroadcastServer(sock) as producer:
                await producer.wait_for_clients(1)
                await producer.publish_many(_framed(second))
                total = len(first) + len(second)
                await until(lambda: relay.value("arena_relay_frames_acked_total") == total)
            assert relay.value("arena_relay_producer_restarts_total") == 1
        contents = await read_stream(server.url, "restart")
        assert contents.payloads == first + second
        (restart,) = contents.restarts
        assert contents.first_frame_of(restart) == len(first)  # the new session's first
        last = contents.sequences[-1]

        settled: list[SyncState] = []
        with open_pipeline(PipelineConfig(whitelist=whitelist, initial_state=initial)) as pipeline:
            pipeline.subscribe_settled(lambda s: settled.append(s.sync))
            source = JetStreamSource(
                server.url,
                "restart",
                "arena",
                stop_seq=last,
                on_restart=lambda at: pipeline.on_producer_restart(f"restart at {at}"),
            )
            async for payload in source.frames():
                pipeline.feed_frame(payload)
            loss = pipeline.engine.sync_status.loss
            assert loss is not None and loss.cause is LossCause.PRODUCER_RESTART
            restarts = pipeline.metrics.registry.get_sample_value(
                "arena_stream_producer_restarts_total"
            )
    assert restarts == 1
    # trustworthy up to the restart; nothing after it is vouched for
    assert SyncState.SYNCED in settled[:-2]
    assert settled[-2:] == [SyncState.UNSYNCED, SyncState.UNSYNCED]


def _v2_update(block: int) -> m.PoolUpdateMessage:
    return m.PoolUpdateMessage(
        pool_id=m.PoolAddress(value=bytes.fromhex(V2_A[2:])),
        protocol=m.Protocol.UNISWAP_V2,
        update_type=m.UpdateType.SWAP,
        block_number=block,
        block_timestamp=block,
        tx_index=0,
        log_index=0,
        is_revert=False,
        update=sync(block, block + 1),
    )


async def test_a_nats_restart_loses_nothing(tmp_path: Path) -> None:
    frames = long_stream(6_000).frames
    half = len(frames) // 2
    sock = tmp_path / "s.sock"
    async with (
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock, client_queue=len(frames) + 1) as producer,
        running_relay(server.url, sock, "natsdown") as relay,
    ):
        await producer.wait_for_clients(1)
        await producer.publish_many(_framed(frames[:half]))
        await until(lambda: relay.value("arena_relay_frames_acked_total") == half)
        await server.stop()
        await producer.publish_many(_framed(frames[half:]))
        await until(lambda: relay.value("arena_relay_frames_received_total") == len(frames))
        assert relay.value("arena_relay_frames_buffered") > 0
        await server.start()
        await until(lambda: relay.value("arena_relay_frames_acked_total") >= len(frames))
        assert relay.value("arena_relay_nats_reconnects_total") >= 1
        assert relay.value("arena_relay_publish_recoveries_total") >= 1
        assert relay.value("arena_relay_frames_dropped_total") == 0
        contents = await read_stream(server.url, "natsdown")
    assert contents.payloads == frames
    messages = sorted(set(contents.sequences))  # each message stored once, in order
    assert contents.sequences == sorted(contents.sequences)
    assert messages == list(range(1, len(messages) + 1))
    assert len(messages) < len(frames) // 4  # frames travel in batches


async def test_a_full_buffer_drops_counted_frames_and_the_consumer_sees_the_gap(
    tmp_path: Path,
) -> None:
    scenario = standard_scenario()
    whitelist, initial = scenario.write_inputs(tmp_path)
    frames = [encode_message(msg) for msg in scenario.builder.messages]
    cut, buffer, back = 20, 10, 45  # NATS is down while frames[cut:back] arrive
    # Whole batches are held or dropped: of frames[cut:back] the first `held` are kept
    # (at most `buffer`), every one after is dropped until NATS is back.
    sock = tmp_path / "s.sock"
    async with (
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock) as producer,
        running_relay(server.url, sock, "full", max_buffered=buffer) as relay,
    ):
        await producer.wait_for_clients(1)
        await producer.publish_many(_framed(frames[:cut]))
        await until(lambda: relay.value("arena_relay_frames_acked_total") == cut)
        await server.stop()
        await producer.publish_many(_framed(frames[cut:back]))
        await until(
            lambda: (
                relay.value("arena_relay_frames_received_total") == back
                and relay.value("arena_relay_frames_buffered")
                + relay.value("arena_relay_frames_dropped_total")
                == back - cut
            )
        )
        dropped = int(relay.value("arena_relay_frames_dropped_total"))
        held = back - cut - dropped
        assert 0 <= held <= buffer and dropped > 0
        await server.start()
        await until(lambda: relay.value("arena_relay_frames_acked_total") == cut + held)
        await producer.publish_many(_framed(frames[back:]))
        stored = cut + held + len(frames) - back
        await until(lambda: relay.value("arena_relay_frames_acked_total") == stored)
        contents = await read_stream(server.url, "full")
    # nothing lost silently: every frame is stored, or counted as dropped
    assert contents.payloads == frames[: cut + held] + frames[back:]
    with open_pipeline(PipelineConfig(whitelist=whitelist, initial_state=initial)) as pipeline:
        for payload in contents.payloads:
            pipeline.feed_frame(payload)
        loss = pipeline.engine.sync_status.loss
        assert loss is not None and loss.cause is LossCause.SEQ_GAP
        lost = pipeline.metrics.registry.get_sample_value("arena_stream_lost_messages_total")
    assert lost == dropped


async def test_the_consumer_continues_across_a_nats_restart(tmp_path: Path) -> None:
    frames = long_stream(6_000).frames
    sock = tmp_path / "s.sock"
    got: list[bytes] = []
    async with (
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock, client_queue=len(frames) + 1) as producer,
        running_relay(server.url, sock, "consumer") as relay,
    ):
        await producer.wait_for_clients(1)
        await producer.publish_many(_framed(frames))
        await until(lambda: relay.value("arena_relay_frames_acked_total") == len(frames))
        last = await last_sequence(server.url, "consumer")
        source = JetStreamSource(server.url, "consumer", "arena", stop_seq=last, batch=16)
        async with asyncio.timeout(120):
            async for payload in source.frames():
                got.append(payload)
                if len(got) == len(frames) // 2:
                    await server.restart()
    assert got == frames


async def test_a_restarted_relay_continues_the_ids_and_counts_what_it_missed(
    tmp_path: Path,
) -> None:
    frames = [encode_message(msg) for msg in standard_scenario().builder.messages]
    first, missed = 20, 5  # relayed by the first relay; sent while no relay listened
    sock = tmp_path / "s.sock"
    async with (
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock) as producer,
    ):
        async with running_relay(server.url, sock, "again") as relay:
            await producer.wait_for_clients(1)
            await producer.publish_many(_framed(frames[:first]))
            await until(lambda: relay.value("arena_relay_frames_acked_total") == first)
        await producer.publish_many(_framed(frames[first : first + missed]))  # nobody reads
        async with running_relay(server.url, sock, "again") as relay:
            await producer.wait_for_clients(1)
            await producer.publish_many(_framed(frames[first + missed :]))
            rest = len(frames) - first - missed
            await until(lambda: relay.value("arena_relay_frames_acked_total") == rest)
            assert relay.relay.epoch == 0  # the ids continue: no restart is marked
            assert relay.value("arena_relay_producer_gap_messages_total") == missed
            assert relay.value("arena_relay_producer_restarts_total") == 0
        contents = await read_stream(server.url, "again")
        nc = await nats.connect(server.url)
        try:
            last = await nc.jetstream().get_last_msg(stream_name("again"), frames_subject("again"))
        finally:
            await nc.close()
    assert contents.payloads == frames[:first] + frames[first + missed :]
    assert contents.restarts == []
    assert last.headers is not None
    last_id = BatchId.parse(last.headers[MSG_ID_HEADER])
    assert last_id is not None and last_id.last == MessageId(0, len(frames))


async def test_a_restarted_relay_stores_frames_the_producer_sends_again_once(
    tmp_path: Path,
) -> None:
    frames = [encode_message(msg) for msg in standard_scenario().builder.messages]
    ends = [i for i, f in enumerate(frames) if int.from_bytes(f[:4], "little") == 3]
    settled = ends[1] + 1  # the first relay's last message: frames[settled:first]
    first = settled + 3
    sock = tmp_path / "s.sock"
    async with (
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock) as producer,
    ):
        # A long linger: the tail after the block's end is one message, cut by the stop
        # (its frames are counted received only when cut: wait until the relay read it).
        tail_seq = max(
            int.from_bytes(f[4:12], "little")
            for f in frames[:first]
            if int.from_bytes(f[:4], "little") in SEQUENCED_TAGS
        )
        async with running_relay(server.url, sock, "resend", linger=30.0) as relay:
            await producer.wait_for_clients(1)
            await producer.publish_many(_framed(frames[:first]))
            await until(lambda: relay.relay.last_seq == tail_seq)
        before = await read_stream(server.url, "resend")
        assert before.payloads == frames[:first]
        assert before.first_frame_of(before.sequences[-1]) == settled
        # The producer sends the tail again, then the rest: batches cut anew.
        async with running_relay(server.url, sock, "resend") as relay:
            await producer.wait_for_clients(1)
            await producer.publish_many(_framed(frames[settled:]))
            rest = len(frames) - settled
            await until(lambda: relay.value("arena_relay_frames_acked_total") == rest)
            assert relay.value("arena_relay_frames_duplicate_total") == first - settled
            assert relay.value("arena_relay_producer_restarts_total") == 0
        contents = await read_stream(server.url, "resend")
    assert contents.payloads == frames
    assert contents.restarts == []
