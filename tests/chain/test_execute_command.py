"""`arena execute` and `arena executor deploy` as processes, against the dev chain.

- dry run (the default): a session following a growing JSONL file journals ≥ 20
  simulated opportunities and the sender's nonce does not move; the key's hex appears
  nowhere in stdout, stderr (DEBUG logging) or the journal;
- NATS: opportunities published on `arena.{chain}.opportunities` are journaled;
- deploy prints the contract's address last, owned by the key;
- user mistakes (missing key file, bad address, unreachable node) exit 2 with one line.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec
import nats
import pytest
from eth_abi.abi import decode
from eth_utils.crypto import keccak

from devchain import TrafficGenerator
from devchain.executor_world import arena_opportunities, automine, new_funded_key
from executor.journal import AttemptStatus, read_journal
from executor.session import OpportunityExecutor
from pathfinder.opportunity import OPPORTUNITY_ENCODER, Opportunity
from pathfinder.sinks import opportunities_subject
from tests.chain.executor_fixtures import ExecutorWorld, executor_world
from tests.nats_server import NatsServer
from tests.rpc_proxy import closed_port_url

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

ROOT: Final = Path(__file__).resolve().parents[2]
TIMEOUT: Final = 60.0
ATTEMPT: Final = re.compile(r"attempt (simulated|refused|sent|included|reverted|dropped) ")


def cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "sidecar.cli", *map(str, args)]


def execute_args(world: ExecutorWorld, source: str, *extra: str | Path) -> list[str]:
    return cli(
        "--log-level",
        "DEBUG",
        "execute",
        "--rpc",
        world.chain.node.url,
        "--executor",
        world.executor,
        "--key-file",
        world.key_file,
        "--whitelist",
        world.whitelist,
        "--journal",
        world.tmp / "journal.jsonl",
        "--opportunities",
        source,
        *extra,
    )


async def start(args: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def read_attempts(process: asyncio.subprocess.Process, count: int, seen: list[str]) -> None:
    """Reads stderr until `count` more attempt lines came (each kept in `seen`)."""
    assert process.stderr is not None
    while count > 0:
        line = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT)).decode()
        if not line:
            raise AssertionError("arena execute exited early:\n" + "".join(seen[-20:]))
        seen.append(line)
        if ATTEMPT.search(line):
            count -= 1


async def read_until(process: asyncio.subprocess.Process, pattern: str, seen: list[str]) -> None:
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT)).decode()
        if not line:
            raise AssertionError(f"exited before {pattern!r}:\n" + "".join(seen[-20:]))
        seen.append(line)
        if pattern in line:
            return


async def finish(process: asyncio.subprocess.Process, seen: list[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, err.decode()
    return out.decode(), "".join(seen) + err.decode()


def assert_no_key(world: ExecutorWorld, *texts: str) -> None:
    secret = world.secret.hex()
    for text in texts:
        for form in (secret, secret.upper(), "0x" + secret):
            assert form not in text


def append(path: Path, opportunities: Sequence[Opportunity]) -> None:
    with path.open("ab") as f:
        f.write(b"".join(OPPORTUNITY_ENCODER.encode(o) + b"\n" for o in opportunities))


async def test_a_dry_run_session_simulates_and_never_sends(executor_world: ExecutorWorld) -> None:
    world = executor_world
    w3 = world.chain.w3
    nonce = world.client.nonce(world.key.address, "latest")
    source = world.tmp / "opportunities.jsonl"
    source.touch()
    generator = TrafficGenerator(w3, world.chain.deployment, seed=5)
    process = await start(execute_args(world, str(source)))
    seen: list[str] = []
    simulated = 0
    try:
        for _ in range(60):
            await asyncio.to_thread(generator.run, 1)
            found = await asyncio.to_thread(arena_opportunities, w3, world.pools)
            append(source, found)
            await read_attempts(process, len(found), seen)
            simulated = sum(" attempt simulated " in line for line in seen)
            if simulated >= 25:
                break
    finally:
        out, err = await finish(process, seen)
    journal_text = (world.tmp / "journal.jsonl").read_text()
    journal = read_journal(world.tmp / "journal.jsonl")
    done = [e for e in journal if e.status is AttemptStatus.SIMULATED]
    assert len(done) >= 20
    assert {e.status for e in journal} <= {AttemptStatus.SIMULATED, AttemptStatus.REFUSED}
    for entry in done:
        assert entry.nonce == nonce and entry.tx_hash and entry.reason == "dry run"
        assert entry.expected_profit is not None and entry.expected_profit > 0
        assert entry.sender == world.key.address_hex
    assert world.client.nonce(world.key.address, "latest") == nonce
    assert world.client.nonce(world.key.address, "pending") == nonce
    assert "arena execute (dry run):" in out.splitlines()[-1]
    assert_no_key(world, out, err, journal_text)


async def test_opportunities_from_nats_are_journaled(executor_world: ExecutorWorld) -> None:
    world = executor_world
    found = arena_opportunities(world.chain.w3, world.pools)
    assert found
    async with NatsServer() as server:
        process = await start(
            execute_args(world, server.url, "--max-opportunities", str(len(found)))
        )
        seen: list[str] = []
        await read_until(process, "subscribed to " + opportunities_subject("ethereum"), seen)
        client = await nats.connect(server.url)
        for opportunity in found:
            await client.publish(
                opportunities_subject(opportunity.chain), OPPORTUNITY_ENCODER.encode(opportunity)
            )
        await client.flush()
        await client.close()
        out, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0
    journal = read_journal(world.tmp / "journal.jsonl")
    assert len(journal) == len(found)
    assert sum(e.status is AttemptStatus.SIMULATED for e in journal) >= 1
    assert f"{len(found)} opportunities" in out.decode()


def test_deploy_prints_the_address_of_a_contract_owned_by_the_key(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    key, secret = new_funded_key(world.chain.w3)
    key_file = world.tmp / "owner.key"
    key_file.write_text("0x" + secret.hex())
    with automine(world.chain.w3):
        done = subprocess.run(
            # a dead second endpoint: reads fail over, the deployment goes to the first
            cli(
                "executor",
                "deploy",
                "--rpc",
                f"{world.chain.node.url},{closed_port_url()}",
                "--key-file",
                key_file,
            ),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=TIMEOUT,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    address = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"0x[0-9a-f]{40}", address)
    owner_call = {"to": address, "data": "0x" + keccak(text="owner()")[:4].hex()}
    (owner,) = decode(["address"], world.client.call(owner_call, "latest"))
    assert owner.lower() == key.address_hex
    assert secret.hex() not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--key-file": "missing.key"}, "no such file"),
        ({"--rpc": "http://127.0.0.1:9"}, "no endpoint answered"),
        ({"--executor": "0x1234"}, "not a 0x-prefixed 20-byte hex address"),
        ({"--whitelist": "missing.json"}, "missing.json"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    executor_world: ExecutorWorld, change: dict[str, str], message: str
) -> None:
    world = executor_world
    args = execute_args(world, str(world.tmp / "none.jsonl"), "--until-idle", "1")
    for flag, value in change.items():
        args[args.index(flag) + 1] = (
            value if value.startswith(("0x", "http")) else str(world.tmp / value)
        )
    done = subprocess.run(
        args, capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "arena" in line and message in line]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_the_journal_entries_are_json_objects_one_per_line(executor_world: ExecutorWorld) -> None:
    world = executor_world
    source = world.tmp / "once.jsonl"
    append(source, arena_opportunities(world.chain.w3, world.pools))
    done = subprocess.run(
        execute_args(world, str(source), "--until-idle", "0.5"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for line in (world.tmp / "journal.jsonl").read_text().splitlines():
        entry = msgspec.json.decode(line)
        assert isinstance(entry, dict)
        assert {"block", "status", "expected_profit"} <= set(entry)


def test_the_executor_is_a_sink_of_the_path_recalculator(executor_world: ExecutorWorld) -> None:
    """How `arena run` attaches it: one more sink."""
    world = executor_world
    executor = OpportunityExecutor.open(world.settings(live=False))
    try:
        found = arena_opportunities(world.chain.w3, world.pools, sinks=[executor])
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    assert len(journal) == len(found) > 0
    assert journal[0].status is AttemptStatus.SIMULATED


def test_live_sends_and_journals_the_outcome(executor_world: ExecutorWorld) -> None:
    world = executor_world
    nonce = world.client.nonce(world.key.address, "latest")
    source = world.tmp / "live.jsonl"
    found = arena_opportunities(world.chain.w3, world.pools)
    append(source, found)
    with automine(world.chain.w3):
        done = subprocess.run(
            execute_args(world, str(source), "--live", "--until-idle", "0.5"),
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=TIMEOUT,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "arena execute (live):" in done.stdout.splitlines()[-1]
    journal = read_journal(world.tmp / "journal.jsonl")
    included = [e for e in journal if e.status is AttemptStatus.INCLUDED]
    assert included and all(e.realized_profit == e.expected_profit for e in included)
    assert world.client.nonce(world.key.address, "latest") == nonce + len(included)
    assert_no_key(world, done.stdout, done.stderr, (world.tmp / "journal.jsonl").read_text())
