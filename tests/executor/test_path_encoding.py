from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.errors import PathEncodingError
from executor.path import (
    HOP_BYTES,
    MAX_HOPS,
    V4_KEY_BYTES,
    Hop,
    HopKind,
    curve_coins,
    decode_path,
    encode_path,
    v4_pool_key,
)

addresses = st.binary(min_size=20, max_size=20)
token_addresses = addresses.filter(lambda a: a != bytes(20))
v4_keys = st.builds(
    v4_pool_key,
    token_addresses,
    addresses,
    st.integers(0, (1 << 24) - 1),
    st.integers(-(1 << 23), (1 << 23) - 1),
    addresses,
)
pool_hops = st.builds(
    Hop,
    pool=addresses,
    kind=st.sampled_from([HopKind.UNISWAP_V2, HopKind.UNISWAP_V3]),
    zero_for_one=st.booleans(),
)
v4_hops = st.builds(
    Hop, pool=addresses, kind=st.just(HopKind.UNISWAP_V4), zero_for_one=st.booleans(), key=v4_keys
)
coin_pairs = st.lists(st.integers(0, 7), min_size=2, max_size=2, unique=True)
curve_hops = st.builds(
    Hop,
    pool=addresses,
    kind=st.just(HopKind.CURVE_STABLE),
    zero_for_one=st.just(False),
    key=coin_pairs.map(lambda ij: curve_coins(*ij)),
)
vault_hops = st.builds(
    Hop,
    pool=addresses,
    kind=st.just(HopKind.BALANCER_V2),
    zero_for_one=st.just(False),
    key=st.lists(token_addresses, min_size=2, max_size=2, unique=True).map(b"".join),
)
first_hops = st.one_of(pool_hops, v4_hops)  # a Curve or Balancer hop is never first
later_hops = st.one_of(pool_hops, v4_hops, curve_hops, vault_hops)
paths = st.builds(
    lambda first, rest: [first, *rest],
    first_hops,
    st.lists(later_hops, min_size=1, max_size=MAX_HOPS - 1),
)


def offsets(path: list[Hop]) -> list[int]:
    """Where each hop's record starts in the packed path."""
    out, at = [], 0
    for hop in path:
        out.append(at)
        at += HOP_BYTES + len(hop.key)
    return out


@given(paths)
def test_encode_then_decode_is_the_identity(path: list[Hop]) -> None:
    packed = encode_path(path)
    v4 = sum(h.kind is HopKind.UNISWAP_V4 for h in path)
    curve = sum(h.kind is HopKind.CURVE_STABLE for h in path)
    vault = sum(h.kind is HopKind.BALANCER_V2 for h in path)
    assert len(packed) == HOP_BYTES * len(path) + V4_KEY_BYTES * v4 + 2 * curve + 40 * vault
    assert decode_path(packed) == tuple(path)


@given(paths)
def test_each_record_is_the_address_then_the_flags_then_a_v4_key(path: list[Hop]) -> None:
    packed = encode_path(path)
    for at, hop in zip(offsets(path), path, strict=True):
        assert packed[at : at + 20] == hop.pool
        assert packed[at + 20] == (int(hop.kind) << 1) | int(hop.zero_for_one)
        if hop.kind is not HopKind.UNISWAP_V2 and hop.kind is not HopKind.UNISWAP_V3:
            assert packed[at + 21 : at + 21 + len(hop.key)] == hop.key


@given(
    token_addresses,
    addresses,
    st.integers(0, (1 << 24) - 1),
    st.integers(-(1 << 23), (1 << 23) - 1),
    addresses,
)
def test_a_v4_key_is_currencies_fee_spacing_hooks(
    c0: bytes, c1: bytes, fee: int, spacing: int, hooks: bytes
) -> None:
    key = v4_pool_key(c0, c1, fee, spacing, hooks)
    assert len(key) == V4_KEY_BYTES
    assert key[:20] == c0 and key[20:40] == c1 and key[46:] == hooks
    assert int.from_bytes(key[40:43], "big") == fee
    assert int.from_bytes(key[43:46], "big", signed=True) == spacing


def test_a_v4_hop_of_the_native_currency_or_without_its_key_is_refused() -> None:
    other = Hop(pool=b"\x01" * 20, kind=HopKind.UNISWAP_V2, zero_for_one=True)
    native = v4_pool_key(bytes(20), b"\x02" * 20, 3000, 60, bytes(20))
    for key in (native, b"", b"\x03" * 65):
        v4 = Hop(pool=b"\x04" * 20, kind=HopKind.UNISWAP_V4, zero_for_one=False, key=key)
        with pytest.raises(PathEncodingError) as err:
            encode_path([other, v4])
        assert err.value.position == 1
    keyed = Hop(pool=b"\x01" * 20, kind=HopKind.UNISWAP_V2, zero_for_one=True, key=b"\x05")
    with pytest.raises(PathEncodingError):
        encode_path([keyed, other])


@given(paths, st.data())
def test_a_cut_path_is_refused(path: list[Hop], data: st.DataObject) -> None:
    packed = encode_path(path)
    cut = data.draw(st.integers(1, HOP_BYTES - 1))
    with pytest.raises(PathEncodingError):
        decode_path(packed[:-cut])


@given(paths, st.data())
def test_reserved_or_unknown_flags_are_refused(path: list[Hop], data: st.DataObject) -> None:
    packed = bytearray(encode_path(path))
    hop = data.draw(st.integers(0, len(path) - 1))
    bad = data.draw(st.sampled_from([0x20, 0x40, 0x80, len(HopKind) << 1]))
    packed[offsets(path)[hop] + 20] |= bad
    with pytest.raises(PathEncodingError) as err:
        decode_path(bytes(packed))
    assert err.value.position == hop


def test_hop_counts_outside_the_contract_limits_are_refused() -> None:
    one = Hop(pool=b"\x01" * 20, kind=HopKind.UNISWAP_V2, zero_for_one=True)
    with pytest.raises(PathEncodingError):
        encode_path([one])
    with pytest.raises(PathEncodingError):
        encode_path([one] * (MAX_HOPS + 1))
    with pytest.raises(PathEncodingError):
        encode_path([one, Hop(pool=b"\x01" * 19, kind=HopKind.UNISWAP_V3, zero_for_one=False)])


@given(first_hops, curve_hops, vault_hops)
def test_a_curve_or_balancer_hop_first_or_with_bad_coins_is_refused(
    first: Hop, curve: Hop, vault: Hop
) -> None:
    for later in (curve, vault):
        with pytest.raises(PathEncodingError) as err:
            encode_path([later, first])
        assert err.value.position == 0
    same = msgspec.structs.replace(vault, key=vault.key[:20] * 2)
    with pytest.raises(PathEncodingError):
        encode_path([first, same])
    packed = bytearray(encode_path([first, curve]))
    packed[-2:] = bytes([3, 3])  # coin in = coin out
    with pytest.raises(PathEncodingError):
        decode_path(bytes(packed))
    with pytest.raises(PathEncodingError):
        curve_coins(2, 8)
