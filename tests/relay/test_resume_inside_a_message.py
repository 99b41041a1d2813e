"""`JetStreamSource` resumed inside a message: started at a message with `skip_frames`,
it yields exactly the frames after those, whatever the batches, against a real
nats-server with JetStream (the messages are written by hand, cut at places the relay
itself would not cut)."""

from __future__ import annotations

import asyncio
import random
import struct
from pathlib import Path

import nats

from exex_bridge.frame_batch import encode_batch
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.relay_stream import MSG_ID_HEADER, Retention, ensure_stream, frames_subject
from tests.nats_server import NatsServer

CHAIN = "inside"


async def test_every_position_inside_every_message_resumes_exactly(tmp_path: Path) -> None:
    rng = random.Random(7)
    frames = [
        struct.pack("<IQ", 2, seq) + rng.randbytes(rng.randint(0, 40)) for seq in range(1, 41)
    ]
    sizes: list[int] = []
    while sum(sizes) < len(frames):
        sizes.append(min(rng.randint(1, 7), len(frames) - sum(sizes)))
    async with asyncio.timeout(120), NatsServer(jetstream_dir=tmp_path / "js") as server:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            await ensure_stream(js, CHAIN, Retention(3600.0, 1 << 24, 60.0))
            first = 0
            for n in sizes:
                body = encode_batch(frames[first : first + n])
                await js.publish(
                    frames_subject(CHAIN),
                    body,
                    headers={MSG_ID_HEADER: f"0:{first + 1}-{first + n}"},
                )
                first += n
        finally:
            await nc.close()
        before = 0  # frames in the messages before `seq`
        for seq, size in enumerate(sizes, start=1):
            for skip in range(size + 1):
                source = JetStreamSource(
                    server.url,
                    CHAIN,
                    "resumer",
                    start_seq=seq,
                    skip_frames=skip,
                    stop_seq=len(sizes),
                )
                got = [payload async for payload in source.frames()]
                assert got == frames[before + skip :], (seq, skip)
                assert source.checkpoint_position() == (len(sizes), sizes[-1])
            before += size
