"""The one rule for everything that consumes a pipeline.

Settled subscribers see every settled point, trustworthy or not, with its `SyncState`,
in the order the points settle, each subscriber in registration order; block-start
subscribers see every block as it opens, before any of it applies, in registration
order. A subscriber registered once sees each point once; registering it again fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from arena.block_assembler import Settled
from arena.checkpoint import CheckpointStore
from arena.engine import ArenaEngine
from arena.pipeline import AlreadySubscribedError, Pipeline
from arena.sync_state import SyncState
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from tests.arena.stream_builder import ChainBlock, ChainUpdate, StreamBuilder, address

V2 = address(0x22)


def _sync(r0: int, r1: int) -> ChainUpdate:
    payload = m.V2Sync(reserve0=r0, reserve1=r1)
    return ChainUpdate(V2, m.Protocol.UNISWAP_V2, m.UpdateType.SWAP, payload, 0, 0)


def _block(number: int, reserve: int) -> ChainBlock:
    return ChainBlock(number, 1_700_000_000 + 12 * number, 3 * number, (_sync(reserve, 1),))


class _Stream:
    """A pipeline over one V2 pool, fed the builder's messages."""

    def __init__(self) -> None:
        self.engine = ArenaEngine(ring_depth=8)
        token = Token(address=bytes(20), decimals=18)
        (self.pool,) = self.engine.add_pools(
            [
                WhitelistedPool(
                    key=V2.value,
                    address=V2.value,
                    protocol=m.Protocol.UNISWAP_V2,
                    token0=token,
                    token1=token,
                )
            ]
        )
        self.pipeline = Pipeline(self.engine)
        self.b = StreamBuilder()
        self.returned: list[Settled] = []

    def feed(self, msgs: Sequence[m.SequencedMessage]) -> None:
        for msg in msgs:
            settled = self.pipeline.feed(msg)
            if settled is not None:
                self.returned.append(settled)

    def run_with_a_loss_a_resync_and_a_reorg(self) -> None:
        """101 and 102 settle; 103 loses a frame; 104 settles unsynced; a resync at 104;
        105 settles; a reorg replaces 105 with 105' and 106."""
        b = self.b
        for number in (101, 102):
            self.feed(b.committed(_block(number, number)))
        lossy = b.committed(_block(103, 103))
        self.feed(lossy[:1])
        b.skip(1)
        self.feed(lossy[2:])
        self.feed(b.committed(_block(104, 104)))
        self.engine.set_reserves(self.pool, 104, 1)
        self.engine.mark_synced(104, keep_history=False)
        self.feed(b.committed(_block(105, 105)))
        new = [_block(105, 1_105), _block(106, 106)]
        self.feed(b.reorg([_block(105, 105)], new, [], final_tip_block=106))


EXPECTED_POINTS = [
    (101, False, SyncState.SYNCED),  # the first block taken seeds the state
    (102, False, SyncState.SYNCED),
    (104, False, SyncState.UNSYNCED),
    (105, False, SyncState.SYNCED),
    (106, True, SyncState.SYNCED),
]


def test_every_point_reaches_every_subscriber_in_order_with_its_sync_state() -> None:
    stream = _Stream()
    seen: list[tuple[str, int, bool, SyncState]] = []

    def recorder(name: str) -> Callable[[Settled], None]:
        return lambda s: seen.append((name, s.block, s.after_reorg, s.sync))

    for name in ("first", "second", "third"):
        stream.pipeline.subscribe_settled(recorder(name))
    stream.run_with_a_loss_a_resync_and_a_reorg()
    assert seen == [
        (name, *point) for point in EXPECTED_POINTS for name in ("first", "second", "third")
    ]
    assert [(s.block, s.after_reorg, s.sync) for s in stream.returned] == EXPECTED_POINTS


def test_a_subscriber_sees_each_point_once_and_cannot_subscribe_twice() -> None:
    stream = _Stream()
    points: list[Settled] = []
    stream.pipeline.subscribe_settled(points.append)
    with pytest.raises(AlreadySubscribedError) as raised:
        stream.pipeline.subscribe_settled(points.append)
    assert raised.value.subscriber == points.append
    starts: list[int] = []

    def on_start(begin: m.BeginBlock) -> None:
        starts.append(begin.block_number)

    stream.pipeline.subscribe_block_start(on_start)
    with pytest.raises(AlreadySubscribedError):
        stream.pipeline.subscribe_block_start(on_start)
    stream.run_with_a_loss_a_resync_and_a_reorg()
    assert points == stream.returned
    assert starts == [101, 102, 103, 104, 105, 105, 105, 106]


def test_block_start_subscribers_run_in_order_before_the_block_applies() -> None:
    stream = _Stream()
    seen: list[tuple[str, int, bool, int | None]] = []

    def recorder(name: str) -> Callable[[m.BeginBlock], None]:
        return lambda begin: seen.append(
            (name, begin.block_number, begin.is_revert, stream.engine.tip_block)
        )

    for name in ("whitelist", "rpc"):
        stream.pipeline.subscribe_block_start(recorder(name))
    stream.run_with_a_loss_a_resync_and_a_reorg()
    opened = [
        (101, False, None),
        (102, False, 101),
        (103, False, 102),  # its loss discards it: the subscribers saw it open
        (104, False, 102),
        (105, False, 104),
        (105, True, 105),  # inside the envelope too
        (105, False, 104),
        (106, False, 105),
    ]
    assert seen == [(name, *block) for block in opened for name in ("whitelist", "rpc")]


def _latest_block(store: CheckpointStore) -> int | None:
    blocks = store.blocks()
    return blocks[0] if blocks else None  # newest first


def test_untrusted_points_reach_subscribers_but_are_never_checkpointed(tmp_path: Path) -> None:
    stream = _Stream()
    with CheckpointStore(tmp_path / "checkpoints", keep=8) as store:
        stream.pipeline = Pipeline(stream.engine, checkpoints=store, checkpoint_every=1)
        saved: list[tuple[int, SyncState, int | None]] = []
        stream.pipeline.subscribe_settled(
            lambda s: saved.append((s.block, s.sync, _latest_block(store)))
        )
        stream.run_with_a_loss_a_resync_and_a_reorg()
    # A checkpoint is taken at each SYNCED point before the subscribers run; the
    # UNSYNCED point at 104 leaves the one of block 102 as the latest.
    assert saved == [
        (101, SyncState.SYNCED, 101),
        (102, SyncState.SYNCED, 102),
        (104, SyncState.UNSYNCED, 102),
        (105, SyncState.SYNCED, 105),
        (106, SyncState.SYNCED, 106),
    ]
