"""What the dev chain holds: tokens, pools, liquidity depth and deliberate mispricing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal

Protocol = Literal["v2", "v3"]

MIN_TICK: Final = -887272
MAX_TICK: Final = 887272
TICK_SPACING_BY_FEE: Final[dict[int, int]] = {500: 10, 3000: 60, 10000: 200}


@dataclass(frozen=True, kw_only=True)
class TokenSpec:
    symbol: str
    decimals: int
    usd_price: Fraction


@dataclass(frozen=True, kw_only=True)
class PoolSpec:
    protocol: Protocol
    token_a: str
    token_b: str
    fee: int = 3000
    usd_depth: int = 10_000_000
    # Price offset against the tokens' USD prices, in basis points: pools that disagree
    # are what makes the arbitrage cycles real.
    skew_bps: int = 0


@dataclass(frozen=True, kw_only=True)
class DeploymentSpec:
    tokens: tuple[TokenSpec, ...]
    pools: tuple[PoolSpec, ...]
    # Whole token units minted per token; the trader gets half of each.
    supply_usd: int = 10**13

    def token(self, symbol: str) -> TokenSpec:
        for token in self.tokens:
            if token.symbol == symbol:
                return token
        raise KeyError(symbol)


DEFAULT_SPEC: Final = DeploymentSpec(
    tokens=(
        TokenSpec(symbol="WETH", decimals=18, usd_price=Fraction(2000)),
        TokenSpec(symbol="USDC", decimals=6, usd_price=Fraction(1)),
        TokenSpec(symbol="DAI", decimals=18, usd_price=Fraction(1)),
        TokenSpec(symbol="WBTC", decimals=8, usd_price=Fraction(40000)),
    ),
    pools=(
        PoolSpec(protocol="v2", token_a="WETH", token_b="USDC", usd_depth=20_000_000),
        PoolSpec(protocol="v2", token_a="WETH", token_b="DAI", skew_bps=25),
        PoolSpec(protocol="v2", token_a="USDC", token_b="DAI", usd_depth=5_000_000, skew_bps=-10),
        PoolSpec(protocol="v2", token_a="WBTC", token_b="WETH", skew_bps=15),
        PoolSpec(protocol="v3", token_a="WETH", token_b="USDC", fee=500, skew_bps=30),
        PoolSpec(protocol="v3", token_a="WETH", token_b="USDC", fee=3000, skew_bps=-20),
        PoolSpec(protocol="v3", token_a="WETH", token_b="DAI", fee=3000, skew_bps=-15),
        PoolSpec(protocol="v3", token_a="USDC", token_b="DAI", fee=500, usd_depth=5_000_000),
        PoolSpec(protocol="v3", token_a="WBTC", token_b="WETH", fee=3000, skew_bps=-25),
        PoolSpec(protocol="v3", token_a="WBTC", token_b="USDC", fee=10000, skew_bps=40),
    ),
)


def raw_amount(token: TokenSpec, usd: Fraction | int) -> int:
    """Raw token units worth `usd` dollars."""
    return int(Fraction(usd) / token.usd_price * 10**token.decimals)


def raw_price(token0: TokenSpec, token1: TokenSpec, skew_bps: int = 0) -> Fraction:
    """Raw token1 units per raw token0 unit (the V3 `price`)."""
    human = token0.usd_price / token1.usd_price * Fraction(10_000 + skew_bps, 10_000)
    return human * Fraction(10**token1.decimals, 10**token0.decimals)


def sqrt_price_x96(price: Fraction) -> int:
    return math.isqrt(price.numerator * 2**192 // price.denominator)


def tick_of_price(price: Fraction) -> int:
    # Approximate (float log) is enough: it only places liquidity ranges.
    return math.floor(math.log(price.numerator / price.denominator) / math.log(1.0001))


def align_down(tick: int, spacing: int) -> int:
    return (tick // spacing) * spacing


def full_range(spacing: int) -> tuple[int, int]:
    return -(-MIN_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing


def clamp_range(lower: int, upper: int, spacing: int) -> tuple[int, int]:
    lo_limit, hi_limit = full_range(spacing)
    lower = max(align_down(lower, spacing), lo_limit)
    upper = min(align_down(upper, spacing), hi_limit)
    if upper <= lower:
        upper = lower + spacing
    return lower, upper
