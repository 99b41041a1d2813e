"""Which V4 pools the pathfinder can price to the wei, and why the others are left out.

A V4 swap's amounts are the concentrated-liquidity loop's (`pathfinder.v3_swap`) only
when nothing else takes part in them. Left out of the cycle graph (their state is still
followed and kept exact):

- a dynamic fee (the 0x800000 flag in the key's fee): the hooks set the LP fee, per swap
  if they like, and the stream does not carry it;
- hooks whose address has a swap-return-delta permission bit (`beforeSwapReturnDelta`,
  bit 3, or `afterSwapReturnDelta`, bit 2): the hook may take or add to either amount;
- a pool id that is not `keccak256(abi.encode(key))` of the whitelisted tokens, fee,
  tick spacing and hooks: the whitelist's fee or hooks do not describe the pool.

The protocol fee (zero unless the PoolManager's controller sets one) is not modelled; see
docs/decisions/0019-v4-hooks-and-fees.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from exex_bridge.v4_storage import v4_pool_id
from exex_bridge.whitelist import V4_DYNAMIC_FEE_FLAG, WhitelistedPool

__all__ = ["BEFORE_SWAP_RETURNS_DELTA", "AFTER_SWAP_RETURNS_DELTA", "V4Exclusion", "v4_exclusion"]

BEFORE_SWAP_RETURNS_DELTA: Final = 1 << 3
AFTER_SWAP_RETURNS_DELTA: Final = 1 << 2
_NO_HOOKS: Final = bytes(20)


class V4Exclusion(StrEnum):
    DYNAMIC_FEE = "dynamic_fee"
    HOOK_RETURNS_DELTA = "hook_returns_delta"
    POOL_KEY_MISMATCH = "pool_key_mismatch"


def v4_exclusion(pool: WhitelistedPool) -> V4Exclusion | None:
    """Why this V4 pool cannot be priced exactly, or None when it can."""
    hooks = pool.hooks or _NO_HOOKS
    fee, spacing = pool.fee or 0, pool.tick_spacing or 0
    expected = v4_pool_id(pool.token0.address, pool.token1.address, fee, spacing, hooks)
    if expected != pool.key:
        return V4Exclusion.POOL_KEY_MISMATCH
    if fee & V4_DYNAMIC_FEE_FLAG:
        return V4Exclusion.DYNAMIC_FEE
    flags = int.from_bytes(hooks, "big")
    if flags & (BEFORE_SWAP_RETURNS_DELTA | AFTER_SWAP_RETURNS_DELTA):
        return V4Exclusion.HOOK_RETURNS_DELTA
    return None
