"""Whitelist changes from the control plane, applied to the engine between blocks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

from arena.block_assembler import BlockAssembler
from arena.engine import ArenaEngine
from exex_bridge import messages as m
from exex_bridge.whitelist_feed import WhitelistChange, WhitelistFeed

log = logging.getLogger(__name__)


class WhitelistDelta(NamedTuple):
    added: list[int]  # indices newly active (UNKNOWN until hydrated)
    removed: list[int]


def apply_whitelist_changes(
    engine: ArenaEngine, changes: Iterable[WhitelistChange]
) -> WhitelistDelta:
    """`full` replaces the set, `add` adds (or updates metadata), `remove` deactivates."""
    added: list[int] = []
    removed: list[int] = []
    registry = engine.registry
    for change in changes:
        if change.kind == "remove":
            removed += engine.remove_pools(change.keys)
            continue
        if change.kind == "full":
            keep = {pool.key for pool in change.pools}
            gone = [
                pool.key
                for index, pool in enumerate(registry.pools)
                if registry.is_active(index) and pool.key not in keep
            ]
            removed += engine.remove_pools(gone)
        added += engine.add_pools(change.pools)
    return WhitelistDelta(added, removed)


def boundary_hook(
    engine: ArenaEngine, assembler: BlockAssembler, feed: WhitelistFeed
) -> Callable[[m.BeginBlock], None]:
    """A block-start subscriber (`Pipeline.subscribe_block_start`): pending changes
    apply when a committed block opens outside a reorg envelope (before any of it
    applies)."""

    def apply_pending(begin: m.BeginBlock) -> None:
        if begin.is_revert or assembler.phase.in_reorg:
            return
        changes = feed.drain()
        if not changes:
            return
        delta = apply_whitelist_changes(engine, changes)
        log.info(
            "whitelist at block %d: %d pools added, %d removed (%d documents)",
            begin.block_number,
            len(delta.added),
            len(delta.removed),
            len(changes),
        )

    return apply_pending
