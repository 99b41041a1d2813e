"""The HTTP port's probes over real HTTP: `/healthz` follows the event loop's heartbeat
(503 while the loop is stalled, 200 again once it runs), `/readyz` the readiness
reasons, `/metrics` the registry, anything else 404; and the readiness rule itself."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from arena.sync_state import SYNCED, UNSEEDED, LossCause, SyncLoss, SyncState, SyncStatus
from exex_bridge.connection_state import ConnectionState
from sidecar.health import Health, readiness_reasons
from sidecar.loop_heartbeat import LoopHeartbeat
from sidecar.probe_server import ProbeServer

DEADLINE = 30.0


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _Probes:
    def __init__(self, heartbeat: LoopHeartbeat) -> None:
        self.heartbeat = heartbeat
        self.not_ready: list[str] = []

    def liveness_reasons(self) -> list[str]:
        return self.heartbeat.liveness_reasons()

    def readiness_reasons(self) -> list[str]:
        return list(self.not_ready)


def _poll_until(url: str, code: int) -> tuple[int, bytes]:
    """From a thread: ask until the answer has `code` (each round waits on the answer)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        answer = _get(url)
        if answer[0] == code or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)


async def test_healthz_is_503_while_the_loop_is_stalled_and_200_once_it_runs() -> None:
    heartbeat = LoopHeartbeat(stall_limit=0.3, interval=0.02)
    server = ProbeServer(CollectorRegistry(), "127.0.0.1", 0, _Probes(heartbeat))
    beat = asyncio.create_task(heartbeat.run())
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert await asyncio.to_thread(_get, f"{base}/healthz") == (
            200,
            b'{"alive": true, "reasons": []}',
        )
        seen: list[tuple[int, bytes]] = []
        done = threading.Event()

        def watch() -> None:
            seen.append(_poll_until(f"{base}/healthz", 503))
            done.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        # The stall: this blocks the loop (no heartbeat) until the watcher saw the 503.
        assert done.wait(DEADLINE)
        watcher.join()
        code, body = seen[0]
        assert code == 503
        answer = json.loads(body)
        assert answer["alive"] is False
        (reason,) = answer["reasons"]
        assert reason.startswith("event loop stalled: no tick for ") and "(limit 0.3s)" in reason
        # The loop runs again: the heartbeat ticks and the probe recovers.
        assert (await asyncio.to_thread(_poll_until, f"{base}/healthz", 200))[0] == 200
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
        server.stop()


async def test_readyz_metrics_and_unknown_paths() -> None:
    registry = CollectorRegistry()
    Counter("arena_test_things", "things", registry=registry).inc(3)
    probes = _Probes(LoopHeartbeat(stall_limit=5.0))
    server = ProbeServer(registry, "127.0.0.1", 0, probes)
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert await asyncio.to_thread(_get, f"{base}/readyz") == (
            200,
            b'{"ready": true, "reasons": []}',
        )
        probes.not_ready = ["connection disconnected", "stale tip: no block settled"]
        code, body = await asyncio.to_thread(_get, f"{base}/readyz?verbose=1")
        assert code == 503
        assert json.loads(body) == {"ready": False, "reasons": probes.not_ready}
        code, body = await asyncio.to_thread(_get, f"{base}/metrics")
        assert code == 200 and b"arena_test_things_total 3.0" in body
        for path in ("/", "/ready", "/healthz/", "/metrics/x"):
            assert (await asyncio.to_thread(_get, base + path))[0] == 404, path
    finally:
        server.stop()


async def test_without_probes_only_metrics_is_served() -> None:
    server = ProbeServer(CollectorRegistry(), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert (await asyncio.to_thread(_get, f"{base}/metrics"))[0] == 200
        for path in ("/healthz", "/readyz"):
            assert (await asyncio.to_thread(_get, base + path))[0] == 404
    finally:
        server.stop()


_LOSS = SyncLoss(LossCause.SEQ_GAP, "stream_seq 7 after 5", 100)


@given(
    sync=st.sampled_from([UNSEEDED, SYNCED, SyncStatus(SyncState.UNSYNCED, _LOSS)]),
    connection=st.sampled_from(list(ConnectionState)),
    age=st.none() | st.floats(min_value=0, max_value=1e6),
    limit=st.floats(min_value=0.001, max_value=1e5),
)
def test_ready_exactly_when_synced_connected_and_the_tip_is_young(
    sync: SyncStatus, connection: ConnectionState, age: float | None, limit: float
) -> None:
    health = Health(
        sync=sync,
        tip_block=None,
        stale_pools=0,
        last_block_age_seconds=age,
        connection=connection,
    )
    reasons = readiness_reasons(health, limit)
    young = age is not None and age <= limit
    assert (not reasons) == (sync.synced and connection is ConnectionState.CONNECTED and young)
    # One reason per failed condition, each naming it.
    assert any(r.startswith("stale tip") for r in reasons) == (not young)
    assert any(r.startswith("connection ") for r in reasons) == (
        connection is not ConnectionState.CONNECTED
    )
    assert len(reasons) == (not sync.synced) + (connection is not ConnectionState.CONNECTED) + (
        not young
    )
