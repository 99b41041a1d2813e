"""Everything an engine holds, as plain values two engines can be compared by."""

from __future__ import annotations

from arena.engine import ArenaEngine


def engine_snapshot(engine: ArenaEngine) -> dict[str, object]:
    """Records, tick maps, statuses, `last_changed`, ring, spill, tip, `changed`, status
    history and metric samples (without creation times and timing sums and buckets)."""
    n = len(engine.registry)
    spill = engine.ring.spill
    spilled = [spill.get(b) for b in spill.blocks()] if spill is not None else []
    return {
        "table": engine.table.records.tobytes(),
        "ticks": engine.ticks.snapshot(),
        "tick versions": dict(engine.ticks.version),
        "status": engine.status[:n].tobytes(),
        "last_changed": engine.last_changed[:n].tobytes(),
        "ring": [
            (pre.block, pre.indices.tobytes(), pre.records.tobytes())
            for pre in engine.ring.entries_after(-1)
        ],
        "spill": [
            (pre.block, pre.indices.tobytes(), pre.records.tobytes())
            for pre in spilled
            if pre is not None
        ],
        "tip": engine.tip_block,
        "sync": (engine.sync_state, engine.sync_status.loss),
        "changed": set(engine.changed),
        "status history": engine._status_before.blocks(),
        "metrics": {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in engine.metrics.registry.collect()
            for s in metric.samples
            if not s.name.endswith("_created")
            and not (metric.name.endswith("_seconds") and not s.name.endswith("_count"))
        },
    }
