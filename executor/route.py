"""An opportunity's cycle as the contract's packed path, with hop kinds from the whitelist."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, final

from executor.errors import RouteError
from executor.path import Hop, HopKind, encode_path
from exex_bridge.messages import Protocol
from exex_bridge.whitelist import WhitelistedPool
from pathfinder.opportunity import Opportunity

_KIND_OF_PROTOCOL: Final[Mapping[Protocol, HopKind]] = {
    Protocol.UNISWAP_V2: HopKind.UNISWAP_V2,
    Protocol.UNISWAP_V3: HopKind.UNISWAP_V3,
}


@final
class HopKinds:
    """Pool address → how the contract swaps on it; pools of other protocols are left out
    (an opportunity through one is refused)."""

    def __init__(self, pools: Iterable[WhitelistedPool]) -> None:
        self._kinds: dict[str, HopKind] = {}
        for pool in pools:
            kind = _KIND_OF_PROTOCOL.get(pool.protocol)
            if kind is not None:
                self._kinds["0x" + pool.address.hex()] = kind

    def __len__(self) -> int:
        return len(self._kinds)

    def kind(self, pool: str) -> HopKind:
        found = self._kinds.get(pool.lower())
        if found is None:
            raise RouteError(pool, "not a whitelisted Uniswap V2/V3 pool")
        return found

    def routable(self, opportunity: Opportunity) -> bool:
        """Whether every hop is a pool the contract swaps on."""
        return all(p.lower() in self._kinds for p in opportunity.pools)

    def hops(self, opportunity: Opportunity) -> tuple[Hop, ...]:
        return tuple(
            Hop(pool=_address(p), kind=self.kind(p), zero_for_one=z)
            for p, z in zip(opportunity.pools, opportunity.zero_for_one, strict=True)
        )

    def packed_path(self, opportunity: Opportunity) -> bytes:
        return encode_path(self.hops(opportunity))


def _address(pool: str) -> bytes:
    try:
        raw = bytes.fromhex(pool.removeprefix("0x"))
    except ValueError:
        raise RouteError(pool, "not hex") from None
    if len(raw) != 20:
        raise RouteError(pool, "not a 20-byte address")
    return raw
