"""Curve StableSwap-NG stream updates folded into new multi-coin pool states.

What the stream carries (the producer reads the pool's storage at the end of the block,
so every message of one pool in one block carries the same end-of-block state):

- `CurveLiquidity` (sent for exchanges and for every add/remove liquidity event): the
  whole mutable state: `effective_balances` = stored balances minus admin balances (the
  admin fee share already taken out, as the pool's own `balances(i)` reads them), `fee`,
  `offpeg_fee_multiplier` and the four A-ramp values. Absolute values, no deltas.
- `CurveRampA`: the RampA event: initial/future A (times A_PRECISION) and their times.
- `CurveFeeUpdate`: the ApplyNewFee event: fee and offpeg fee multiplier.

None of them carries the rates or the coins (immutable in the pool, read at hydration),
so an update of a pool without a hydrated state is counted and ignored. A
`CurveLiquidity` of a hydrated pool gives its whole mutable state: like a V2 Sync, it
makes the pool LIVE. An update whose coin count differs from the pool's is refused and
the pool becomes stale.
"""

from __future__ import annotations

from typing import Final

import msgspec

from arena.block_events import BlockEvents
from arena.coin_pools import CoinPoolState, CoinPoolStore, CurveParams
from arena.pool_status import StaleLabel, StaleReason
from exex_bridge.messages import CurveFeeUpdate, CurveLiquidity, CurveRampA

CURVE_UPDATES: Final[frozenset[type]] = frozenset({CurveLiquidity, CurveRampA, CurveFeeUpdate})
UNHYDRATED: Final = "coin_pool_unhydrated"  # the updates_ignored reason

CoinWork = dict[int, CoinPoolState]
Refused = list[tuple[int, StaleLabel, str]]


def stage_curve_states(
    found: BlockEvents, store: CoinPoolStore
) -> tuple[CoinWork, list[int], Refused, int]:
    """The block's new Curve states, the pools a CurveLiquidity gave a whole state (to
    make LIVE), the refused updates, and the count of updates of pools without state."""
    work: CoinWork = {}
    whole: list[int] = []
    refused: Refused = []
    unhydrated = 0
    if not any(cls in CURVE_UPDATES for _, cls in found.seen):  # Balancer's updates only
        return work, whole, refused, unhydrated
    for index, p in zip(found.indices, found.payloads, strict=True):
        if p.__class__ not in CURVE_UPDATES:
            continue
        current = work.get(index) or store.state(index)
        if current is None or not isinstance(current.params, CurveParams):
            unhydrated += 1
            continue
        new = _curve_state(current, current.params, p)
        if new is None:
            refused.append((index, StaleReason.COIN_COUNT_MISMATCH, f"{p!r}"))
            continue
        work[index] = new
        if p.__class__ is CurveLiquidity:
            whole.append(index)
    return work, whole, refused, unhydrated


def _curve_state(current: CoinPoolState, params: CurveParams, p: object) -> CoinPoolState | None:
    replace = msgspec.structs.replace
    match p:
        case CurveLiquidity():
            if len(p.effective_balances) != len(current.balances):
                return None
            new_params = replace(
                params,
                fee=p.fee,
                offpeg_fee_multiplier=p.offpeg_fee_multiplier,
                initial_a=p.initial_a,
                future_a=p.future_a,
                initial_a_time=p.initial_a_time,
                future_a_time=p.future_a_time,
            )
            return replace(current, balances=tuple(p.effective_balances), params=new_params)
        case CurveRampA():
            new_params = replace(
                params,
                initial_a=p.initial_a,
                future_a=p.future_a,
                initial_a_time=p.initial_a_time,
                future_a_time=p.future_a_time,
            )
            return replace(current, params=new_params)
        case CurveFeeUpdate():
            new_params = replace(params, fee=p.fee, offpeg_fee_multiplier=p.offpeg_fee_multiplier)
            return replace(current, params=new_params)
    return current
