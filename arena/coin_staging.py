"""A block's multi-coin pool updates (Curve, Balancer) staged into new states at once."""

from __future__ import annotations

from arena.balancer_updates import stage_balancer_states
from arena.block_events import BlockEvents
from arena.coin_pools import CoinPoolStore
from arena.curve_updates import UNHYDRATED, CoinWork, Refused, stage_curve_states
from arena.pool_status import StaleReason


def stage_coin_states(
    found: BlockEvents, store: CoinPoolStore
) -> tuple[CoinWork, list[int], Refused]:
    """The block's new multi-coin states, the pools given a whole state (to make LIVE),
    and the pools to mark stale: refused updates, and first-generation Balancer pools
    after a join or exit (applied, but their protocol fees are not in the stream).
    Updates of pools without state are counted in `found.skipped`."""
    if not found.coin_updates:  # most blocks
        return {}, [], []
    work, whole, refused, unhydrated = stage_curve_states(found, store)
    balancer_work, balancer_refused, drifted, balancer_unhydrated = stage_balancer_states(
        found, store
    )
    work.update(balancer_work)
    refused.extend(balancer_refused)
    refused.extend(
        (index, StaleReason.BALANCER_JOIN_EXIT_PROTOCOL_FEES, "join/exit; re-read by RPC")
        for index in drifted
    )
    unhydrated += balancer_unhydrated
    if unhydrated:
        found.skipped[UNHYDRATED] = found.skipped.get(UNHYDRATED, 0) + unhydrated
    return work, whole, refused
