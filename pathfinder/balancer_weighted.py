"""Balancer V2 weighted pools: a swap's output as the Vault computes it, exact.

A pool's `onSwap` (given in) takes the raw balances the Vault holds and the amount in:

1. the swap fee is taken from the raw amount in, rounded up (`amount.mulUp(fee)`);
2. balances and the remaining amount are scaled to 18 decimals (times the token's
   scaling factor; rate providers are not modelled: such pools are not quoted);
3. `WeightedMath._calcOutGivenIn`: the amount in must be at most 30 % of the balance in
   ("BAL#304"), out = balanceOut · (1 − (balanceIn / (balanceIn + in))^(wIn / wOut)),
   the base rounded up, the power bounded up, the product rounded down;
4. the result is scaled back down, rounded down.

`calc_in_given_out` is the reverse (30 % of the balance out at most, "BAL#305"). The pool
version decides only the `PowRule` (see `pathfinder.balancer_fixed_point`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from arena.coin_pools import CoinPoolState, WeightedParams
from pathfinder import balancer_fixed_point as fp
from pathfinder.balancer_fixed_point import PowRule
from pathfinder.errors import InvalidInputError, MathDomainError

__all__ = [
    "MAX_IN_RATIO",
    "MAX_OUT_RATIO",
    "WeightedPoolVersion",
    "WeightedPoolMath",
    "calc_out_given_in",
    "calc_in_given_out",
    "quote_out",
    "scaling_factor_for_decimals",
    "weighted_math_of",
]

MAX_IN_RATIO: Final = 3 * 10**17
MAX_OUT_RATIO: Final = 3 * 10**17


class WeightedPoolVersion(Enum):
    """The factory generation a weighted pool comes from (its math differs by `PowRule`)."""

    V1 = "v1"  # 20210418 WeightedPool and WeightedPool2Tokens
    V2 = "v2"  # 20220908 weighted pool v2 (and the same math in v3/v4)

    @property
    def pow_rule(self) -> PowRule:
        if self is WeightedPoolVersion.V1:
            return PowRule.ALWAYS_LOG_EXP
        return PowRule.SHORTCUT_1_2_4


def scaling_factor_for_decimals(decimals: int) -> int:
    """The 18-decimal scaling factor of a token (`FixedPoint.ONE · 10^(18 − decimals)`)."""
    if not 0 <= decimals <= 18:
        raise InvalidInputError("decimals", decimals)
    scale: int = fp.ONE * 10 ** (18 - decimals)
    return scale


def calc_out_given_in(
    balance_in: int,
    weight_in: int,
    balance_out: int,
    weight_out: int,
    amount_in: int,
    *,
    rule: PowRule,
) -> int:
    """`WeightedMath._calcOutGivenIn` on 18-decimal (upscaled) values."""
    if amount_in > fp.mul_down(balance_in, MAX_IN_RATIO):
        raise MathDomainError("calc_out_given_in", (balance_in, amount_in), "BAL#304")
    denominator = fp.add(balance_in, amount_in)
    base = fp.div_up(balance_in, denominator)
    exponent = fp.div_down(weight_in, weight_out)
    power = fp.pow_up(base, exponent, rule)
    return fp.mul_down(balance_out, fp.complement(power))


def calc_in_given_out(
    balance_in: int,
    weight_in: int,
    balance_out: int,
    weight_out: int,
    amount_out: int,
    *,
    rule: PowRule,
) -> int:
    """`WeightedMath._calcInGivenOut` on 18-decimal (upscaled) values."""
    if amount_out > fp.mul_down(balance_out, MAX_OUT_RATIO):
        raise MathDomainError("calc_in_given_out", (balance_out, amount_out), "BAL#305")
    base = fp.div_up(balance_out, fp.sub(balance_out, amount_out))
    exponent = fp.div_up(weight_out, weight_in)
    power = fp.pow_up(base, exponent, rule)
    ratio = fp.sub(power, fp.ONE)
    return fp.mul_up(balance_in, ratio)


@dataclass(frozen=True, slots=True)
class WeightedPoolMath:
    """What a weighted pool's swap depends on besides its balances.

    `weights` are the normalized weights (18 decimals, summing to 1e18), `scaling_factors`
    the 18-decimal factors of `scaling_factor_for_decimals`, `swap_fee` 18 decimals; all
    in the pool's token order (the Vault's `getPoolTokens` order).
    """

    version: WeightedPoolVersion
    weights: tuple[int, ...]
    scaling_factors: tuple[int, ...]
    swap_fee: int

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.scaling_factors) or len(self.weights) < 2:
            raise InvalidInputError("weights", self.weights)
        if any(w <= 0 for w in self.weights) or any(s <= 0 for s in self.scaling_factors):
            raise InvalidInputError("weights/scaling_factors", (self.weights, self.scaling_factors))
        if not 0 <= self.swap_fee < fp.ONE:
            raise InvalidInputError("swap_fee", self.swap_fee)

    def with_swap_fee(self, swap_fee: int) -> WeightedPoolMath:
        return WeightedPoolMath(
            version=self.version,
            weights=self.weights,
            scaling_factors=self.scaling_factors,
            swap_fee=swap_fee,
        )

    def amount_out(self, balances: tuple[int, ...], i: int, j: int, amount_in: int) -> int:
        """Raw amount of token j out for a raw `amount_in` of token i (a given-in swap)."""
        if i == j or amount_in <= 0:
            raise InvalidInputError("swap", (i, j, amount_in))
        net_in = fp.sub(amount_in, fp.mul_up(amount_in, self.swap_fee))
        scale_in, scale_out = self.scaling_factors[i], self.scaling_factors[j]
        out = calc_out_given_in(
            fp.mul_down(balances[i], scale_in),
            self.weights[i],
            fp.mul_down(balances[j], scale_out),
            self.weights[j],
            fp.mul_down(net_in, scale_in),
            rule=self.version.pow_rule,
        )
        return fp.div_down(out, scale_out)

    def amount_in(self, balances: tuple[int, ...], i: int, j: int, amount_out: int) -> int:
        """Raw amount of token i in for a raw `amount_out` of token j (a given-out swap)."""
        if i == j or amount_out <= 0:
            raise InvalidInputError("swap", (i, j, amount_out))
        scale_in, scale_out = self.scaling_factors[i], self.scaling_factors[j]
        net_in = calc_in_given_out(
            fp.mul_down(balances[i], scale_in),
            self.weights[i],
            fp.mul_down(balances[j], scale_out),
            self.weights[j],
            fp.mul_down(amount_out, scale_out),
            rule=self.version.pow_rule,
        )
        raw_net_in = fp.div_up(net_in, scale_in)
        return fp.div_up(raw_net_in, fp.complement(self.swap_fee))


_VERSION_OF_GENERATION: Final = {1: WeightedPoolVersion.V1, 2: WeightedPoolVersion.V2}


def weighted_math_of(params: WeightedParams) -> WeightedPoolMath:
    """The math of a pool as the arena holds it (`WeightedParams.version`: 1 is the
    20210418 generation, 2 the 20220908 one and later)."""
    version = _VERSION_OF_GENERATION.get(params.version)
    if version is None:
        raise InvalidInputError("version", params.version)
    return WeightedPoolMath(
        version=version,
        weights=params.weights,
        scaling_factors=params.scaling_factors,
        swap_fee=params.swap_fee,
    )


def quote_out(state: CoinPoolState, token_in: bytes, token_out: bytes, amount_in: int) -> int:
    """A given-in swap's output against an arena multi-coin state of a weighted pool."""
    if not isinstance(state.params, WeightedParams):
        raise InvalidInputError("params", type(state.params).__name__)
    i, j = state.coin_index(token_in), state.coin_index(token_out)
    if i is None or j is None:
        raise InvalidInputError("token", (token_in.hex(), token_out.hex()))
    return weighted_math_of(state.params).amount_out(state.balances, i, j, amount_in)
