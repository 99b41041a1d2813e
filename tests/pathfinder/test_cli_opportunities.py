"""`arena replay` / `arena run` with the path recalculation attached: JSONL out, NATS out
(a real nats-server), and the best opportunities in the replay summary."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from arena.state_file import write_state_file
from exex_bridge import messages as m
from exex_bridge.codec import encode_frame
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from pathfinder.opportunity import OPPORTUNITY_DECODER, Opportunity
from pathfinder.sinks import opportunities_subject
from tests.nats_server import NatsServer
from tests.pathfinder.strategies import (
    R_USDC,
    R_WETH,
    USDC,
    WETH,
    usdc_weth_engine,
    whitelist_document,
)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0
SKEWED = (R_USDC // 2 * 104 // 100, R_WETH // 2)  # pool 1 with 4 % too much USDC


def sync_event(block: int, pool_address: bytes, reserves: tuple[int, int]) -> m.PoolUpdateMessage:
    return m.PoolUpdateMessage(
        pool_id=m.PoolAddress(value=pool_address),
        protocol=m.Protocol.UNISWAP_V2,
        update_type=m.UpdateType.SWAP,
        block_number=block,
        block_timestamp=block * 12,
        tx_index=0,
        log_index=0,
        is_revert=False,
        update=m.V2Sync(reserve0=reserves[0], reserve1=reserves[1]),
    )


def write_inputs(tmp_path: Path) -> tuple[Path, Path, list[m.ControlMessage]]:
    """Whitelist, initial state at block 9 (balanced), and blocks 10 (pool 1 skewed) and
    11 (nothing changes)."""
    engine = usdc_weth_engine()
    engine.mark_synced(9, keep_history=False)
    whitelist, initial = tmp_path / "whitelist.json", tmp_path / "initial.json"
    whitelist.write_text(json.dumps(whitelist_document(engine)))
    write_state_file(engine, initial)
    seq = StreamSequencer()
    pool1 = engine.registry.pools[1].address
    messages: list[m.ControlMessage] = [
        *seq.block(10, [sync_event(10, pool1, SKEWED)], base_fee_per_gas=10**9),
        *seq.block(11, [], base_fee_per_gas=10**9),
    ]
    return whitelist, initial, messages


def replay(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "replay", "--no-progress", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=DEADLINE,
        check=False,
    )


def read_jsonl(path: Path) -> list[Opportunity]:
    return [OPPORTUNITY_DECODER.decode(line) for line in path.read_bytes().splitlines()]


def test_replay_writes_opportunities_and_lists_the_best(tmp_path: Path) -> None:
    whitelist, initial, messages = write_inputs(tmp_path)
    raw, out = tmp_path / "stream.raw", tmp_path / "opportunities.jsonl"
    raw.write_bytes(b"".join(encode_frame(msg) for msg in messages))
    done = replay(
        raw,
        "--whitelist",
        whitelist,
        "--initial-state",
        initial,
        "--opportunities-out",
        out,
        "--chain",
        "testchain",
    )
    assert done.returncode == 0, done.stderr
    found = read_jsonl(out)
    assert found
    weth, usdc = "0x" + WETH.address.hex(), "0x" + USDC.address.hex()
    for o in found:
        assert (o.chain, o.block, o.base_fee_per_gas, o.after_reorg) == (
            "testchain",
            10,
            10**9,
            False,
        )
        assert o.tokens == (weth, usdc, weth)
        assert o.net_profit == o.profit - o.gas_cost
        assert o.gas_cost == o.gas_units * 10**9
    best = max(found, key=lambda o: o.net_profit)
    assert "best opportunities" in done.stdout
    assert "WETH → USDC → WETH" in done.stdout
    assert str(best.net_profit) in done.stdout

    again = replay(raw, "--whitelist", whitelist, "--initial-state", initial, "--json-summary")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    rows = summary["best_opportunities"]
    assert rows[0] == {
        "block": 10,
        "path": ["WETH", "USDC", "WETH"],
        "amount_in": best.amount_in,
        "net_profit": best.net_profit,
        "after_reorg": False,
    }
    assert [r["net_profit"] for r in rows] == sorted((o.net_profit for o in found), reverse=True)[
        :5
    ]
    assert summary["tip_block"] == 11  # the rest of the summary is unchanged


def test_replay_refuses_an_unwritable_opportunities_file(tmp_path: Path) -> None:
    whitelist, _, messages = write_inputs(tmp_path)
    raw = tmp_path / "stream.raw"
    raw.write_bytes(b"".join(encode_frame(msg) for msg in messages))
    done = replay(raw, "--whitelist", whitelist, "--opportunities-out", tmp_path / "no" / "x")
    assert done.returncode == 2
    assert "arena replay: opportunity sink" in done.stderr
    assert "cannot open for appending" in done.stderr
    assert "Traceback" not in done.stderr
    bad = replay(raw, "--whitelist", whitelist, "--base-token", "0x1234")
    assert bad.returncode == 2
    assert "not a 0x-prefixed 20-byte hex address" in bad.stderr


async def collect(received: asyncio.Queue[Msg], n: int) -> list[Opportunity]:
    return [
        OPPORTUNITY_DECODER.decode((await asyncio.wait_for(received.get(), DEADLINE)).data)
        for _ in range(n)
    ]


async def test_replay_publishes_to_nats(tmp_path: Path, nats_server: NatsServer) -> None:
    whitelist, initial, messages = write_inputs(tmp_path)
    raw, out = tmp_path / "stream.raw", tmp_path / "opportunities.jsonl"
    raw.write_bytes(b"".join(encode_frame(msg) for msg in messages))
    nc = await nats.connect(nats_server.url)
    received: asyncio.Queue[Msg] = asyncio.Queue()
    await nc.subscribe(opportunities_subject("testchain"), cb=received.put)
    await nc.flush()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "replay",
        "--no-progress",
        str(raw),
        "--whitelist",
        str(whitelist),
        "--initial-state",
        str(initial),
        "--opportunities-out",
        str(out),
        "--nats",
        nats_server.url,
        "--chain",
        "testchain",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 0, stderr.decode()
    expected = read_jsonl(out)
    assert expected
    assert await collect(received, len(expected)) == expected  # flushed before exiting
    await nc.close()


async def test_run_publishes_each_settled_block_to_nats_and_jsonl(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    whitelist, initial, messages = write_inputs(tmp_path)
    sock, out = tmp_path / "exex.sock", tmp_path / "opportunities.jsonl"
    nc = await nats.connect(nats_server.url)
    received: asyncio.Queue[Msg] = asyncio.Queue()
    await nc.subscribe(opportunities_subject("ethereum"), cb=received.put)
    await nc.flush()
    async with FrameBroadcastServer(sock) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sidecar.cli",
            "run",
            "--socket",
            str(sock),
            "--whitelist",
            str(whitelist),
            "--initial-state",
            str(initial),
            "--spill-depth",
            "0",
            "--opportunities-out",
            str(out),
            "--nats",
            nats_server.url,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            await asyncio.wait_for(server.wait_for_accepted(1), DEADLINE)
            await server.publish_many(messages)
            first = await collect(received, 1)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    written = read_jsonl(out)
    assert written[0] == first[0]
    rest = await collect(received, len(written) - 1)
    assert first + rest == written
    assert {o.block for o in written} == {10}
    await nc.close()


@pytest.mark.parametrize("skew", [Fraction(1)])
def test_replay_of_a_balanced_market_lists_no_opportunity(tmp_path: Path, skew: Fraction) -> None:
    engine = usdc_weth_engine(skew=skew)
    engine.mark_synced(9, keep_history=False)
    whitelist, initial = tmp_path / "w.json", tmp_path / "s.json"
    whitelist.write_text(json.dumps(whitelist_document(engine)))
    write_state_file(engine, initial)
    raw = tmp_path / "stream.raw"
    raw.write_bytes(b"".join(encode_frame(msg) for msg in StreamSequencer().block(10, [])))
    done = replay(raw, "--whitelist", whitelist, "--initial-state", initial)
    assert done.returncode == 0, done.stderr
    assert "best opportunities (0 found; top 0 by net profit, start-token units): none" in (
        done.stdout
    )


def test_replay_refuses_a_nats_server_it_cannot_reach(tmp_path: Path) -> None:
    """A replay may end before a connection would: it waits for NATS first, or says why
    it cannot publish (nothing is replayed, no opportunity silently dropped)."""
    whitelist, _, messages = write_inputs(tmp_path)
    raw = tmp_path / "stream.raw"
    raw.write_bytes(b"".join(encode_frame(msg) for msg in messages))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = replay(raw, "--whitelist", whitelist, "--nats", f"nats://127.0.0.1:{port}")
    assert done.returncode == 2
    assert "not connected within" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
