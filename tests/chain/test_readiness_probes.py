"""`/healthz` and `/readyz` of a real `arena run`: anvil with the Uniswap contracts, the
chain follower on a real Unix socket, the node's RPC behind a relay the test can cut.

`/readyz` answers 503 with the reason before anything is seeded, on a stale tip, on a
stream_seq gap (while the node cannot be reached for the resync) and on a lost socket,
and 200 again after each recovery; `/healthz` answers 200 throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devchain import TrafficGenerator
from devchain.chain_proof import Step, change_chain
from devchain.whitelist_file import write_whitelist
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.producers.chain_follower import ChainFollower
from exex_bridge.whitelist import Whitelist, load_whitelist_file
from tests.chain.conftest import DevChain
from tests.chain.tcp_relay import TcpRelay
from tests.exex_bridge.socket_streams import socket_path_in

pytestmark = pytest.mark.chain

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120.0
BLOCK_AGE = 6.0  # --ready-block-age: every step below settles a block well within it

Probe = tuple[int, dict[str, object]]


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "probes.sock")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def _probe(url: str) -> Probe:
    code, body = await asyncio.to_thread(_get, url)
    return code, json.loads(body)


async def _until(url: str, wanted: Callable[[Probe], bool], what: str) -> Probe:
    """Ask `url` until the answer is `wanted` (each round waits on the HTTP answer)."""
    seen: Probe | None = None
    try:
        async with asyncio.timeout(DEADLINE):
            while not wanted(seen := await _probe(url)):
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: last answer {seen}") from None
    return seen


def _has_reason(prefix: str) -> Callable[[Probe], bool]:
    def wanted(probe: Probe) -> bool:
        code, body = probe
        reasons = body["reasons"]
        assert isinstance(reasons, list)
        return code == 503 and body["ready"] is False and any(r.startswith(prefix) for r in reasons)

    return wanted


def _ready(probe: Probe) -> bool:
    return probe == (200, {"ready": True, "reasons": []})


def _metric(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


class _Run:
    """`arena run` as a subprocess, its stderr collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        self.proc, self.lines = proc, list[str]()
        self._stream, self._changed = proc.stderr, asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self._stream.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for(self, needle: str, after: int = 0) -> str:
        seen = after
        async with asyncio.timeout(DEADLINE):
            while True:
                for line in self.lines[seen:]:
                    if needle in line:
                        return line
                seen = len(self.lines)
                if self._task.done():
                    raise AssertionError(f"{needle!r} never logged:\n" + "\n".join(self.lines))
                await self._changed.wait()


@contextlib.asynccontextmanager
async def _arena_run(*args: str) -> AsyncIterator[_Run]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "run",
        *args,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    run = _Run(proc)
    try:
        yield run
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
        await run._task
    log = "\n".join(run.lines)
    assert code == 0, log
    assert "Traceback" not in log


async def _settle_until_ready(
    generator: TrafficGenerator, follower: ChainFollower, base: str
) -> None:
    """Mine and publish one block at a time until `/readyz` says ready."""
    async with asyncio.timeout(DEADLINE):
        while True:
            await asyncio.to_thread(change_chain, generator, Step("blocks", 1))
            await follower.poll_once()
            if _ready(await _probe(f"{base}/readyz")):
                return


def _watch_liveness(base: str, done: threading.Event) -> list[int]:
    """The status of every /healthz answer until `done` (one request at a time)."""
    codes = []
    while not done.wait(0.05):
        try:
            codes.append(_get(f"{base}/healthz")[0])
        except OSError:  # the process is gone: the test failed elsewhere
            codes.append(0)
            break
    return codes


async def _alive(base: str) -> None:
    assert await _probe(f"{base}/healthz") == (200, {"alive": True, "reasons": []})


async def test_readyz_follows_seeding_stale_tips_gaps_and_lost_sockets(
    clean_devchain: DevChain, tmp_path: Path, sock: str
) -> None:
    w3, deployment = clean_devchain.w3, clean_devchain.deployment
    whitelist_path = write_whitelist(deployment, tmp_path / "w.json")
    whitelist: Whitelist = load_whitelist_file(whitelist_path)
    generator = TrafficGenerator(w3, deployment, seed=44)
    async with (
        TcpRelay(clean_devchain.node.port) as relay,
        _arena_run(
            "--socket",
            sock,
            "--whitelist",
            str(whitelist_path),
            "--rpc",
            relay.url,
            "--spill-depth",
            "0",
            "--metrics-port",
            "0",
            "--ready-block-age",
            str(BLOCK_AGE),
            # The default --loop-stall (10 s) stays: a resync waits for the cut node off the
            # event loop, so /healthz answers 200 throughout (watched below). The
            # heartbeat's own 503 is proven in tests/sidecar.
        ) as run,
    ):
        line = await run.wait_for("serving metrics at http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1].removesuffix("/metrics")

        # Before the socket exists: nothing seeded, not connected, no block.
        code, body = await _probe(f"{base}/readyz")
        assert code == 503 and body["ready"] is False
        reasons = body["reasons"]
        assert isinstance(reasons, list) and reasons[0].startswith("unseeded")
        assert any(r.startswith("connection ") for r in reasons)
        assert "stale tip: no block settled since the start" in reasons
        metrics = (await asyncio.to_thread(_get, f"{base}/metrics"))[1].decode()
        assert _metric(metrics, "arena_state_synced") == 0
        assert _metric(metrics, "arena_socket_connected") == 0
        assert _metric(metrics, "arena_service_ready") == 0
        await _alive(base)
        # /healthz is asked all along, on its own thread, until the end of the scenario.
        done = threading.Event()
        liveness = asyncio.create_task(asyncio.to_thread(_watch_liveness, base, done))
        for path in ("/", "/ready", "/health", "/metricsx"):
            assert (await asyncio.to_thread(_get, base + path))[0] == 404, path

        async with FrameBroadcastServer(sock) as server:
            start = w3.eth.block_number + 1
            follower = ChainFollower(w3, whitelist, server, start_block=start, keep_blocks=2)
            await server.wait_for_clients(1)
            await _settle_until_ready(generator, follower, base)

            # No block for longer than the age: a stale tip, and only that.
            code, body = await _until(
                f"{base}/readyz", _has_reason("stale tip: last block"), "stale"
            )
            assert len(body["reasons"]) == 1  # type: ignore[arg-type]
            await _alive(base)
            await _settle_until_ready(generator, follower, base)

            # A stream_seq gap (a reorg below the follower's kept blocks) while the node
            # cannot be reached: the resync fails and the arena stays unsynced.
            await asyncio.to_thread(change_chain, generator, Step("blocks", 2))
            await follower.poll_once()
            await relay.cut()
            mark = len(run.lines)
            await asyncio.to_thread(change_chain, generator, Step("reorg", 3))
            assert (await follower.poll_once()).deep_reorg
            await asyncio.to_thread(change_chain, generator, Step("blocks", 1))
            await follower.poll_once()
            await run.wait_for("failed (", after=mark)  # the resync's RPC failure
            await _until(f"{base}/readyz", _has_reason("unsynced (seq_gap"), "gap")
            await _alive(base)
            await relay.restore()
            await _settle_until_ready(generator, follower, base)

        # The producer went away: connection lost, state unsynced. The socket's state and
        # the loss it causes are two steps of the loop: a probe may fall between them.
        lost, unsynced = _has_reason("connection "), _has_reason("unsynced (connection_lost")
        await _until(f"{base}/readyz", lambda p: lost(p) and unsynced(p), "socket lost")
        await _alive(base)
        async with FrameBroadcastServer(sock) as server:
            follower = ChainFollower(
                w3, whitelist, server, start_block=w3.eth.block_number + 1, keep_blocks=2
            )
            await server.wait_for_clients(1)
            await _settle_until_ready(generator, follower, base)
            await _alive(base)
            async with asyncio.timeout(DEADLINE):
                while True:
                    metrics = (await asyncio.to_thread(_get, f"{base}/metrics"))[1].decode()
                    if _metric(metrics, "arena_socket_connects_total") == 2:
                        break
                    await asyncio.sleep(0.1)
        done.set()
        codes = await liveness
    assert codes and set(codes) == {200}, codes
    assert _metric(metrics, "arena_socket_disconnects_total") == 1
    assert _metric(metrics, "arena_socket_connected") == 1
    assert _metric(metrics, "arena_state_synced") == 1
    assert _metric(metrics, "arena_service_ready") == 1
