"""Hypothesis strategies for Curve StableSwap-NG plain pools (2..4 coins of 6, 8 or 18
decimals, balances from a thousand to a trillion whole coins, any fee and A)."""

from __future__ import annotations

from hypothesis import strategies as st

from pathfinder.curve_stableswap import StableSwapPool

DECIMALS = st.sampled_from([6, 8, 18])
FEES = st.integers(0, 10**8)
OFFPEG = st.integers(10**10, 10**11)
AMPS = st.integers(1, 100_000).map(lambda a: a * 100)


@st.composite
def pools(draw: st.DrawFn, *, equal: bool = False) -> StableSwapPool:
    n = draw(st.integers(2, 4))
    if equal:
        decimals = [draw(DECIMALS)] * n
        native = draw(st.integers(10**3, 10**12))
        balances = [native * 10 ** decimals[0]] * n
    else:
        decimals = [draw(DECIMALS) for _ in range(n)]
        balances = [draw(st.integers(10**3, 10**12)) * 10**d for d in decimals]
        balances = [b + draw(st.integers(0, 10**6)) for b in balances]
    a = draw(AMPS)
    return StableSwapPool(
        balances=tuple(balances),
        rates=tuple(10 ** (36 - d) for d in decimals),
        fee=draw(FEES),
        offpeg_fee_multiplier=draw(OFFPEG),
        initial_a=a,
        future_a=a,
        initial_a_time=0,
        future_a_time=0,
    )


@st.composite
def pegged_pools(draw: st.DrawFn) -> StableSwapPool:
    """Pools as deployed: balances within 1:100 of each other in value, a fee of at least
    0.01 %, A from 1 to 5 000."""
    n = draw(st.integers(2, 4))
    decimals = [draw(DECIMALS) for _ in range(n)]
    base = draw(st.integers(10**3, 10**10))
    shares = [draw(st.integers(10, 1000)) for _ in range(n)]  # in % of `base`, 0.1x..10x
    balances = [base * s * 10**d // 100 for s, d in zip(shares, decimals, strict=True)]
    a = draw(st.integers(1, 5_000)) * 100
    return StableSwapPool(
        balances=tuple(balances),
        rates=tuple(10 ** (36 - d) for d in decimals),
        fee=draw(st.integers(10**6, 10**8)),
        offpeg_fee_multiplier=draw(OFFPEG),
        initial_a=a,
        future_a=a,
        initial_a_time=0,
        future_a_time=0,
    )
