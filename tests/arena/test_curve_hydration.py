"""Which Curve pools the arena models: `classify_curve_pool` over what the node answered.

The reads of a real plain pool are proven on anvil (tests/chain/test_curve_pool.py);
here every exclusion reason is taken in turn from one plain pool's reads.
"""

from __future__ import annotations

import msgspec
import pytest

from arena.coin_pools import CurveParams
from arena.curve_hydration import CurveExclusion, CurveReads, classify_curve_pool

PLAIN = CurveReads(
    n_coins=2,
    base_pool=False,
    stored_rates=(10**18, 10**30),
    fee=4_000_000,
    offpeg_fee_multiplier=20_000_000_000,
    a_values=(20_000, 30_000, 1_700_000_000, 1_700_864_000),
    coins=(b"\x01" * 20, b"\x02" * 20),
    balances=(10**24, 10**12),
    stored_minus_admin=(10**24, 10**12),
    decimals=(18, 6),
)


def test_a_plain_pool_is_modelled_with_what_the_node_said() -> None:
    state, excluded, _ = classify_curve_pool(PLAIN)
    assert excluded is None and state is not None
    assert state.coins == PLAIN.coins and state.balances == PLAIN.balances
    assert state.params == CurveParams(
        rates=(10**18, 10**30),
        fee=4_000_000,
        offpeg_fee_multiplier=20_000_000_000,
        initial_a=20_000,
        future_a=30_000,
        initial_a_time=1_700_000_000,
        future_a_time=1_700_864_000,
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"stored_rates": (10**18, 10**30 + 12345)}, CurveExclusion.RATES_NOT_PLAIN),  # oracle
        ({"stored_rates": (1_050_000_000_000_000_000, 10**30)}, CurveExclusion.RATES_NOT_PLAIN),
        ({"base_pool": True}, CurveExclusion.META_POOL),
        ({"balances": (10**24 + 5, 10**12)}, CurveExclusion.REBASING_COIN),
        ({"n_coins": None}, CurveExclusion.UNREADABLE),
        ({"n_coins": 9}, CurveExclusion.UNREADABLE),
        ({"fee": None}, CurveExclusion.UNREADABLE),
        ({"decimals": None}, CurveExclusion.UNREADABLE),
        ({"stored_rates": (10**18,)}, CurveExclusion.UNREADABLE),
    ],
)
def test_other_pools_are_excluded_by_reason(
    change: dict[str, object], reason: CurveExclusion
) -> None:
    state, excluded, detail = classify_curve_pool(msgspec.structs.replace(PLAIN, **change))
    assert state is None
    assert excluded is reason
    assert detail
