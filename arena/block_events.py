"""One block's pool updates sorted into those that change modelled state and those that
do not, with the counts the stream metrics report.

Committed and reverted blocks are classified by the same pass: the pool is looked up in
the registry, the payload's class must be an update of that pool's kind, and every update
is counted by (protocol, payload class). Updates that do not apply are kept with the
reason they were skipped; an update of the wrong kind for a known pool makes it stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final, final

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from arena.metrics import ArenaMetrics
from arena.pool_status import StaleLabel, StaleReason
from arena.registry import COIN_POOL_KINDS, PoolKind
from exex_bridge import messages as m

# payload class -> the pool kind whose state it changes
KIND_OF_UPDATE: Final[dict[type, int]] = {
    m.V2Sync: PoolKind.V2,
    m.V3Swap: PoolKind.V3,
    m.V4Swap: PoolKind.V4,
    m.V3Liquidity: PoolKind.V3,
    m.V4Liquidity: PoolKind.V4,
    m.CurveLiquidity: PoolKind.CURVE_STABLE,
    m.CurveRampA: PoolKind.CURVE_STABLE,
    m.CurveFeeUpdate: PoolKind.CURVE_STABLE,
    m.BalancerSwap: PoolKind.BALANCER_WEIGHTED,
    m.BalancerLiquidity: PoolKind.BALANCER_WEIGHTED,
    m.BalancerFeeUpdate: PoolKind.BALANCER_WEIGHTED,
}

UpdateKey = tuple[m.Protocol, type]

# payload classes of multi-coin pools (Curve, Balancer): their state is in CoinPoolStore
COIN_UPDATES: Final[frozenset[type]] = frozenset(
    cls for cls, kind in KIND_OF_UPDATE.items() if kind in COIN_POOL_KINDS
)


@dataclass(slots=True)
class BlockEvents:
    # every update that changes modelled state, in stream order: its pool and payload
    indices: list[int] = field(default_factory=list)
    payloads: list[m.PoolUpdatePayload] = field(default_factory=list)
    seen: dict[UpdateKey, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> updates
    # pools sent an update of another kind than theirs: (pool index, reason, detail)
    mismatched: list[tuple[int, StaleLabel, str]] = field(default_factory=list)
    # how many of `payloads` are multi-coin updates: most blocks have none, and the
    # multi-coin staging then never walks the block
    coin_updates: int = 0


def classify(
    events: Sequence[m.PoolUpdateMessage], lookup: Mapping[bytes, tuple[int, int]]
) -> BlockEvents:
    """Sort a block's updates; `lookup` is the registry's key -> (index, kind) of active pools."""
    found = BlockEvents()
    add_index, add_payload = found.indices.append, found.payloads.append
    seen, kinds = found.seen, KIND_OF_UPDATE
    skipped: list[tuple[m.PoolUpdatePayload, tuple[int, int] | None]] = []
    for event in events:  # the hot loop: one dict probe per lookup, no other allocation
        p = event.update
        cls = p.__class__
        key = (event.protocol, cls)
        seen[key] = seen.get(key, 0) + 1
        entry = lookup.get(event.pool_id.value)
        if entry is None or kinds.get(cls) != entry[1]:
            skipped.append((p, entry))
            continue
        add_index(entry[0])
        add_payload(p)
    coin_seen = sum(n for (_, cls), n in seen.items() if cls in COIN_UPDATES)
    if coin_seen:  # less those skipped: counted here, not in the hot loop
        coin_seen -= sum(1 for p, _ in skipped if p.__class__ in COIN_UPDATES)
        found.coin_updates = coin_seen
    if skipped:
        _sort_skipped(found, skipped)
    return found


def sorted_rows(pools: set[int]) -> npt.NDArray[np.int64]:
    rows = np.fromiter(pools, dtype=np.int64, count=len(pools))
    rows.sort()
    return rows


def _sort_skipped(
    found: BlockEvents, skipped: list[tuple[m.PoolUpdatePayload, tuple[int, int] | None]]
) -> None:
    reasons = found.skipped
    for payload, entry in skipped:
        if entry is None:
            reason = "unknown_pool"
        elif type(payload) not in KIND_OF_UPDATE:
            reason = "unmodelled_update"
        else:
            reason = "kind_mismatch"
            name = type(payload).__name__
            found.mismatched.append(
                (
                    entry[0],
                    StaleReason.UPDATE_KIND_MISMATCH,
                    f"{name} for a {PoolKind(entry[1]).name} pool",
                )
            )
        reasons[reason] = reasons.get(reason, 0) + 1


@final
class UpdateCounters:
    """The labelled children of the update counters, resolved once per label set.

    `resolve` (which may raise, e.g. for a label the metric refuses) runs before a block
    changes anything, and a failed block takes back the series it created; `publish`
    only adds to counters already resolved.
    """

    def __init__(self, metrics: ArenaMetrics) -> None:
        self._metrics = metrics
        self._updates: dict[UpdateKey, Counter] = {}
        self._ignored: dict[str, Counter] = {}

    def resolve(
        self, found: BlockEvents, undo: list[Callable[[], object]]
    ) -> list[tuple[Counter, int]]:
        """The children to add each count to; a series created here is removed by `undo`."""
        out = []
        for key, n in found.seen.items():
            child = self._updates.get(key)
            if child is None:
                labels = (key[0].name.lower(), key[1].__name__)
                child = self._updates[key] = self._metrics.updates.labels(*labels)
                undo.append(partial(self._forget_update, key, labels))
            out.append((child, n))
        for reason, n in found.skipped.items():
            child = self._ignored.get(reason)
            if child is None:
                child = self._ignored[reason] = self._metrics.updates_ignored.labels(reason)
                undo.append(partial(self._forget_ignored, reason))
            out.append((child, n))
        return out

    def _forget_update(self, key: UpdateKey, labels: tuple[str, str]) -> None:
        del self._updates[key]
        self._metrics.updates.remove(*labels)

    def _forget_ignored(self, reason: str) -> None:
        del self._ignored[reason]
        self._metrics.updates_ignored.remove(reason)


def resolve_stale_counts(
    metrics: ArenaMetrics,
    newly_stale: Mapping[StaleLabel, list[int]],
    undo: list[Callable[[], object]],
) -> list[tuple[Counter, int]]:
    """The stale-marking children a block adds to; a series created here goes on `undo`."""
    if not newly_stale:
        return []
    marked = metrics.stale_marked
    held = {s.labels["reason"] for family in marked.collect() for s in family.samples}
    out = []
    for reason, indices in newly_stale.items():
        out.append((marked.labels(reason=reason.value), len(indices)))
        if reason.value not in held:
            undo.append(partial(marked.remove, reason.value))
    return out


def publish(counts: list[tuple[Counter, int]]) -> None:
    for child, n in counts:
        child.inc(n)
