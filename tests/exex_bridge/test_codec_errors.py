"""Strictness of the decoder: every malformed frame is a CodecError that says where.

Frames are the golden vectors of test_codec_golden.py with hand-picked bytes changed. The
offsets below are byte positions inside the frame payload, read off those vectors:
a PoolUpdate on an address puts the pool id tag at 12, its Address length at 16, the
protocol at 44, update_type at 48, is_revert at 84, the PoolUpdate tag at 85 and the
payload's first field at 89.
"""

from __future__ import annotations

import tracemalloc

import pytest

from exex_bridge import messages as m
from exex_bridge.codec import decode_message, decode_message_generic, encode_message
from exex_bridge.errors import CodecError
from tests.exex_bridge.test_codec_golden import GOLDENS

WIRE = {g.name: g.wire for g in GOLDENS}
V3_SWAP = WIRE["V3Swap"]
V2_SWAP = WIRE["V2Swap-zero-and-negative"]
PU = "ControlMessage::PoolUpdate.event"


def patch(wire: bytes, at: int, hex_bytes: str) -> bytes:
    """`wire` with the bytes at `at` overwritten."""
    new = bytes.fromhex(hex_bytes)
    return wire[:at] + new + wire[at + len(new) :]


def splice(wire: bytes, at: int, remove: int, hex_bytes: str) -> bytes:
    """`wire` with `remove` bytes at `at` replaced by `hex_bytes` (lengths may differ)."""
    return wire[:at] + bytes.fromhex(hex_bytes) + wire[at + remove :]


def decode_error(wire: bytes) -> CodecError:
    """The error both decoders raise; they must agree on every detail."""
    with pytest.raises(CodecError) as fast:
        decode_message(wire)
    with pytest.raises(CodecError) as generic:
        decode_message_generic(memoryview(wire))
    a, b = fast.value, generic.value
    assert (a.offset, a.path, a.stream_seq, a.reason) == (b.offset, b.path, b.stream_seq, b.reason)
    return a


def check(wire: bytes, offset: int, path: str, stream_seq: int | None, reason: str) -> CodecError:
    err = decode_error(wire)
    assert err.offset == offset, err
    assert err.path == path, err
    assert err.stream_seq == stream_seq, err
    assert reason in err.reason, err
    assert f"at byte {offset} in {path}" in str(err)
    return err


# --- frame boundaries ------------------------------------------------------------------


def test_leftover_bytes_are_an_error_at_the_end_of_the_message() -> None:
    check(V3_SWAP + b"\x00", 149, "ControlMessage", 42, "1 bytes left over")
    check(WIRE["Ping"] + b"\x00" * 9, 4, "ControlMessage", None, "9 bytes left over")


def test_missing_bytes_name_the_field_being_read() -> None:
    check(V3_SWAP[:-1], 145, f"{PU}.update::V3Swap.tick", 42, "needs 4 bytes, 3 left")
    check(V3_SWAP[:100], 97, f"{PU}.update::V3Swap.sqrt_price_x96", 42, "needs 32 bytes")
    check(V3_SWAP[:20], 16, f"{PU}.pool_id::PoolAddress.value", 42, "needs 8 bytes, 4 left")


def test_stream_seq_is_none_when_the_frame_is_too_short_to_hold_it() -> None:
    check(WIRE["BeginBlock-revert"][:10], 4, "ControlMessage::BeginBlock.stream_seq", None, "")
    check(b"", 0, "ControlMessage", None, "needs 4 bytes, 0 left")
    check(b"\x01\x00", 0, "ControlMessage", None, "needs 4 bytes, 2 left")


# --- bool and Option tags ----------------------------------------------------------------


def test_bool_byte_other_than_0_or_1() -> None:
    check(patch(V3_SWAP, 84, "02"), 84, f"{PU}.is_revert", 42, "bool byte is 2")
    begin = WIRE["BeginBlock-revert"]
    check(patch(begin, 36, "ff"), 36, "ControlMessage::BeginBlock.is_revert", 1, "bool byte is 255")


def test_option_tag_other_than_0_or_1() -> None:
    wire = WIRE["ReorgStart-some-and-none"]
    path = "ControlMessage::ReorgStart.old_range.first_block"
    check(patch(wire, 12, "02"), 12, path, 9, "Option tag is 2")
    # new_range.last_block's tag sits at 12 + 9 + 9 + 8 + 1 = 39
    check(patch(wire, 39, "02"), 39, "ControlMessage::ReorgStart.new_range.last_block", 9, "")


# --- unknown variant indexes at every enum level -------------------------------------------

EPI = "ControlMessage::ReorgEpilogue.update"
SLOT0 = WIRE["ReorgEpilogue-Slot0Final"]


@pytest.mark.parametrize(
    ("wire", "offset", "path", "seq", "reason"),
    [
        (patch(V3_SWAP, 0, "09000000"), 0, "ControlMessage", None, "variant index 9 is"),
        (patch(V3_SWAP, 0, "ffffffff"), 0, "ControlMessage", None, "index 4294967295"),
        (patch(V3_SWAP, 12, "02000000"), 12, f"{PU}.pool_id", 42, "PoolIdentifier variant index 2"),
        (patch(V3_SWAP, 44, "09000000"), 44, f"{PU}.protocol", 42, "Protocol variant index 9"),
        (patch(V3_SWAP, 48, "03000000"), 48, f"{PU}.update_type", 42, "UpdateType variant index 3"),
        (patch(V3_SWAP, 85, "17000000"), 85, f"{PU}.update", 42, "PoolUpdate variant index 23"),
        (patch(SLOT0, 28, "03000000"), 28, EPI, 10, "ReorgEpilogueUpdate variant index 3"),
        (patch(SLOT0, 32, "05000000"), 32, f"{EPI}::Slot0Final.pool_id", 10, "PoolIdentifier"),
        (patch(SLOT0, 64, "0a000000"), 64, f"{EPI}::Slot0Final.protocol", 10, "index 10"),
    ],
    ids=[
        "ControlMessage",
        "ControlMessage-max",
        "PoolIdentifier",
        "Protocol",
        "UpdateType",
        "PoolUpdate",
        "ReorgEpilogueUpdate",
        "Slot0Final.PoolIdentifier",
        "Slot0Final.Protocol",
    ],
)
def test_unknown_variant_index(
    wire: bytes, offset: int, path: str, seq: int | None, reason: str
) -> None:
    check(wire, offset, path, seq, reason)


# --- Ethereum types ----------------------------------------------------------------------


@pytest.mark.parametrize(("length", "hex_len"), [(19, "13"), (21, "15"), (0, "00")])
def test_address_length_must_be_20(length: int, hex_len: str) -> None:
    wire = patch(V3_SWAP, 16, hex_len)
    check(wire, 16, f"{PU}.pool_id::PoolAddress.value", 42, f"Address length is {length}")
    balancer = patch(WIRE["BalancerSwap"], 89 + 28, hex_len)  # token_out's length
    check(balancer, 117, f"{PU}.update::BalancerSwap.token_out", 42, "not 20")


def test_u256_length_must_be_32() -> None:
    path = f"{PU}.update::V3Swap.sqrt_price_x96"
    check(patch(V3_SWAP, 89, "1f"), 89, path, 42, "U256 length is 31, not 32")
    check(patch(V3_SWAP, 89, "21"), 89, path, 42, "U256 length is 33")


A0 = f"{PU}.update::V2Swap.amount0"  # amount0 (I256) starts at byte 89 of V2_SWAP


# (length + sign + magnitude as written on the wire, error offset, reason); `fmt: off` keeps the
# three parts of each I256 visibly apart.
# fmt: off
I256_CASES = [
    ("0000000000000000", 89, "I256 length is 0, not 1..=33"),
    ("2200000000000000" + "01" + "ff" * 33, 89, "I256 length is 34"),
    ("0200000000000000" "01" "00", 97, "trailing zero byte"),  # +0 written as 2 bytes
    ("0300000000000000" "01" "0500", 97, "trailing zero byte"),  # 5 with a zero tail
    ("0100000000000000" "00", 97, "negative zero"),
    ("0200000000000000" "00" "00", 97, "trailing zero byte"),
    ("0200000000000000" "02" "05", 97, "sign byte is 2"),
    ("2100000000000000" "01" + "00" * 31 + "80", 97, "exceeds 2^255 - 1"),  # +2**255
    ("2100000000000000" "00" "01" + "00" * 30 + "80", 97, "exceeds 2^255"),  # -(2**255+1)
]
# fmt: on


@pytest.mark.parametrize(
    ("i256_hex", "offset", "reason"),
    I256_CASES,
    ids=[
        "len0",
        "len34",
        "zero-with-zero-byte",
        "trailing-zero",
        "negative-zero",
        "negative-zero-long",
        "sign-2",
        "plus-2^255",
        "minus-2^255-1",
    ],
)
def test_i256_only_canonical_forms(i256_hex: str, offset: int, reason: str) -> None:
    # V2_SWAP's amount0 is the 9 bytes `01000000 00000000 01` (zero) at 89.
    wire = splice(V2_SWAP, 89, 9, i256_hex)
    check(wire, offset, A0, 42, reason)


# --- Vec lengths are checked against the bytes left before anything is read ---------------

CURVE = WIRE["CurveLiquidity-three-balances"]
BALANCER = WIRE["BalancerLiquidity"]


@pytest.mark.parametrize(
    ("wire", "offset", "path"),
    [
        (patch(CURVE, 89, "0000000000000040"), 89, "CurveLiquidity.effective_balances"),  # 2**62
        (patch(CURVE, 89, "ffffffffffffffff"), 89, "CurveLiquidity.effective_balances"),
        (patch(CURVE, 89, "0b00000000000000"), 89, "CurveLiquidity.effective_balances"),
        (patch(BALANCER, 89, "0400000000000000"), 89, "BalancerLiquidity.tokens"),
        (patch(BALANCER, 89, "0000000000000001"), 89, "BalancerLiquidity.tokens"),
        (patch(BALANCER, 153, "0300000000000000"), 153, "BalancerLiquidity.deltas"),
    ],
    ids=["2^62", "2^64-1", "11", "tokens-4", "tokens-2^56", "deltas-3"],
)
def test_vec_length_beyond_the_frame_fails_at_the_length(
    wire: bytes, offset: int, path: str
) -> None:
    tracemalloc.start()
    try:
        err = check(wire, offset, f"{PU}.update::{path}", 42, "exceeds the")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Failing at the length's own offset means no element was read; the memory bound
    # shows nothing sized by the claimed count was allocated either.
    assert peak < 256 * 1024, err


def test_vec_length_exactly_filling_the_frame_is_accepted() -> None:
    # A count whose elements fill the rest of the frame exactly passes the length check;
    # the frame then fails only at the next field, `fee`.
    body = patch(CURVE, 89, "0800000000000000")[: 89 + 8] + bytes(128)
    check(body, 89 + 8 + 128, f"{PU}.update::CurveLiquidity.fee", 42, "needs 8 bytes, 0 left")


# --- the encoder refuses values the wire cannot carry ------------------------------------


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (m.EndBlock(stream_seq=-1, block_number=0, num_updates=0), "u64 out of range"),
        (m.ReorgComplete(stream_seq=2**64, final_tip_block=0), "u64 out of range"),
        (
            m.ReorgEpilogue(
                stream_seq=1,
                final_tip_block=1,
                final_tip_timestamp=1,
                update=m.V2ReservesFinal(
                    pool_id=m.PoolAddress(value=bytes(19)), reserve0=0, reserve1=0
                ),
            ),
            "Address length out of range",
        ),
        (
            m.ReorgEpilogue(
                stream_seq=1,
                final_tip_block=1,
                final_tip_timestamp=1,
                update=m.V2ReservesFinal(
                    pool_id=m.V4PoolId(value=bytes(31)), reserve0=2**128, reserve1=0
                ),
            ),
            "[u8; 32] length out of range",
        ),
    ],
    ids=["u64-negative", "u64-overflow", "address-19", "pool-id-31"],
)
def test_encoder_rejects_out_of_range_values(msg: m.ControlMessage, reason: str) -> None:
    with pytest.raises(CodecError, match=r"out of range") as info:
        encode_message(msg)
    assert info.value.reason.startswith(reason)
    assert info.value.path == "<encode>"


@pytest.mark.parametrize(
    ("value", "ok"),
    [(2**255 - 1, True), (-(2**255), True), (2**255, False), (-(2**255) - 1, False)],
)
def test_encoder_i256_range(value: int, ok: bool) -> None:
    msg = m.PoolUpdate(
        stream_seq=1,
        event=m.PoolUpdateMessage(
            pool_id=m.PoolAddress(value=bytes(20)),
            protocol=m.Protocol.UNISWAP_V2,
            update_type=m.UpdateType.SWAP,
            block_number=1,
            block_timestamp=1,
            tx_index=0,
            log_index=0,
            is_revert=False,
            update=m.V2Swap(amount0=value, amount1=0),
        ),
    )
    if ok:
        assert decode_message(encode_message(msg)) == msg
    else:
        with pytest.raises(CodecError, match="I256 out of range"):
            encode_message(msg)
