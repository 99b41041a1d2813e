"""Checkpoints of a running pipeline and `--resume`: the state, the tick maps and the
ring's pre-images come back, on a whitelist that may list pools in another order."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from arena.engine import PoolStatus
from arena.errors import CheckpointError
from arena.pipeline import Pipeline, PipelineConfig, open_pipeline
from arena.resume import NotCheckpointableError, capture_checkpoint
from arena.state_file import export_state
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from exex_bridge.producers.broadcast import StreamSequencer
from tests.arena.replay_scenario import V3_E, Scenario, standard_scenario


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return standard_scenario()


def _feed_until(pipeline: Pipeline, scenario: Scenario, block: int) -> None:
    for msg in scenario.builder.messages:
        settled = pipeline.feed_frame(encode_message(msg))
        if settled is not None and settled.block == block:
            return
    raise AssertionError(f"block {block} never settled")


def _config(tmp_path: Path, whitelist: Path, **kw: object) -> PipelineConfig:
    return PipelineConfig(
        whitelist=whitelist,
        spill_path=tmp_path / "spill",
        checkpoint_path=tmp_path / "checkpoints",
        **kw,  # type: ignore[arg-type]
    )


def _state(pipeline: Pipeline) -> object:
    return msgspec.to_builtins(export_state(pipeline.engine))


def test_resume_restores_state_ticks_and_ring(tmp_path: Path, scenario: Scenario) -> None:
    whitelist, initial = scenario.write_inputs(tmp_path)
    with open_pipeline(
        _config(tmp_path, whitelist, initial_state=initial, checkpoint_every=2)
    ) as pipeline:
        _feed_until(pipeline, scenario, 103)
        assert pipeline.checkpoints is not None
        assert pipeline.checkpoints.blocks() == [102]  # every 2 settled blocks: 102
        assert pipeline.checkpoint_now() == 103
        before = _state(pipeline)
    assert before == scenario.model.state_json(103)

    # Restart on the same pools listed in reverse order: rows differ, keys match.
    doc = dict(scenario.whitelist, pools=list(reversed(scenario.whitelist["pools"])))
    reordered = tmp_path / "reordered.json"
    reordered.write_text(json.dumps(doc))
    with open_pipeline(_config(tmp_path, reordered, resume=True)) as pipeline:
        assert pipeline.resumed is not None
        assert pipeline.resumed.block == 103
        assert pipeline.resumed.dropped == 0
        assert _state(pipeline) == before
        # Revert block 103 from the restored ring: back to the model's block 102.
        seq = StreamSequencer(start=10_000)
        envelope = [
            seq.reorg_start(
                m.ReorgRange(first_block=103, last_block=103, block_count=1),
                m.ReorgRange(first_block=None, last_block=None, block_count=0),
            ),
            *seq.block(103, _reverted(scenario, 103), is_revert=True),
            seq.reorg_complete(102),
        ]
        for msg in envelope:
            pipeline.feed(msg)
        assert pipeline.engine.synced
        assert _state(pipeline) == scenario.model.state_json(102)


def _reverted(scenario: Scenario, block: int) -> list[m.PoolUpdateMessage]:
    updates = [
        msg.event
        for msg in scenario.builder.messages
        if isinstance(msg, m.PoolUpdate) and msg.event.block_number == block
    ]
    return [msgspec.structs.replace(e, is_revert=True) for e in reversed(updates)]


def test_resume_on_a_smaller_whitelist_drops_the_missing_pools(
    tmp_path: Path, scenario: Scenario
) -> None:
    whitelist, initial = scenario.write_inputs(tmp_path)
    with open_pipeline(_config(tmp_path, whitelist, initial_state=initial)) as pipeline:
        _feed_until(pipeline, scenario, 102)
        assert pipeline.checkpoint_now() == 102
        before = _state(pipeline)
    doc = dict(scenario.whitelist)
    doc["pools"] = [p for p in doc["pools"] if p["address"] != V3_E]
    smaller = tmp_path / "smaller.json"
    smaller.write_text(json.dumps(doc))
    with open_pipeline(_config(tmp_path, smaller, resume=True)) as pipeline:
        assert pipeline.resumed is not None
        assert pipeline.resumed.dropped == 1
        after = _state(pipeline)
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["unhydrated"] == [k for k in before["unhydrated"] if k != V3_E]
    assert after["pools"] == before["pools"]


def test_resume_without_a_checkpoint_falls_back_to_the_initial_state(
    tmp_path: Path, scenario: Scenario
) -> None:
    whitelist, initial = scenario.write_inputs(tmp_path)
    config = _config(tmp_path, whitelist, initial_state=initial, resume=True)
    with open_pipeline(config) as pipeline:
        assert pipeline.resumed is None
        assert _state(pipeline) == scenario.model.state_json(100)
    with pytest.raises(CheckpointError):
        open_pipeline(PipelineConfig(whitelist=whitelist, resume=True))


def test_no_checkpoint_of_an_unsynced_state(tmp_path: Path, scenario: Scenario) -> None:
    whitelist, initial = scenario.write_inputs(tmp_path)
    with open_pipeline(_config(tmp_path, whitelist, initial_state=initial)) as pipeline:
        _feed_until(pipeline, scenario, 101)
        pipeline.on_connection_lost()
        with pytest.raises(NotCheckpointableError):
            capture_checkpoint(pipeline.engine, None)
        assert pipeline.checkpoint_now() is None
        assert pipeline.checkpoints is not None
        assert pipeline.checkpoints.blocks() == []


def test_a_revert_deeper_than_the_restored_ring_makes_pools_stale(
    tmp_path: Path, scenario: Scenario
) -> None:
    """After a restart the spill is gone: reverting past the restored ring cannot restore,
    so every pool that may have changed becomes stale instead of silently wrong."""
    whitelist, initial = scenario.write_inputs(tmp_path)
    with open_pipeline(_config(tmp_path, whitelist, initial_state=initial)) as pipeline:
        _feed_until(pipeline, scenario, 103)
        assert pipeline.checkpoint_now() == 103
    with open_pipeline(_config(tmp_path, whitelist, resume=True)) as pipeline:
        engine = pipeline.engine
        oldest = engine.ring.oldest_block
        assert oldest is not None and oldest <= 103
        live = [i for i in range(len(engine.registry)) if engine.status[i] == PoolStatus.LIVE]
        assert live
        seq = StreamSequencer(start=20_000)
        pipeline.feed(
            seq.reorg_start(
                m.ReorgRange(first_block=oldest - 1, last_block=103, block_count=105 - oldest),
                m.ReorgRange(first_block=None, last_block=None, block_count=0),
            )
        )
        for block in range(103, oldest - 1, -1):
            for msg in seq.block(block, _reverted(scenario, block), is_revert=True):
                pipeline.feed(msg)
        assert engine.stale_count() == 0  # everything so far came from the restored ring
        for msg in seq.block(oldest - 1, [], is_revert=True):  # one block beyond it
            pipeline.feed(msg)
        pipeline.feed(seq.reorg_complete(oldest - 2))
        assert engine.synced
        assert all(engine.status[i] == PoolStatus.STALE for i in live)
