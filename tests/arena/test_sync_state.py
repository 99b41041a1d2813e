"""The engine's sync state: UNSEEDED until something seeds it, SYNCED, UNSYNCED for a
`LossCause`, and SYNCED again after a resync; what the gauge, the state file, the
checkpoint and the health line say in each."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena.block_assembler import BlockAssembler
from arena.engine import ArenaEngine
from arena.resume import NotCheckpointableError, capture_checkpoint
from arena.state_file import export_state, load_state, read_state_file, write_state_file
from arena.sync_state import LossCause, SyncLoss, SyncState, SyncStatus
from exex_bridge import messages as m
from exex_bridge.socket_source import ConnectionState
from exex_bridge.whitelist import Token, WhitelistedPool
from sidecar.health import health_of
from tests.arena.stream_builder import ChainBlock, ChainUpdate, StreamBuilder, address

V2 = address(0x22)


def _engine() -> tuple[ArenaEngine, int]:
    engine = ArenaEngine(ring_depth=4)
    token = Token(address=bytes(20), decimals=18)
    pool = WhitelistedPool(
        key=V2.value, address=V2.value, protocol=m.Protocol.UNISWAP_V2, token0=token, token1=token
    )
    (index,) = engine.add_pools([pool])
    return engine, index


def _block(number: int) -> ChainBlock:
    payload = m.V2Sync(reserve0=number, reserve1=1)
    update = ChainUpdate(V2, m.Protocol.UNISWAP_V2, m.UpdateType.SWAP, payload, 0, 0)
    return ChainBlock(number, 1_700_000_000 + 12 * number, 0, (update,))


def _gauge(engine: ArenaEngine) -> float | None:
    return engine.metrics.registry.get_sample_value("arena_state_synced")


def _health_line(engine: ArenaEngine) -> str:
    health = health_of(engine, connection=ConnectionState.CONNECTED, last_block_at=None, now=0.0)
    return health.line()


def test_a_new_engine_is_unseeded_and_the_gauge_says_not_synced() -> None:
    engine, _ = _engine()
    assert engine.sync_status == SyncStatus(SyncState.UNSEEDED)
    assert not engine.synced and engine.tip_block is None
    assert _gauge(engine) == 0
    health = health_of(engine, connection=ConnectionState.CONNECTED, last_block_at=None, now=0)
    assert not health.healthy and health.unsynced_reason is None
    assert _health_line(engine).startswith("unseeded (no state loaded and no block taken yet) ")
    with pytest.raises(NotCheckpointableError) as refused:
        capture_checkpoint(engine, None)
    assert refused.value.sync.state is SyncState.UNSEEDED


def test_the_first_block_taken_seeds_the_state() -> None:
    engine, _ = _engine()
    assembler, b = BlockAssembler(engine), StreamBuilder()
    settled = [s for s in map(assembler.feed, b.committed(_block(101))) if s is not None]
    assert [(s.block, s.sync) for s in settled] == [(101, SyncState.SYNCED)]
    assert engine.sync_state is SyncState.SYNCED and _gauge(engine) == 1
    assert _health_line(engine).startswith("synced tip=101 ")


def test_a_loss_before_anything_is_seeded_leaves_the_first_block_untrusted() -> None:
    engine, _ = _engine()
    assembler, b = BlockAssembler(engine), StreamBuilder()
    assembler.on_decode_error(7)
    settled = [s for s in map(assembler.feed, b.committed(_block(101))) if s is not None]
    assert [(s.block, s.sync) for s in settled] == [(101, SyncState.UNSYNCED)]
    assert _gauge(engine) == 0


def test_loss_then_resync_then_synced() -> None:
    engine, pool = _engine()
    engine.mark_synced(100, keep_history=False)
    engine.mark_unsynced(LossCause.CONNECTION_LOST, "connection to the producer lost")
    engine.mark_unsynced(LossCause.SEQ_GAP, "stream_seq jumped from 3 to 9")  # a consequence
    expected = SyncLoss(LossCause.CONNECTION_LOST, "connection to the producer lost", 100)
    assert engine.sync_status == SyncStatus(SyncState.UNSYNCED, expected)
    assert engine.sync_status.unsynced_reason == "connection_lost: connection to the producer lost"
    assert _gauge(engine) == 0
    line = _health_line(engine)
    assert line.startswith("UNSYNCED (connection_lost: connection to the producer lost) tip=100")
    engine.set_reserves(pool, 5, 6)
    engine.mark_synced(104, keep_history=False)
    assert engine.sync_status == SyncStatus(SyncState.SYNCED)
    assert _gauge(engine) == 1


@pytest.mark.parametrize(
    ("seed", "unsynced_field"),
    [("unseeded", False), ("synced", False), ("unsynced", True)],
)
def test_the_state_file_round_trips_the_sync_state(
    tmp_path: Path, seed: str, unsynced_field: bool
) -> None:
    engine, pool = _engine()
    if seed != "unseeded":
        engine.set_reserves(pool, 5, 6)
        engine.mark_synced(100, keep_history=False)
    if seed == "unsynced":
        engine.mark_unsynced(LossCause.DECODE_ERROR, "undecodable frame (stream_seq 4)")
    assert export_state(engine).unsynced is unsynced_field
    write_state_file(engine, tmp_path / "state.json")
    again, _ = _engine()
    load_state(again, read_state_file(tmp_path / "state.json"), "state.json")
    assert again.sync_state is SyncState(seed)
    if seed == "unsynced":
        loss = again.sync_status.loss
        assert loss is not None and loss.cause is LossCause.UNSYNCED_STATE_LOADED
        assert loss.detail == "the state loaded from state.json was unsynced"
