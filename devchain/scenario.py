"""A seeded chain history: traffic blocks with reorgs and rollbacks mixed in."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from devchain.reorgs import ReorgOutcome, reorg_with_traffic, rollback
from devchain.traffic import BlockTraffic, TrafficGenerator

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ScenarioConfig:
    blocks: int = 50
    reorg_probability: float = 0.08
    rollback_probability: float = 0.02
    max_reorg_depth: int = 3


@dataclass(frozen=True, kw_only=True)
class ChainEvent:
    kind: Literal["block", "reorg", "rollback"]
    block: BlockTraffic | None = None
    reorg: ReorgOutcome | None = None


def run_scenario(
    generator: TrafficGenerator,
    config: ScenarioConfig,
    on_event: Callable[[ChainEvent], None] | None = None,
) -> list[ChainEvent]:
    """`config.blocks` traffic blocks; after each, maybe a reorg or a rollback.

    The schedule draws from the generator's seeded rng, so a seed fixes the whole history.
    Reorgs and rollbacks never reach below the deployment block.
    """
    rng = generator.rng
    floor = generator.deployment.block
    events: list[ChainEvent] = []

    def emit(event: ChainEvent) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    for _ in range(config.blocks):
        emit(ChainEvent(kind="block", block=generator.generate_block(rng)))
        available = generator.w3.eth.block_number - floor
        draw = rng.random()
        depth = min(rng.randint(1, config.max_reorg_depth), available)
        if depth < 1:
            continue
        if draw < config.reorg_probability:
            emit(ChainEvent(kind="reorg", reorg=reorg_with_traffic(generator, depth, rng)))
        elif draw < config.reorg_probability + config.rollback_probability:
            emit(ChainEvent(kind="rollback", reorg=rollback(generator.w3, depth, floor)))
    return events
