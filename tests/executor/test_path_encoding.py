from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.errors import PathEncodingError
from executor.path import HOP_BYTES, MAX_HOPS, Hop, HopKind, decode_path, encode_path

hops = st.builds(
    Hop,
    pool=st.binary(min_size=20, max_size=20),
    kind=st.sampled_from(HopKind),
    zero_for_one=st.booleans(),
)
paths = st.lists(hops, min_size=2, max_size=MAX_HOPS)


@given(paths)
def test_encode_then_decode_is_the_identity(path: list[Hop]) -> None:
    packed = encode_path(path)
    assert len(packed) == HOP_BYTES * len(path)
    assert decode_path(packed) == tuple(path)


@given(paths)
def test_each_record_is_the_address_then_the_flags(path: list[Hop]) -> None:
    packed = encode_path(path)
    for i, hop in enumerate(path):
        record = packed[i * HOP_BYTES : (i + 1) * HOP_BYTES]
        assert record[:20] == hop.pool
        assert record[20] == (int(hop.kind) << 1) | int(hop.zero_for_one)


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
    packed[hop * HOP_BYTES + 20] |= bad
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
