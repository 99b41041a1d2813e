"""One block's updates split into columns (hot swaps and syncs) and exact updates.

A hot frame (frame_columns.py) of an active pool of its kind sets that pool's whole
record, so for a pool whose updates in the block are all hot the last one wins and the
rest need no look. Every other update (mints and burns, other variants, unknown pools,
updates of the wrong kind) goes through `classify`, the reference, as does every update
of a pool that has a mint or burn in the block: a mint or burn reads the pool's current
slot0, so that pool is folded in stream order by `stage_records`.

`split_block` returns the exact part as `BlockEvents`, with the hot part's update counts
added to its `seen`, and the hot pools' new records as `HotRecords`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from arena.block_events import BlockEvents, UpdateKey, classify
from arena.frame_columns import HOT_VARIANTS, read_hot_frames
from arena.pool_keys import PoolKeyIndex
from arena.registry import PoolKind
from arena.state_table import SWAP_STATE, StateArray
from exex_bridge import messages as m

IndexArray = npt.NDArray[np.int64]

# variant tag -> the pool kind it sets, as a lookup table over the tags
_KIND_OF_TAG: Final = np.zeros(max(HOT_VARIANTS) + 1, dtype=np.uint8)
for _tag, (_, _kind) in HOT_VARIANTS.items():
    _KIND_OF_TAG[_tag] = _kind
_TAG_SPAN: Final = 256  # protocol * span + tag: one code per counted (protocol, class)


class HotRecords(NamedTuple):
    """The new records of the pools whose every update in the block was hot."""

    pools: IndexArray  # sorted, unique
    records: StateArray  # the last record each was sent
    synced: IndexArray  # the V2 pools among them


NO_HOT_RECORDS: Final = HotRecords(
    np.zeros(0, dtype=np.int64),
    np.zeros(0, dtype=SWAP_STATE),
    np.zeros(0, dtype=np.int64),
)


def split_block(
    events: Sequence[m.PoolUpdateMessage],
    payloads: Sequence[bytes],
    keys: PoolKeyIndex,
    lookup: Mapping[bytes, tuple[int, int]],
) -> tuple[BlockEvents, HotRecords]:
    """`payloads[i]` is the frame `events[i]` was decoded from."""
    frames = read_hot_frames(payloads)
    pools, kinds = keys.find(frames.keys)
    tags = frames.tags
    ours = (pools >= 0) & (kinds == _KIND_OF_TAG[tags])
    exact = np.ones(len(events), dtype=np.bool_)
    exact[frames.rows[ours]] = False
    found = _classify_rows(events, exact, lookup)
    if found.indices:  # pools with a mint or burn (or an odd frame) are folded in order
        mixed = ours & np.isin(pools, np.asarray(found.indices, dtype=np.int64))
        if mixed.any():
            ours &= ~mixed
            exact[frames.rows[mixed]] = True
            found = _classify_rows(events, exact, lookup)
    _count_hot(found.seen, frames.protocols[ours], tags[ours])
    return found, _last_records(pools[ours], frames.records[ours], kinds[ours])


def _classify_rows(
    events: Sequence[m.PoolUpdateMessage],
    exact: npt.NDArray[np.bool_],
    lookup: Mapping[bytes, tuple[int, int]],
) -> BlockEvents:
    return classify([events[i] for i in np.flatnonzero(exact).tolist()], lookup)


def _count_hot(
    seen: dict[UpdateKey, int],
    protocols: npt.NDArray[np.uint32],
    tags: npt.NDArray[np.uint32],
) -> None:
    codes, counts = np.unique(protocols.astype(np.int64) * _TAG_SPAN + tags, return_counts=True)
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        protocol, tag = divmod(code, _TAG_SPAN)
        key = (m.Protocol(protocol), HOT_VARIANTS[tag][0])
        seen[key] = seen.get(key, 0) + count


def _last_records(
    pools: IndexArray, records: npt.NDArray[np.uint8], kinds: npt.NDArray[np.uint8]
) -> HotRecords:
    """Within a block the last record sent for a pool is its new record."""
    if len(pools) == 0:
        return NO_HOT_RECORDS
    newest_first = pools[::-1]
    unique, first = np.unique(newest_first, return_index=True)
    last = len(pools) - 1 - first
    v2 = kinds[last] == PoolKind.V2
    rows: StateArray = np.ascontiguousarray(records[last]).view(SWAP_STATE).reshape(-1)
    return HotRecords(unique, rows, unique[v2])
