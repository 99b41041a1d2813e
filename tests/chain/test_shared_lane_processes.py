"""Two sending processes share one key through the NATS KV nonce lane (real
nats-server with JetStream, real anvil): every nonce used once, none skipped — also
when one process is killed (SIGKILL) while it holds nonces."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from devchain.anvil import repo_root
from devchain.executor_world import new_funded_key
from devchain.rpc import mine, rpc_call
from executor.chain import ChainClient
from executor.keys import SigningKey
from executor.nonce_lane import LANE_DECODER, LaneState, now_ms
from executor.shared_lane import lane_key
from tests.chain.conftest import DevChain
from tests.chain.lane_sending_process import BUCKET
from tests.nats_server import NatsServer

DEADLINE_S = 300.0
LEASE_S = 3.0


@pytest.fixture
async def jetstream() -> AsyncIterator[NatsServer]:
    async with NatsServer(jetstream=True) as server:
        yield server


async def _start(
    chain: DevChain, server: NatsServer, key_file: Path, count: int, threads: int
) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.chain.lane_sending_process",
        chain.node.url,
        server.url,
        str(key_file),
        str(count),
        str(threads),
        str(LEASE_S),
        cwd=repo_root(),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _accepted(
    process: asyncio.subprocess.Process, stop_after: int | None = None
) -> list[int]:
    """The nonces the process reports accepted (until it ends, or `stop_after` of them)."""
    assert process.stdout is not None
    nonces: list[int] = []
    while line := await process.stdout.readline():
        words = line.decode().split()
        if words[0] == "accepted":
            nonces.append(int(words[1]))
            if stop_after is not None and len(nonces) >= stop_after:
                break
    return nonces


async def _lane_state(server: NatsServer, key: SigningKey) -> LaneState:
    client = await nats.connect(server.url)
    try:
        kv = await client.jetstream().key_value(BUCKET)
        entry = await kv.get(lane_key(31337, key.address))
        return LANE_DECODER.decode(entry.value or b"")
    finally:
        await client.close()


def _mined_nonces(chain: DevChain, key: SigningKey, first_block: int) -> list[int]:
    """Mines what the pool holds; the nonces of `key`'s transactions mined since then."""
    tip = mine(chain.w3)
    sender = key.address_hex.lower()
    nonces = []
    for number in range(first_block, tip + 1):
        block = rpc_call(chain.w3, "eth_getBlockByNumber", [hex(number), True])
        nonces += [
            int(t["nonce"], 16) for t in block["transactions"] if t["from"].lower() == sender
        ]
    return sorted(nonces)


def _key(chain: DevChain, tmp_path: Path) -> tuple[SigningKey, Path]:
    key, secret = new_funded_key(chain.w3)
    key_file = tmp_path / "shared.key"
    key_file.write_text(secret.hex())
    return key, key_file


async def test_two_processes_send_100_with_one_key_and_no_nonce_is_reused_or_skipped(
    clean_devchain: DevChain, jetstream: NatsServer, tmp_path: Path
) -> None:
    key, key_file = _key(clean_devchain, tmp_path)
    first_block = ChainClient(clean_devchain.node.url).block_number() + 1
    processes = [await _start(clean_devchain, jetstream, key_file, 50, 4) for _ in range(2)]
    reports = await asyncio.wait_for(asyncio.gather(*(_accepted(p) for p in processes)), DEADLINE_S)
    for process in processes:
        assert await asyncio.wait_for(process.wait(), DEADLINE_S) == 0
    every = sorted(reports[0] + reports[1])
    assert every == list(range(100))
    assert reports[0] and reports[1], "one process sent everything: nothing was shared"
    assert _mined_nonces(clean_devchain, key, first_block) == list(range(100))
    client = ChainClient(clean_devchain.node.url)
    assert client.nonce(key.address, "latest") == client.nonce(key.address, "pending") == 100


async def test_a_process_killed_holding_nonces_leaves_no_gap(
    clean_devchain: DevChain, jetstream: NatsServer, tmp_path: Path
) -> None:
    key, key_file = _key(clean_devchain, tmp_path)
    first_block = ChainClient(clean_devchain.node.url).block_number() + 1
    doomed = await _start(clean_devchain, jetstream, key_file, 60, 4)
    survivor = await _start(clean_devchain, jetstream, key_file, 40, 4)
    await asyncio.wait_for(_accepted(doomed, stop_after=10), DEADLINE_S)
    doomed.send_signal(signal.SIGKILL)
    await doomed.wait()
    orphaned = [
        lease
        for lease in (await _lane_state(jetstream, key)).leases
        if lease.owner.endswith(f":{doomed.pid}")
    ]
    survived = await asyncio.wait_for(_accepted(survivor), DEADLINE_S)
    assert await survivor.wait() == 0 and len(survived) == 40

    # A restart after the dead process's leases expired reuses their nonces first.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while any(lease.expires_ms > now_ms() for lease in (await _lane_state(jetstream, key)).leases):
        assert loop.time() < deadline, "leases never expired"
        await asyncio.sleep(LEASE_S / 4)
    restarted = await _start(clean_devchain, jetstream, key_file, 10, 2)
    refilled = await asyncio.wait_for(_accepted(restarted), DEADLINE_S)
    assert await restarted.wait() == 0

    mined = _mined_nonces(clean_devchain, key, first_block)
    assert mined == list(range(len(mined))), "a nonce was skipped or used twice"
    client = ChainClient(clean_devchain.node.url)
    assert client.nonce(key.address, "pending") == len(mined)
    status = rpc_call(clean_devchain.w3, "txpool_status", [])
    assert int(status["queued"], 16) == 0 and int(status["pending"], 16) == 0
    assert len(mined) >= 50
    assert orphaned, "the killed process held no nonce: no gap was exercised"
    assert {lease.nonce for lease in orphaned} <= set(refilled) | set(survived)
