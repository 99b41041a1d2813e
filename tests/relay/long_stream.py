"""A long sequenced stream with reorg envelopes, built with the independent model of
`tests.arena.replay_scenario`: `long_stream(frames)` gives the encoded frames and the
state file the arena must write at its end."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from exex_bridge.codec import encode_message
from tests.arena.replay_scenario import (
    FIRST_BLOCK,
    V2_A,
    V2_F,
    V3_B,
    Event,
    Model,
    StreamBuilder,
    initial_pools,
    sqrt_at,
    swap,
    sync,
)

UPDATES_PER_BLOCK = 8
REORG_EVERY = 40  # blocks


@dataclass(frozen=True)
class LongStream:
    frames: list[bytes]
    initial_state: dict[str, Any]
    final_state: dict[str, Any]
    blocks_applied: int
    blocks_reverted: int
    reorgs: int


def _events(rng: random.Random) -> list[Event]:
    out: list[Event] = []
    for _ in range(UPDATES_PER_BLOCK):
        match rng.randrange(3):
            case 0:
                out.append((V2_A, sync(rng.randrange(1, 10**24), rng.randrange(1, 10**24))))
            case 1:
                out.append((V2_F, sync(rng.randrange(1, 10**22), rng.randrange(1, 10**22))))
            case _:
                tick = rng.randrange(-500, 500)
                out.append((V3_B, swap(sqrt_at(tick) + rng.randrange(10**6), 10**18, tick)))
    return out


def long_stream(min_frames: int, seed: int = 12) -> LongStream:
    """At least `min_frames` frames: committed blocks, and every REORG_EVERY blocks a
    reorg replacing the newest two blocks by three."""
    rng = random.Random(seed)
    model = Model(pools=initial_pools(), block=FIRST_BLOCK)
    model.record(FIRST_BLOCK)
    initial = model.state_json()
    builder = StreamBuilder(model)
    tip = FIRST_BLOCK
    reorgs = 0
    while len(builder.messages) < min_frames:
        if (tip - FIRST_BLOCK) % REORG_EVERY == REORG_EVERY - 1 and tip - FIRST_BLOCK > 2:
            new = [(tip - 1, _events(rng)), (tip, _events(rng)), (tip + 1, _events(rng))]
            builder.reorg([tip, tip - 1], new, [])
            reorgs += 1
        else:
            builder.block(tip + 1, _events(rng))
        tip += 1
    return LongStream(
        frames=[encode_message(msg) for msg in builder.messages],
        initial_state=initial,
        final_state=model.state_json(),
        blocks_applied=builder.blocks_applied,
        blocks_reverted=builder.blocks_reverted,
        reorgs=reorgs,
    )
