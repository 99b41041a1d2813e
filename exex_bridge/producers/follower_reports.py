"""What the chain follower knows and reports: followed blocks, poll reports, statistics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from exex_bridge.producers.chain_rpc import Header
from exex_bridge.producers.log_decoding import DecodedLog


@dataclass(frozen=True, slots=True)
class FollowedBlock:
    """A block the follower knows: its pool events, tracked or not. `published` is False
    only for the start anchor."""

    header: Header
    logs: tuple[DecodedLog, ...]
    published: bool = True

    @property
    def number(self) -> int:
        return self.header.number


@dataclass(frozen=True, slots=True)
class ReorgReport:
    """`new_blocks` is empty for a plain revert (the chain got shorter)."""

    fork_block: int
    old_blocks: tuple[int, ...]
    new_blocks: tuple[int, ...]
    final_tip: int
    epilogues: int

    @property
    def depth(self) -> int:
        return len(self.old_blocks)


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll published. `behind`: more blocks wait, poll again at once."""

    blocks: tuple[int, ...] = ()
    reorg: ReorgReport | None = None
    frames: int = 0
    updates: int = 0
    deep_reorg: bool = False
    behind: bool = False

    @property
    def settle_points(self) -> int:
        """How many settled points a consumer sees: one per block outside an envelope,
        one per envelope."""
        return len(self.blocks) + (self.reorg is not None)


@dataclass(slots=True)
class FollowerStats:
    polls: int = 0
    blocks: int = 0
    reorgs: int = 0
    reverts: int = 0
    depths: Counter[int] = field(default_factory=Counter)
    updates: int = 0
    epilogues: int = 0
    frames: int = 0
    deep_reorgs: int = 0
    rpc_errors: int = 0
    tip: int | None = None
