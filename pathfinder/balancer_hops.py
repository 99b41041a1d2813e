"""A Balancer weighted pool as one hop of a cycle: its screen form and its exact quotes.

The screen needs each hop as a Möbius map `x → K·x / (M + N·x)` that never promises more
than the pool pays. With u = γ·x / B_in (γ = 1 − swap fee, balances raw) and the weight
ratio r = w_in / w_out, the pool pays B_out·(1 − (1 + u)^−r). Two lower bounds, each
exact in its first derivative at x = 0 (so the screened spot price is the pool's):

- r ≥ 1: (1 + u)^r ≥ 1 + r·u (Bernoulli), so the pool pays at least B_out·r·u / (1 + r·u);
- r < 1: with v = u / (1 + u), 1 − (1 − v)^r ≥ r·v, so it pays at least B_out·r·u / (1 + u).

Hence M = B_in, K = γ·r·B_out, N = γ·max(r, 1). `cap` is the input the pool refuses
beyond: the amount in after the fee may be at most 30 % of the balance in. What the
bound leaves out is the contract's own rounding, always in the pool's favour: the fee is
rounded up (up to one raw unit of input more) and the power widened (up to
1e-14 · B_out + 1 wei). `overstatement_bound` is what the screen may therefore promise
beyond the pool, never more; every candidate is verified with exact integer math.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from arena.coin_pools import CoinPoolState, WeightedParams
from pathfinder.balancer_weighted import MAX_IN_RATIO, WeightedPoolMath, weighted_math_of
from pathfinder.errors import PathfinderError

__all__ = ["BalancerRead", "MobiusHop", "balancer_mobius", "balancer_read", "overstatement_bound"]

_ONE: Final = 1e18
# keeps the float cap strictly inside the integer ratio limit
_CAP_MARGIN: Final = 1e-9
# the contract's rounding, relative to the balance out (see the module docstring)
ROUNDING_SLACK: Final = 1e-13


class MobiusHop(NamedTuple):
    m: float
    k: float
    n: float
    cap: float
    gamma: float  # 1 − swap fee


def balancer_mobius(state: CoinPoolState, i: int, j: int) -> MobiusHop | None:
    """The conservative screen form of swapping coin i for coin j; None if unusable."""
    params = state.params
    if not isinstance(params, WeightedParams) or i == j:
        return None
    b_in, b_out = float(state.balances[i]), float(state.balances[j])
    if b_in <= 0 or b_out <= 0:
        return None
    gamma = 1.0 - params.swap_fee / _ONE
    r = params.weights[i] / params.weights[j]
    cap = (MAX_IN_RATIO / _ONE) * b_in * (1.0 - _CAP_MARGIN) / gamma
    return MobiusHop(m=b_in, k=gamma * r * b_out, n=gamma * max(r, 1.0), cap=cap, gamma=gamma)


def overstatement_bound(hop: MobiusHop, balance_out: int) -> float:
    """How much more than the pool pays `hop` may promise for any input within its cap:
    one raw unit of the input left after the fee, at the fee-free spot rate, plus the
    power's widening and the output's rounding down."""
    return hop.k / (hop.m * hop.gamma) + ROUNDING_SLACK * balance_out + 2.0


class BalancerRead(NamedTuple):
    """What exact quotes of one weighted pool read from the arena: its math and balances
    now, and the coin positions of the whitelist's token0 and token1."""

    math: WeightedPoolMath
    balances: tuple[int, ...]
    index0: int
    index1: int

    def coins(self, zero_for_one: bool) -> tuple[int, int]:
        return (self.index0, self.index1) if zero_for_one else (self.index1, self.index0)

    def out(self, zero_for_one: bool, amount_in: int) -> int:
        """Exact output, 0 where the pool refuses the swap."""
        i, j = self.coins(zero_for_one)
        try:
            return self.math.amount_out(self.balances, i, j, amount_in)
        except PathfinderError:
            return 0

    def need(self, zero_for_one: bool, amount_out: int) -> int:
        """Exact input for `amount_out`, 0 where the pool refuses the swap."""
        i, j = self.coins(zero_for_one)
        try:
            return self.math.amount_in(self.balances, i, j, amount_out)
        except PathfinderError:
            return 0


def balancer_read(state: CoinPoolState | None, token0: bytes, token1: bytes) -> BalancerRead | None:
    """The exact-quote view of a weighted pool between two of its coins, None if the
    state is missing, not a weighted pool's, or lacks one of the coins."""
    if state is None or not isinstance(state.params, WeightedParams):
        return None
    i, j = state.coin_index(token0), state.coin_index(token1)
    if i is None or j is None:
        return None
    try:
        math = weighted_math_of(state.params)
    except PathfinderError:
        return None
    return BalancerRead(math, state.balances, i, j)
