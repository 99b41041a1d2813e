"""Balancer V2 weighted pool stream updates folded into new multi-coin pool states.

What the stream carries (the producer decodes the Vault's and the pool's events):

- `BalancerSwap`: the Vault's `Swap`: the pool's balance of `token_in` grows by
  `amount_in`, of `token_out` shrinks by `amount_out` (a delta, in token units).
- `BalancerLiquidity`: the Vault's `PoolBalanceChanged` (a join or an exit): one signed
  delta per token, matched to the pool's coins by address. The producer drops the
  event's protocol fee amounts, which the Vault also takes from the balances; pools of
  the first generation (`WeightedParams.version == 1`) pay their protocol fees that way,
  so after one of their joins or exits the balances are applied but the pool is marked
  stale (`balancer_join_exit_protocol_fees`) until it is read again by RPC. Later pools
  pay protocol fees in pool tokens: their deltas are exact.
- `BalancerFeeUpdate`: the swap fee read from the chain (absolute, 1e18 fixed point).

A reverted block needs none of them: the store puts back the states the block replaced.
An update of a pool without a hydrated state is counted and ignored; one naming a token
the pool does not hold, or taking a balance below zero, is refused and the pool becomes
stale.
"""

from __future__ import annotations

from typing import Final

import msgspec

from arena.block_events import BlockEvents
from arena.coin_pools import CoinPoolState, CoinPoolStore, WeightedParams
from arena.pool_status import StaleLabel, StaleReason
from exex_bridge.messages import BalancerFeeUpdate, BalancerLiquidity, BalancerSwap

BALANCER_UPDATES: Final[frozenset[type]] = frozenset(
    {BalancerSwap, BalancerLiquidity, BalancerFeeUpdate}
)
# the pool generation whose joins and exits take protocol fees from the balances
PROTOCOL_FEES_IN_TOKENS_VERSION: Final = 1

CoinWork = dict[int, CoinPoolState]
Refused = list[tuple[int, StaleLabel, str]]


def stage_balancer_states(
    found: BlockEvents, store: CoinPoolStore
) -> tuple[CoinWork, Refused, list[int], int]:
    """The block's new Balancer states, the refused updates, the pools to mark stale
    after a join or exit (their balances are applied), and the count of updates of
    pools without state."""
    work: CoinWork = {}
    refused: Refused = []
    drifted: list[int] = []
    unhydrated = 0
    if not any(cls in BALANCER_UPDATES for _, cls in found.seen):  # Curve's updates only
        return work, refused, drifted, unhydrated
    for index, p in zip(found.indices, found.payloads, strict=True):
        if p.__class__ not in BALANCER_UPDATES:
            continue
        current = work.get(index) or store.state(index)
        if current is None or not isinstance(current.params, WeightedParams):
            unhydrated += 1
            continue
        new, why = _balancer_state(current, current.params, p)
        if new is None:
            refused.append((index, StaleReason.BALANCER_UPDATE_REFUSED, f"{why}: {p!r}"))
            continue
        work[index] = new
        if p.__class__ is BalancerLiquidity and (
            current.params.version == PROTOCOL_FEES_IN_TOKENS_VERSION
        ):
            drifted.append(index)
    return work, refused, drifted, unhydrated


def _balancer_state(
    current: CoinPoolState, params: WeightedParams, p: object
) -> tuple[CoinPoolState | None, str]:
    balances = list(current.balances)
    match p:
        case BalancerSwap():
            i, j = current.coin_index(p.token_in), current.coin_index(p.token_out)
            if i is None or j is None or i == j:
                return None, "a token the pool does not hold"
            balances[i] += p.amount_in
            balances[j] -= p.amount_out
        case BalancerLiquidity():
            if len(p.tokens) != len(p.deltas):
                return None, "tokens and deltas differ in length"
            for token, delta in zip(p.tokens, p.deltas, strict=True):
                k = current.coin_index(token)
                if k is None:
                    return None, "a token the pool does not hold"
                balances[k] += delta
        case BalancerFeeUpdate():
            fee = msgspec.structs.replace(params, swap_fee=p.swap_fee_percentage)
            return msgspec.structs.replace(current, params=fee), ""
    if any(b < 0 for b in balances):
        return None, "a balance below zero"
    return msgspec.structs.replace(current, balances=tuple(balances)), ""
