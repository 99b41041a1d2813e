"""Two chains side by side on one NATS server: two relays (`--chain a`, `--chain b`), two
arenas each consuming its own stream and publishing opportunities on its own subject.
No cross-talk: each arena's state equals a straight replay of its own chain's frames, and
each subject carries exactly its own arena's opportunities."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
from nats.aio.msg import Msg

from exex_bridge.framing import frame
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.recording import open_recording
from sidecar.commands.replay import SAMPLES_DIR
from tests.nats_server import NatsServer
from tests.relay.processes import ArenaProcess, scrape_until, straight_replay

DEADLINE = 240.0


def _sample_frames() -> list[bytes]:
    with open_recording(SAMPLES_DIR / "sample.arec") as reader:
        return [bytes(f) for f in reader.frames()]


def _cut_at_a_block_end(frames: list[bytes], near: int) -> list[bytes]:
    """The frames up to the first EndBlock at or after `near` (tag 3)."""
    for i in range(near, len(frames)):
        if int.from_bytes(frames[i][:4], "little") == 3:
            return frames[: i + 1]
    raise AssertionError("no EndBlock after the cut")


async def test_two_chains_on_one_server_do_not_mix(tmp_path: Path) -> None:
    whitelist = SAMPLES_DIR / "sample_whitelist.json"
    initial = SAMPLES_DIR / "sample_initial_state.json"
    full = _sample_frames()
    chains = {"a": full, "b": _cut_at_a_block_end(full, len(full) // 2)}
    expected = {
        chain: straight_replay(frames, whitelist, initial, tmp_path / f"straight-{chain}.json")
        for chain, frames in chains.items()
    }
    assert expected["a"]["block"] != expected["b"]["block"]
    received: dict[str, list[dict[str, object]]] = {"a": [], "b": [], "other": []}

    async def on_opportunity(msg: Msg) -> None:
        chain = msg.subject.split(".")[1]
        received[chain if chain in chains else "other"].append(json.loads(msg.data))

    async with asyncio.timeout(DEADLINE), NatsServer(jetstream_dir=tmp_path / "js") as server:
        nc = await nats.connect(server.url)
        await nc.subscribe("arena.*.opportunities", cb=on_opportunity)
        await nc.flush()
        relays, arenas, producers = [], {}, []
        try:
            for chain, frames in chains.items():
                sock = tmp_path / f"{chain}.sock"
                producer = FrameBroadcastServer(sock)
                await producer.start()
                producers.append(producer)
                relays.append(
                    await ArenaProcess(
                        "relay", "--socket", sock, "--nats", server.url, "--chain", chain
                    ).start()
                )
                await producer.wait_for_clients(1)
                await producer.publish_many(frame(f) for f in frames)
                arenas[chain] = await ArenaProcess(
                    "run",
                    "--jetstream",
                    server.url,
                    "--chain",
                    chain,
                    "--nats",
                    server.url,
                    "--whitelist",
                    whitelist,
                    "--initial-state",
                    initial,
                    "--spill-path",
                    tmp_path / f"spill-{chain}",
                    "--metrics-port",
                    "0",
                    "--opportunities-out",
                    tmp_path / f"{chain}.jsonl",
                    "--state-out",
                    tmp_path / f"{chain}.json",
                ).start()
            for chain, arena in arenas.items():
                url = await arena.metrics_url()
                await scrape_until(url, "arena_state_tip_block", expected[chain]["block"])
            for arena in arenas.values():
                assert await arena.stop() == 0, arena.log
            for relay in relays:
                assert await relay.stop() == 0, relay.log
            written = {
                chain: [
                    json.loads(line)
                    for line in (tmp_path / f"{chain}.jsonl").read_text().splitlines()
                ]
                for chain in chains
            }
            while any(len(received[c]) < len(written[c]) for c in chains):
                await asyncio.sleep(0.05)  # the subscription drains what was published
            await nc.flush()
        finally:
            await nc.close()
            for producer in producers:
                await producer.close()
    for chain in chains:
        assert json.loads((tmp_path / f"{chain}.json").read_bytes()) == expected[chain]
        assert received[chain] == written[chain]
        assert {o["chain"] for o in received[chain]} <= {chain}
    assert written["a"] and written["b"] and len(written["a"]) > len(written["b"])
    assert received["other"] == []
