"""Values no pool contract can produce are refused — the pool becomes stale, the refusal
is counted under a fixed label, nothing of it is applied — and every stale mark's label
comes from a fixed vocabulary, whatever the error text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arena.pipeline import PipelineConfig, open_pipeline
from arena.pool_status import StaleReason
from arena.update_checks import Violation
from exex_bridge import messages as m
from tests.arena.replay_scenario import (
    FIRST_BLOCK,
    V2_A,
    V3_B,
    V3_C,
    Model,
    StreamBuilder,
    initial_pools,
    liquidity,
    sqrt_at,
    swap,
    sync,
    whitelist_document,
)

ROOT = Path(__file__).resolve().parents[2]
VOCABULARY = {r.value for r in StaleReason} | {v.value for v in Violation}


def stream(
    events: list[tuple[str, m.PoolUpdatePayload]],
) -> tuple[StreamBuilder, dict[str, object]]:
    model = Model(pools=initial_pools(), block=FIRST_BLOCK)
    model.record(FIRST_BLOCK)
    initial = model.state_json()
    builder = StreamBuilder(model)
    builder.block(FIRST_BLOCK + 1, events)
    return builder, initial


def replay(
    tmp_path: Path, builder: StreamBuilder, initial: dict[str, object]
) -> tuple[int, dict[str, object], str]:
    whitelist, state0, raw, out = (tmp_path / n for n in ("w.json", "s0.json", "s.raw", "s.json"))
    whitelist.write_text(json.dumps(whitelist_document()))
    state0.write_text(json.dumps(initial))
    raw.write_bytes(builder.raw_dump())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar.cli",
            "replay",
            str(raw),
            "--whitelist",
            str(whitelist),
            "--initial-state",
            str(state0),
            "--state-out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(out.read_bytes()), done.stderr


def test_a_flipped_byte_in_a_swap_price_is_refused_not_applied(tmp_path: Path) -> None:
    """The reproduction: a high byte of a V3Swap's sqrt_price_x96 flipped (a price above
    the 160-bit maximum, inconsistent with its tick)."""
    good = swap(sqrt_at(-276310) + 12345, 10**18, -276310)
    flipped = swap(good.sqrt_price_x96 ^ (0xFF << 240), good.liquidity, good.tick)
    assert flipped.sqrt_price_x96 > 4 * 10**74
    builder, initial = stream([(V3_B, flipped), (V2_A, sync(7, 8))])
    code, state, stderr = replay(tmp_path, builder, initial)
    assert code == 0, stderr  # no data lost: the pool is excluded, and said so
    assert state["stale"] == [V3_B]
    pools = state["pools"]
    assert isinstance(pools, dict)
    assert pools[V3_B] == initial["pools"][V3_B]  # type: ignore[index]
    assert pools[V2_A]["reserve0"] == "7"
    assert "sqrt_price_out_of_range" in stderr or "tick_inconsistent_with_price" in stderr


@pytest.mark.parametrize(
    ("event", "violation"),
    [
        ((V3_B, swap(sqrt_at(5), 10**18, 50)), Violation.TICK_PRICE_MISMATCH),
        ((V3_B, swap(sqrt_at(5), 1 << 128, 5)), Violation.LIQUIDITY_RANGE),
        ((V3_B, swap(sqrt_at(5), 10**18, 900_000)), Violation.TICK_RANGE),
        ((V2_A, sync(1 << 112, 5)), Violation.RESERVE_RANGE),
        ((V3_C, liquidity(60, -60, 10**12)), Violation.TICK_ORDER),
    ],
)
def test_each_violation_is_counted_and_never_applied(
    tmp_path: Path, event: tuple[str, m.PoolUpdatePayload], violation: Violation
) -> None:
    builder, initial = stream([event])
    whitelist, state0 = tmp_path / "w.json", tmp_path / "s0.json"
    whitelist.write_text(json.dumps(whitelist_document()))
    state0.write_text(json.dumps(initial))
    with open_pipeline(PipelineConfig(whitelist=whitelist, initial_state=state0)) as pipeline:
        before = pipeline.engine.table.records.tobytes()
        ticks_before = pipeline.engine.ticks.snapshot()
        for msg in builder.messages:
            pipeline.feed(msg)
        engine = pipeline.engine
        assert engine.tip_block == FIRST_BLOCK + 1 and engine.synced
        assert engine.table.records.tobytes() == before
        assert engine.ticks.snapshot() == ticks_before
        index = engine.registry.index_of[bytes.fromhex(event[0][2:])]
        assert engine.stale_count() == 1 and engine.status[index] == 2
        labels = stale_labels(engine.metrics.registry)
        assert labels == {violation.value: 1.0}


def test_stale_labels_stay_a_fixed_vocabulary(tmp_path: Path) -> None:
    """Many different broken burns (each error text different) make one series."""
    burns = [(V3_C, liquidity(-600 - 60 * i, 600, -(10**30) - i)) for i in range(8)]
    builder, initial = stream(burns)
    whitelist, state0 = tmp_path / "w.json", tmp_path / "s0.json"
    whitelist.write_text(json.dumps(whitelist_document()))
    state0.write_text(json.dumps(initial))
    with open_pipeline(PipelineConfig(whitelist=whitelist, initial_state=state0)) as pipeline:
        for msg in builder.messages:
            pipeline.feed(msg)
        labels = stale_labels(pipeline.engine.metrics.registry)
    assert set(labels) <= VOCABULARY
    assert labels == {StaleReason.TICK_MAP_INCONSISTENT.value: 1.0}


def stale_labels(registry: object) -> dict[str, float]:
    return {
        s.labels["reason"]: s.value
        for family in registry.collect()  # type: ignore[attr-defined]
        if family.name == "arena_pools_marked_stale"
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_the_metrics_page_lists_the_whole_vocabulary() -> None:
    row = next(
        line
        for line in (ROOT / "docs" / "metrics.md").read_text().splitlines()
        if line.startswith("| `arena_pools_marked_stale_total`")
    )
    assert all(f"`{label}`" in row for label in VOCABULARY)
