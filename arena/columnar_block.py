"""One block's updates split into columns and exact updates.

Every frame's pool key, protocol and variant are read as columns (frame_columns.py) and
its pool looked up in one step. An update of a pool that is not active is only counted.
A hot update (V3Swap, V4Swap, V2Sync) of an active pool of its kind sets that pool's
whole record, so for a pool whose updates in the block are all hot the last one wins and
the others need no look. Every other update of an active pool (mints and burns, other
variants, updates of the wrong kind) goes through `classify`, the reference, as does
every update of a pool that has a mint or burn in the block: a mint or burn reads the
pool's current slot0, so that pool is folded in stream order by `stage_records`. So is
a hot update whose values fail the range checks (`arena.update_checks`): the reference
refuses it there and makes its pool stale, exactly as without columns.

`split_block` returns the exact part as `BlockEvents`, with the other updates' counts
added to its `seen` and `skipped`, and the hot pools' new records as `HotRecords`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from arena.block_events import BlockEvents, UpdateKey, classify
from arena.frame_columns import HOT_VARIANTS, V2_SYNC_TAG, read_frames
from arena.pool_keys import PoolKeyIndex
from arena.registry import PoolKind
from arena.state_table import SWAP_STATE, StateArray, limbs_to_float
from arena.update_checks import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    swap_violation,
    sync_violation,
)
from exex_bridge import messages as m

IndexArray = npt.NDArray[np.int64]

# variant tag -> the pool kind it sets, as a lookup table over the tags
_KIND_OF_TAG: Final = np.zeros(max(HOT_VARIANTS) + 1, dtype=np.uint8)
for _tag, (_, _kind) in HOT_VARIANTS.items():
    _KIND_OF_TAG[_tag] = _kind
_TAG_SPAN: Final = 32  # protocol * span + tag: one code per counted (protocol, class)
# the clear-pass window of the range checks (update_checks.py), in limbs and ticks
_SQRT_TOP_WORD: Final = MAX_SQRT_RATIO >> 128  # third limb of the maximum: stay below it
_SQRT_LOW_FLOOR: Final = MIN_SQRT_RATIO << 1
_U112_TOP_WORD: Final = (1 << 48) - 1  # high limb of a uint112
_Q96_LOG: Final = 96 * math.log(2)
_HALF_LOG_TICK: Final = math.log(1.0001) / 2
_CLEAR: Final = 1e-4  # of a tick: far from the edges the exact check could disagree on


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
    pool_count: int,
) -> tuple[BlockEvents, HotRecords]:
    """`payloads[i]` is the frame `events[i]` was decoded from; pool indices are below
    `pool_count`."""
    frames = read_frames(payloads)
    pools, kinds = keys.find(frames.keys)
    tags, hot = frames.tags, frames.hot
    known = pools >= 0
    ours = hot & known & (kinds == _KIND_OF_TAG[tags])
    suspect = np.zeros(len(ours), dtype=np.bool_)
    suspect[hot] = _may_be_refused(frames.records, tags[hot] == V2_SYNC_TAG)
    if suspect.any():  # rare: the exact checks decide, on the reference path
        ours[[i for i in np.flatnonzero(ours & suspect).tolist() if _refused(events[i].update)]] = (
            False
        )
    exact = known & ~ours
    found = _classify_rows(events, exact, lookup)
    if found.indices:  # pools with a mint or burn (or an odd update) are folded in order
        exact_pools = np.zeros(pool_count + 1, dtype=np.bool_)  # [-1]: no pool
        exact_pools[found.indices] = True
        mixed = ours & exact_pools[pools]
        if mixed.any():
            ours &= ~mixed
            exact |= mixed
            found = _classify_rows(events, exact, lookup)
    counted = ~exact
    _count(found.seen, frames.protocols[counted], tags[counted])
    unknown = len(pools) - int(np.count_nonzero(known))
    if unknown:
        found.skipped["unknown_pool"] = found.skipped.get("unknown_pool", 0) + unknown
    rows = np.flatnonzero(ours)
    return found, _last_records(pools[rows], frames.records[ours[hot]], kinds[rows])


def _may_be_refused(
    records: npt.NDArray[np.uint8], is_sync: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Hot records that are not clearly within what the range checks allow; only these
    are checked exactly (`_refused`). Conservative: a record passed here passes there."""
    sqrt = np.ascontiguousarray(records[:, 0:32]).view("<u8")  # 4 limbs, low first
    tick = np.ascontiguousarray(records[:, 48:52]).view("<i4").reshape(-1).astype(np.float64)
    price = limbs_to_float(np.ascontiguousarray(records[:, 0:32]), 32)
    in_range = (
        (sqrt[:, 3] == 0)
        & (sqrt[:, 2] < _SQRT_TOP_WORD)  # below MAX_SQRT_RATIO, with room
        & ((sqrt[:, 1] > 0) | (sqrt[:, 0] > _SQRT_LOW_FLOOR))  # above MIN_SQRT_RATIO
        & (np.abs(tick) <= MAX_TICK)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = (np.log(price) - _Q96_LOG) / _HALF_LOG_TICK
    swap_ok = in_range & (tick >= estimate - 1 + _CLEAR) & (tick <= estimate - _CLEAR)
    reserves = np.ascontiguousarray(records[:, 0:32]).view("<u8")  # r0 low, high, r1 ...
    sync_ok = (reserves[:, 1] <= _U112_TOP_WORD) & (reserves[:, 3] <= _U112_TOP_WORD)
    ok: npt.NDArray[np.bool_] = np.where(is_sync, sync_ok, swap_ok)
    return ~ok


def _refused(update: m.PoolUpdatePayload) -> bool:
    """Whether the range checks refuse a hot update (a swap's or a sync's values)."""
    if update.__class__ is m.V2Sync:
        return sync_violation(update.reserve0, update.reserve1) is not None
    if update.__class__ is m.V3Swap or update.__class__ is m.V4Swap:
        return swap_violation(update.sqrt_price_x96, update.liquidity, update.tick) is not None
    return False


def _classify_rows(
    events: Sequence[m.PoolUpdateMessage],
    exact: npt.NDArray[np.bool_],
    lookup: Mapping[bytes, tuple[int, int]],
) -> BlockEvents:
    return classify([events[i] for i in np.flatnonzero(exact).tolist()], lookup)


def _count(
    seen: dict[UpdateKey, int],
    protocols: npt.NDArray[np.uint8],
    tags: npt.NDArray[np.uint8],
) -> None:
    if len(tags) == 0:
        return
    counts = np.bincount(protocols.astype(np.int64) * _TAG_SPAN + tags)
    codes = np.flatnonzero(counts)
    for code, count in zip(codes.tolist(), counts[codes].tolist(), strict=True):
        protocol, tag = divmod(code, _TAG_SPAN)
        key = (m.Protocol(protocol), m.POOL_UPDATE_VARIANTS[tag])
        seen[key] = seen.get(key, 0) + count


def _last_records(
    pools: IndexArray, records: npt.NDArray[np.uint8], kinds: npt.NDArray[np.uint8]
) -> HotRecords:
    """Within a block the last record sent for a pool (in stream order) is its new one."""
    if len(pools) == 0:
        return NO_HOT_RECORDS
    order = np.argsort(pools, kind="stable")
    ordered = pools[order]
    is_last = np.empty(len(pools), dtype=np.bool_)
    np.not_equal(ordered[1:], ordered[:-1], out=is_last[:-1])
    is_last[-1] = True
    last, unique = order[is_last], ordered[is_last]
    v2 = kinds[last] == PoolKind.V2
    newest: StateArray = np.ascontiguousarray(records[last]).view(SWAP_STATE).reshape(-1)
    return HotRecords(unique, newest, unique[v2])
