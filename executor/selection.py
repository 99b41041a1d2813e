"""Which of one block's opportunities to act on: best net profit first, no two sharing a
pool (the second would run against a state the first changed), within the caps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from pathfinder.opportunity import Opportunity


class Choice(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    opportunity: Opportunity
    refusal: str = ""  # empty: chosen

    @property
    def chosen(self) -> bool:
        return not self.refusal


def select_non_conflicting(
    opportunities: Sequence[Opportunity],
    *,
    min_net_profit: int,
    cap_for: Callable[[str], int | None],
    routable: Callable[[Opportunity], bool] | None = None,
) -> list[Choice]:
    """Every opportunity, best net profit first, each chosen or refused with a reason.

    With `routable`, a cycle the contract cannot swap (a hop of a protocol it does not
    trade, a Curve hop first) is refused before it can take its pools from another."""
    used: set[str] = set()
    out = []
    for opportunity in sorted(opportunities, key=lambda o: (-o.net_profit, o.pools)):
        pools = {p.lower() for p in opportunity.pools}
        cap = cap_for(opportunity.tokens[0])
        refusal = ""
        if routable is not None and not routable(opportunity):
            refusal = "a hop the executor contract cannot swap"
        elif opportunity.net_profit < min_net_profit:
            refusal = f"net profit {opportunity.net_profit} below {min_net_profit}"
        elif cap is not None and opportunity.amount_in > cap:
            refusal = f"amount_in {opportunity.amount_in} above the cap {cap}"
        elif pools & used:
            refusal = "shares a pool with a better cycle of the same block"
        else:
            used |= pools
        out.append(Choice(opportunity=opportunity, refusal=refusal))
    return out
