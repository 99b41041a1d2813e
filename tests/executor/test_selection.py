"""Per block: best net profit first, no shared pool, within the caps — as properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from executor.selection import select_non_conflicting
from pathfinder.opportunity import Opportunity

POOLS = [f"0x{i:040x}" for i in range(1, 9)]
TOKENS = [f"0x{i:040x}" for i in range(100, 103)]


@st.composite
def opportunities(draw: st.DrawFn) -> Opportunity:
    pools = tuple(draw(st.lists(st.sampled_from(POOLS), min_size=2, max_size=3, unique=True)))
    start = draw(st.sampled_from(TOKENS))
    profit = draw(st.integers(-10, 10**6))
    gas_cost = draw(st.integers(0, 1000))
    return Opportunity(
        chain="ethereum",
        block=7,
        base_fee_per_gas=1,
        after_reorg=False,
        pools=pools,
        zero_for_one=tuple(True for _ in pools),
        tokens=(start, *TOKENS[: len(pools) - 1], start),
        amount_in=draw(st.integers(1, 10**6)),
        expected_out=0,
        profit=profit,
        gas_units=100_000,
        gas_cost=gas_cost,
        net_profit=profit - gas_cost,
        screened_profit=0.0,
        screened_amount_in=0.0,
    )


caps = st.dictionaries(st.sampled_from(TOKENS), st.integers(0, 10**6))


@given(st.lists(opportunities(), max_size=12), caps, st.integers(0, 1000))
def test_the_chosen_share_no_pool_and_respect_the_caps(
    found: list[Opportunity], cap: dict[str, int], minimum: int
) -> None:
    choices = select_non_conflicting(found, min_net_profit=minimum, cap_for=cap.get)
    assert len(choices) == len(found)
    chosen = [c.opportunity for c in choices if c.chosen]
    pools = [p for o in chosen for p in o.pools]
    assert len(pools) == len(set(pools))
    for o in chosen:
        assert o.net_profit >= minimum
        assert o.amount_in <= cap.get(o.tokens[0], o.amount_in)
    nets = [c.opportunity.net_profit for c in choices]
    assert nets == sorted(nets, reverse=True)


@given(st.lists(opportunities(), max_size=12))
def test_a_cycle_is_left_out_only_for_a_better_one_it_conflicts_with(
    found: list[Opportunity],
) -> None:
    choices = select_non_conflicting(found, min_net_profit=0, cap_for=lambda _: None)
    for i, choice in enumerate(choices):
        if choice.chosen or choice.opportunity.net_profit < 0:
            continue
        assert "shares a pool" in choice.refusal
        better = [c.opportunity for c in choices[:i] if c.chosen]
        assert any(set(b.pools) & set(choice.opportunity.pools) for b in better)


def test_caps_match_the_start_token_in_any_case() -> None:
    from executor.settings import ExecutorSettings

    token = "0x" + "Ab" * 20
    settings = ExecutorSettings(
        rpc_url="", executor="", whitelist="", journal="", max_amount_in={token: 5}
    )
    assert settings.cap_for(token.lower()) == 5 and settings.cap_for(token.upper()) == 5
    assert settings.cap_for("0x" + "00" * 20) is None


@given(st.lists(opportunities(), max_size=12), st.sets(st.sampled_from(POOLS)))
def test_a_cycle_the_contract_cannot_swap_never_takes_pools_from_one_it_can(
    found: list[Opportunity], unswappable: set[str]
) -> None:
    """Pools in `unswappable` stand for pools quoted by the pathfinder but not traded
    by the executor contract."""

    def routable(o: Opportunity) -> bool:
        return not set(o.pools) & unswappable

    choices = select_non_conflicting(
        found, min_net_profit=0, cap_for=lambda _: None, routable=routable
    )
    swappable = [o for o in found if routable(o)]
    alone = select_non_conflicting(swappable, min_net_profit=0, cap_for=lambda _: None)
    assert [c.opportunity for c in choices if c.chosen] == [
        c.opportunity for c in alone if c.chosen
    ]
    for c in choices:
        if not routable(c.opportunity):
            assert c.refusal == "a hop the executor contract cannot swap"
