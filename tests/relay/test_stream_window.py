"""A window of the relayed stream replayed with `arena run --jetstream --from-seq
--to-seq`: two consecutive windows, the second seeded with the first one's state file,
end at the state of a straight replay of everything up to the second window's end; a
window that skips a message after its seed exits 3 with its state marked unsynced."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from exex_bridge.framing import frame
from exex_bridge.producers.broadcast import FrameBroadcastServer
from tests.arena.replay_scenario import whitelist_document
from tests.nats_server import NatsServer
from tests.relay.long_stream import long_stream
from tests.relay.processes import ArenaProcess, straight_replay
from tests.relay.relay_world import read_stream, running_relay, until

REORG_COMPLETE = 8


async def test_two_windows_chain_up_to_a_straight_replay(tmp_path: Path) -> None:
    stream = long_stream(4_000)
    frames = stream.frames
    whitelist, initial = tmp_path / "whitelist.json", tmp_path / "initial.json"
    whitelist.write_text(json.dumps(whitelist_document()))
    initial.write_text(json.dumps(stream.initial_state))
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    sock = tmp_path / "s.sock"
    async with (
        asyncio.timeout(180),
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock, client_queue=len(frames) + 1) as producer,
        running_relay(server.url, sock, "window") as relay,
    ):
        await producer.wait_for_clients(1)
        await producer.publish_many(frame(f) for f in frames)
        await until(lambda: relay.value("arena_relay_frames_acked_total") == len(frames))
        # The windows are of messages: the first ends with the one that holds the first
        # ReorgComplete (a settled point ends its message).
        contents = await read_stream(server.url, "window")
        assert contents.payloads == frames
        at = next(i for i, f in enumerate(frames) if f[0] == REORG_COMPLETE)
        cut, cut_seq = at + 1, contents.sequences[at]
        assert contents.sequences[cut] == cut_seq + 1
        common = (
            "run",
            "--jetstream",
            server.url,
            "--chain",
            "window",
            "--whitelist",
            whitelist,
            "--spill-depth",
            "0",
        )
        windows = [
            (first, initial, ("--from-seq", "1", "--to-seq", str(cut_seq))),
            (
                second,
                first,
                ("--from-seq", str(cut_seq + 1), "--to-seq", str(contents.sequences[-1])),
            ),
        ]
        for out, seed, window in windows:
            run = await ArenaProcess(
                *common, "--initial-state", seed, "--state-out", out, *window
            ).start()
            code, table = await run.finish()
            assert code == 0, run.log
            assert "Traceback" not in run.log
            assert "jetstream" in table  # the replay summary, as `arena replay` prints it
        # A window that does not follow its seed (one message skipped: a block never
        # arrives) ends untrustworthy, and says so in its exit status and its state file.
        skipped = tmp_path / "skipped.json"
        window = ("--from-seq", str(cut_seq + 2), "--to-seq", str(contents.sequences[-1]))
        run = await ArenaProcess(
            *common, "--initial-state", first, "--state-out", skipped, *window
        ).start()
        code, table = await run.finish()
        assert code == 3, run.log
        assert "the window ended with data lost" in run.log
        assert "Traceback" not in run.log
        assert json.loads(skipped.read_bytes())["unsynced"] is True
    assert json.loads(first.read_bytes()) == straight_replay(
        frames[:cut], whitelist, initial, tmp_path / "straight-first.json"
    )
    assert json.loads(second.read_bytes()) == stream.final_state
