"""The JSONL feed reads only complete lines as the file grows; the journal round-trips;
reverts decode to the contract's error names; routes refuse unknown pools."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from executor.errors import RouteError
from executor.feeds import FeedError, JsonlFeed, NatsFeed
from executor.interface import describe_revert, revert_name
from executor.journal import AttemptStatus, JournalEntry, JournalWriter, read_journal
from executor.path import HopKind, decode_path
from executor.route import HopKinds
from exex_bridge.messages import Protocol
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.opportunity import OPPORTUNITY_ENCODER
from tests.executor.test_selection import POOLS, TOKENS
from tests.pathfinder.test_sinks import sample


async def test_the_feed_waits_for_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    feed = JsonlFeed(path)
    assert await feed.next_batch(0.01) == []  # no file yet
    line = OPPORTUNITY_ENCODER.encode(sample(1)[0]) + b"\n"
    path.write_bytes(line[:10])
    assert await feed.next_batch(0.01) == []
    with path.open("ab") as f:
        f.write(line[10:] + b"not json\n" + line)
    batch = await feed.next_batch(0.01)
    assert [o.block for o in batch] == [sample(1)[0].block] * 2
    assert feed.skipped == 1


def test_the_journal_round_trips(tmp_path: Path) -> None:
    entries = [
        JournalEntry(block=1, status=AttemptStatus.SIMULATED, nonce=3, expected_profit=10),
        JournalEntry(block=2, status=AttemptStatus.INCLUDED, realized_profit=5, gas_used=9),
    ]
    with JournalWriter(tmp_path / "j.jsonl") as journal:
        for entry in entries:
            journal.write(entry)
    assert read_journal(tmp_path / "j.jsonl") == entries


def test_a_journal_read_while_a_line_is_being_written_gives_the_complete_lines(
    tmp_path: Path,
) -> None:
    """Another process appends as this one reads: the tail without its newline is not an
    entry yet; once the line is whole it is."""
    first = JournalEntry(block=1, status=AttemptStatus.SENT, nonce=3)
    second = JournalEntry(block=2, status=AttemptStatus.INCLUDED, nonce=3, gas_used=9)
    path = tmp_path / "j.jsonl"
    with JournalWriter(path) as journal:
        journal.write(first)
    line = msgspec.json.encode(second) + b"\n"
    for cut in range(len(line)):
        with path.open("ab") as f:
            f.write(line[cut : cut + 1])
        expected = [first, second] if cut == len(line) - 1 else [first]
        assert read_journal(path) == expected


def test_reverts_decode_to_names() -> None:
    selector = keccak(text="InsufficientProfit(int256,uint256)")[:4]
    data = selector + encode(["int256", "uint256"], [-5, 7])
    assert describe_revert(data) == "InsufficientProfit(-5, 7)"
    assert revert_name(describe_revert(data)) == "InsufficientProfit"
    assert describe_revert(b"") == "revert without data"
    assert describe_revert(b"\x01\x02\x03\x04").startswith("revert 0x")


def test_routes_take_kinds_from_the_whitelist() -> None:
    token = Token(address=b"\x01" * 20, decimals=18, symbol="T")
    pools = [
        WhitelistedPool(
            key=bytes.fromhex(p[2:]),
            address=bytes.fromhex(p[2:]),
            protocol=Protocol.UNISWAP_V3 if i % 2 else Protocol.UNISWAP_V2,
            token0=token,
            token1=token,
            fee=3000,
            tick_spacing=60,
        )
        for i, p in enumerate(POOLS[:4])
    ]
    kinds = HopKinds(pools)
    base = sample(1)[0]
    found = msgspec.structs.replace(
        base, pools=tuple(POOLS[:3]), zero_for_one=(True, False, True), tokens=(*TOKENS, TOKENS[0])
    )
    hops = decode_path(kinds.packed_path(found))
    assert [h.kind for h in hops] == [HopKind.UNISWAP_V2, HopKind.UNISWAP_V3, HopKind.UNISWAP_V2]
    assert [h.zero_for_one for h in hops] == [True, False, True]
    with pytest.raises(RouteError):
        kinds.kind(POOLS[7])
    assert kinds.routable(found)
    other = Token(address=b"\x02" * 20, decimals=6, symbol="U")
    curve = WhitelistedPool(
        key=bytes.fromhex(POOLS[5][2:]),
        address=bytes.fromhex(POOLS[5][2:]),
        protocol=Protocol.CURVE_STABLE,
        token0=token,
        token1=other,
    )
    with_curve = HopKinds([*pools, curve])
    t, u = "0x" + token.address.hex(), "0x" + other.address.hex()
    # a Curve hop (coins 0 -> 1 of the whitelisted pair) after a flash hop: routable
    through_curve = msgspec.structs.replace(
        found, pools=(POOLS[0], POOLS[5], POOLS[1]), tokens=(u, t, u, u)
    )
    assert with_curve.routable(through_curve)
    curve_hop = decode_path(with_curve.packed_path(through_curve))[1]
    assert curve_hop.kind is HopKind.CURVE_STABLE and curve_hop.key == bytes([0, 1])
    # first (no flash swap), or between tokens that are not its coins: not routable
    curve_first = msgspec.structs.replace(
        found, pools=(POOLS[5], POOLS[0], POOLS[1]), tokens=(t, u, u, t)
    )
    assert not with_curve.routable(curve_first)
    stranger = msgspec.structs.replace(through_curve, tokens=(u, "0x" + "03" * 20, u, u))
    assert not with_curve.routable(stranger)


async def test_a_nats_feed_with_no_server_fails_within_its_connect_timeout() -> None:
    """Nothing listens on port 1: a FeedError (exit 2) rather than retrying forever."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(FeedError, match="cannot connect"):
        await asyncio.wait_for(NatsFeed.connect("nats://127.0.0.1:1", "ethereum"), 30)
    assert loop.time() - began < 10
