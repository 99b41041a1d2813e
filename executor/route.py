"""An opportunity's cycle as the contract's packed path, with hop kinds from the whitelist."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, final

from executor.errors import PathEncodingError, RouteError
from executor.path import Hop, HopKind, curve_coins, encode_path, v4_pool_key
from exex_bridge.messages import Protocol
from exex_bridge.whitelist import WhitelistedPool
from pathfinder.opportunity import Opportunity

_KIND_OF_PROTOCOL: Final[Mapping[Protocol, HopKind]] = {
    Protocol.UNISWAP_V2: HopKind.UNISWAP_V2,
    Protocol.UNISWAP_V3: HopKind.UNISWAP_V3,
    Protocol.UNISWAP_V4: HopKind.UNISWAP_V4,
    Protocol.CURVE_STABLE: HopKind.CURVE_STABLE,
    Protocol.BALANCER_V2_WEIGHTED: HopKind.BALANCER_V2,
}
_NO_HOOKS: Final = bytes(20)


@final
class HopKinds:
    """Pool key (an address; a V4 pool's id) → how the contract swaps on it; pools of
    other protocols, and V4 pools of the native currency, are left out (an opportunity
    through one is refused).

    A Curve StableSwap-NG hop names its coins by index: the whitelisted pair (token0,
    token1) is coins 0 and 1 (the whitelist lists a Curve pool's first two coins); a hop
    between other coins of a larger pool uses the indexes the opportunity carries
    (`Opportunity.coin_indices`, read from the chain by the arena), which must agree with
    the whitelisted pair where they name it; without them it is refused. A Balancer hop
    names its tokens in and out (any of the pool's tokens)."""

    def __init__(self, pools: Iterable[WhitelistedPool]) -> None:
        # key -> (kind, the record's address, the record's key bytes)
        self._hops: dict[str, tuple[HopKind, bytes, bytes]] = {}
        self._coins: dict[str, tuple[bytes, ...]] = {}  # Curve pool key -> coins by index
        for pool in pools:
            kind = _KIND_OF_PROTOCOL.get(pool.protocol)
            if kind is None:
                continue
            if kind is HopKind.CURVE_STABLE:
                self._coins["0x" + pool.key.hex()] = (pool.token0.address, pool.token1.address)
            if kind is not HopKind.UNISWAP_V4:
                self._hops["0x" + pool.key.hex()] = (kind, pool.address, b"")
                continue
            if pool.pool_manager is None or pool.fee is None or pool.tick_spacing is None:
                continue
            try:
                key = v4_pool_key(
                    pool.token0.address,
                    pool.token1.address,
                    pool.fee,
                    pool.tick_spacing,
                    pool.hooks or _NO_HOOKS,
                )
            except PathEncodingError:
                continue
            if pool.token0.address != bytes(20):
                self._hops["0x" + pool.key.hex()] = (kind, pool.pool_manager, key)

    def __len__(self) -> int:
        return len(self._hops)

    def _found(self, pool: str) -> tuple[HopKind, bytes, bytes]:
        found = self._hops.get(pool.lower())
        if found is None:
            raise RouteError(pool, "not a whitelisted pool the executor contract swaps on")
        return found

    def kind(self, pool: str) -> HopKind:
        return self._found(pool)[0]

    def routable(self, opportunity: Opportunity) -> bool:
        """Whether the contract can run the cycle: every hop a pool it swaps on, no Curve
        hop first, every Curve hop between coins of known index."""
        try:
            self.packed_path(opportunity)
        except (RouteError, PathEncodingError):
            return False
        return True

    def hops(self, opportunity: Opportunity) -> tuple[Hop, ...]:
        out = []
        indices = opportunity.coin_indices
        if indices and len(indices) != len(opportunity.pools):
            raise RouteError(opportunity.pools[0], "coin indexes for another hop count")
        for n, (p, z) in enumerate(zip(opportunity.pools, opportunity.zero_for_one, strict=True)):
            _check_hex(p)
            kind, address, key = self._found(p)
            if kind is HopKind.CURVE_STABLE:
                hint = indices[n] if indices else None
                key = self._curve_key(p, opportunity.tokens[n : n + 2], hint)
            elif kind is HopKind.BALANCER_V2:
                key = b"".join(_address(p, t) for t in opportunity.tokens[n : n + 2])
            out.append(Hop(pool=address, kind=kind, zero_for_one=z, key=key))
        return tuple(out)

    def _curve_key(self, pool: str, tokens: tuple[str, ...], hint: tuple[int, int] | None) -> bytes:
        """The hop's coin indexes: the whitelist's where it names both coins, else the
        opportunity's `hint` — refused where the two disagree on a coin."""
        coins = self._coins[pool.lower()]
        known = [_index_of(coins, _address(pool, t)) for t in tokens]
        if hint is None:
            i, j = known
            if i is None or j is None:
                raise RouteError(pool, "a Curve hop between coins of unknown index")
            return curve_coins(i, j)
        for index, said in zip(known, hint, strict=True):
            if index is not None and index != said:
                raise RouteError(
                    pool, f"coin indexes {hint} disagree with the whitelisted pair ({known})"
                )
            if said in (0, 1) and index is None:  # coins 0 and 1 are the whitelisted pair
                raise RouteError(pool, f"coin index {said} names a coin the whitelist does not")
        return curve_coins(*hint)

    def packed_path(self, opportunity: Opportunity) -> bytes:
        return encode_path(self.hops(opportunity))


def _index_of(coins: tuple[bytes, ...], coin: bytes) -> int | None:
    try:
        return coins.index(coin)
    except ValueError:
        return None


def _address(pool: str, token: str) -> bytes:
    try:
        raw = bytes.fromhex(token.removeprefix("0x"))
    except ValueError:
        raise RouteError(pool, f"token {token} is not hex") from None
    if len(raw) != 20:
        raise RouteError(pool, f"token {token} is not a 20-byte address")
    return raw


def _check_hex(pool: str) -> None:
    try:
        raw = bytes.fromhex(pool.removeprefix("0x"))
    except ValueError:
        raise RouteError(pool, "not hex") from None
    if len(raw) not in (20, 32):
        raise RouteError(pool, "not a 20-byte address or a 32-byte V4 pool id")
