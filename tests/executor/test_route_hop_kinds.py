"""The route's records for V4, Curve and Balancer pools, from the whitelist entries and
the opportunity's tokens (unit properties; the chain tests execute them)."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from executor.path import HopKind, curve_coins, decode_path, v4_pool_key
from executor.route import HopKinds
from exex_bridge.messages import Protocol
from exex_bridge.whitelist import Token, WhitelistedPool
from tests.pathfinder.test_sinks import sample

addresses = st.binary(min_size=20, max_size=20).filter(lambda a: a != bytes(20))


def hexed(raw: bytes) -> str:
    return "0x" + raw.hex()


def token(address: bytes) -> Token:
    return Token(address=address, decimals=18)


@given(
    st.lists(addresses, min_size=6, max_size=6, unique=True),
    st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=2, unique=True),
    st.tuples(st.integers(0, 999_999), st.integers(1, 16383)),
    st.booleans(),
    st.booleans(),
)
def test_v4_curve_and_balancer_hops_carry_what_the_contract_needs(
    addrs: list[bytes], ids: list[bytes], fee_spacing: tuple[int, int], native: bool, forward: bool
) -> None:
    pool_id, vault_id = ids
    fee, spacing = fee_spacing
    a, b, pair, manager, curve, vault_pool = addrs
    c0, c1 = sorted((a, b))
    v4 = WhitelistedPool(
        key=pool_id,
        address=manager,
        protocol=Protocol.UNISWAP_V4,
        token0=token(bytes(20) if native else c0),
        token1=token(c1),
        fee=fee,
        tick_spacing=spacing,
        pool_manager=manager,
        hooks=bytes(20),
    )
    v2 = WhitelistedPool(
        key=pair, address=pair, protocol=Protocol.UNISWAP_V2, token0=token(c0), token1=token(c1)
    )
    coin_pool = WhitelistedPool(
        key=curve, address=curve, protocol=Protocol.CURVE_STABLE, token0=token(c0), token1=token(c1)
    )
    weighted = WhitelistedPool(
        key=vault_id,
        address=vault_pool,
        protocol=Protocol.BALANCER_V2_WEIGHTED,
        token0=token(c0),
        token1=token(c1),
    )
    kinds = HopKinds([v4, v2, coin_pool, weighted])
    start, other = (c0, c1) if forward else (c1, c0)
    cycle = msgspec.structs.replace(
        sample(1)[0],
        pools=(hexed(pool_id), hexed(curve), hexed(vault_id), hexed(pair)),
        zero_for_one=(forward, not forward, forward, not forward),
        tokens=tuple(hexed(t) for t in (start, other, start, other, start)),
    )
    if native:  # a V4 pool of the native currency is left out
        assert not kinds.routable(cycle)
        return
    assert kinds.routable(cycle)
    first, coin_hop, vault_hop, last = decode_path(kinds.packed_path(cycle))
    assert first.kind is HopKind.UNISWAP_V4 and first.pool == manager
    assert first.key == v4_pool_key(c0, c1, fee, spacing, bytes(20))
    assert first.zero_for_one is forward
    i, j = (1, 0) if forward else (0, 1)  # the Curve hop sells `other` for `start`
    assert coin_hop.kind is HopKind.CURVE_STABLE and coin_hop.pool == curve
    assert coin_hop.key == curve_coins(i, j)
    assert vault_hop.kind is HopKind.BALANCER_V2 and vault_hop.pool == vault_pool
    assert vault_hop.key == start + other
    assert last.kind is HopKind.UNISWAP_V2 and last.pool == pair and last.key == b""
    # the same cycle starting at the Curve or the Balancer hop: no flash swap to fund it
    for n in (1, 2):
        rotated = msgspec.structs.replace(
            cycle,
            pools=cycle.pools[n:] + cycle.pools[:n],
            zero_for_one=cycle.zero_for_one[n:] + cycle.zero_for_one[:n],
            tokens=cycle.tokens[n:-1] + cycle.tokens[:n] + (cycle.tokens[n],),
        )
        assert not kinds.routable(rotated)


@given(
    st.lists(addresses, min_size=5, max_size=5, unique=True),
    st.integers(2, 7),
    st.booleans(),
    st.integers(0, 7),
)
def test_a_curve_hop_beyond_the_whitelisted_pair_uses_the_opportunitys_coin_indexes(
    addrs: list[bytes], far: int, sell_far: bool, wrong: int
) -> None:
    """Coins 0 and 1 are the whitelisted pair; a coin beyond them is named by the index
    the opportunity carries. Without it the hop is refused, and an index that
    contradicts the whitelisted pair is refused too."""
    c0, c1, extra, pair, curve = addrs
    coin_pool = WhitelistedPool(
        key=curve, address=curve, protocol=Protocol.CURVE_STABLE, token0=token(c0), token1=token(c1)
    )
    v2 = WhitelistedPool(
        key=pair, address=pair, protocol=Protocol.UNISWAP_V2, token0=token(c0), token1=token(extra)
    )
    kinds = HopKinds([coin_pool, v2])
    # c0 -> extra on the V2 pair, extra -> c0 on the Curve pool (or the reverse)
    if sell_far:
        tokens, hint = (c0, extra, c0), (far, 0)
    else:
        tokens, hint = (extra, c0, extra), (0, far)
    cycle = msgspec.structs.replace(
        sample(1)[0],
        pools=(hexed(pair), hexed(curve)),
        zero_for_one=(sell_far, not sell_far),
        tokens=tuple(hexed(t) for t in tokens),
    )
    assert not kinds.routable(cycle)  # the far coin's index is unknown
    told = msgspec.structs.replace(cycle, coin_indices=(None, hint))
    assert kinds.routable(told)
    assert decode_path(kinds.packed_path(told))[1].key == curve_coins(*hint)
    # indexes that contradict the whitelisted pair (c0 is coin 0) are refused
    contradicting = (wrong, far) if not sell_far else (far, wrong)
    if wrong != 0 and contradicting[0] != contradicting[1]:
        bad = msgspec.structs.replace(cycle, coin_indices=(None, contradicting))
        assert not kinds.routable(bad)
    # so are indexes for another number of hops
    assert not kinds.routable(msgspec.structs.replace(cycle, coin_indices=(hint,)))
