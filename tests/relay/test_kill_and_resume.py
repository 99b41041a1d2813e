"""A 50 000-frame stream with reorg envelopes through `arena relay` → JetStream →
`arena run --jetstream`, the arena SIGKILLed at five random points and restarted with
`--resume` each time: its final state equals a straight replay of the same frames, and no
run saw a gap, a loss or a restart."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from pathlib import Path

import nats
from nats.js import JetStreamContext

from exex_bridge.framing import frame
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.relay_stream import default_durable, stream_name
from tests.arena.replay_scenario import whitelist_document
from tests.nats_server import NatsServer
from tests.relay.long_stream import LongStream, long_stream
from tests.relay.processes import ArenaProcess, scrape_until, straight_replay

FRAMES = 50_000
KILLS = 5
DEADLINE = 300.0
CHAIN = "killtest"
LOSS_WORDS = ("jumped", "discarded", "stream loss", "producer restart", "unsynced")


def _inputs(tmp_path: Path, stream: LongStream) -> tuple[Path, Path]:
    whitelist, initial = tmp_path / "whitelist.json", tmp_path / "initial.json"
    whitelist.write_text(json.dumps(whitelist_document()))
    initial.write_text(json.dumps(stream.initial_state))
    return whitelist, initial


async def _delivered(js: JetStreamContext) -> int:
    info = await js.consumer_info(stream_name(CHAIN), default_durable(CHAIN))
    return info.delivered.stream_seq or 0


async def _until_delivered(js: JetStreamContext, target: int) -> None:
    while await _delivered(js) < target:
        await asyncio.sleep(0.02)  # polling the server's count, not waiting for an outcome


async def test_sigkill_at_five_points_and_resume_loses_nothing(tmp_path: Path) -> None:
    stream = long_stream(FRAMES)
    frames = stream.frames
    whitelist, initial = _inputs(tmp_path, stream)
    sock, out = tmp_path / "exex.sock", tmp_path / "state.json"
    arena_args: list[str | Path] = [
        "run",
        "--chain",
        CHAIN,
        "--whitelist",
        whitelist,
        "--initial-state",
        initial,
        "--checkpoint-every",
        "25",
        "--checkpoint-path",
        tmp_path / "checkpoints",
        "--spill-path",
        tmp_path / "spill",
        "--resume",
        "--metrics-port",
        "0",
    ]
    rng = random.Random(2026)
    logs: list[str] = []
    async with asyncio.timeout(DEADLINE):
        async with (
            NatsServer(jetstream_dir=tmp_path / "js") as server,
            FrameBroadcastServer(sock, client_queue=len(frames) + 1) as producer,
        ):
            relay = await ArenaProcess(
                "relay",
                "--socket",
                sock,
                "--nats",
                server.url,
                "--chain",
                CHAIN,
                "--metrics-port",
                "0",
            ).start()
            relay_url = await relay.metrics_url()
            await producer.wait_for_clients(1)
            await producer.publish_many(frame(f) for f in frames)
            relayed = await scrape_until(relay_url, "arena_relay_frames_acked_total", len(frames))
            nc = await nats.connect(server.url)
            try:
                # Kill points among the stream's messages (each a batch of frames): the
                # arena is killed wherever it stands inside its fetched messages.
                messages = (await nc.jetstream().stream_info(stream_name(CHAIN))).state.messages
                assert messages < len(frames) // 4  # the frames travel in batches
                margin = messages // 50
                targets = sorted(rng.sample(range(margin, messages - margin), KILLS))
                for target in targets:
                    arena = await ArenaProcess(*arena_args, "--jetstream", server.url).start()
                    await arena.wait_for("consuming EXEX_KILLTEST as arena-killtest")
                    await _until_delivered(nc.jetstream(), target)
                    assert await arena.stop(signal.SIGKILL) == -signal.SIGKILL
                    logs.append(arena.log)
                final = await ArenaProcess(
                    *arena_args, "--jetstream", server.url, "--state-out", out
                ).start()
                await final.wait_for("arena run: resumed at block")
                final_url = await final.metrics_url()
                await scrape_until(final_url, "arena_state_tip_block", stream.final_state["block"])
                # the consumer's position reaches the stream's last message (at a heartbeat)
                samples = await scrape_until(final_url, "arena_jetstream_stream_sequence", messages)
                assert await final.stop() == 0, final.log
                logs.append(final.log)
            finally:
                await nc.close()
            assert await relay.stop() == 0, relay.log
    assert json.loads(out.read_bytes()) == stream.final_state
    assert json.loads(out.read_bytes()) == straight_replay(
        frames, whitelist, initial, tmp_path / "straight.json"
    )
    assert samples["arena_state_synced"] == 1
    assert samples["arena_state_tip_block"] == stream.final_state["block"]
    assert samples["arena_jetstream_messages_missing_total"] == 0
    assert samples.get("arena_stream_seq_gaps_total", 0) == 0
    assert samples.get("arena_stream_producer_restarts_total", 0) == 0
    assert not [k for k, v in samples.items() if k.startswith("arena_block_discarded") and v]
    assert relayed["arena_relay_frames_dropped_total"] == 0
    assert relayed["arena_relay_frames_received_total"] == len(frames)
    for log in logs:
        assert "Traceback" not in log
        lost = [line for line in log.splitlines() if any(w in line for w in LOSS_WORDS)]
        assert not lost, lost
    # every run after the first resumed from a checkpoint of its predecessor
    assert all("resumed from the checkpoint of block" in log for log in logs[1:])
