"""`arena relay` and `arena run --jetstream` refuse what they cannot use in one line,
exit status 2, no traceback, no credential shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.nats_server import NatsServer
from tests.relay.processes import ROOT

SECRET = "s3cret-pass"


def _arena(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=90,
        check=False,
    )


def _refused(done: subprocess.CompletedProcess[str], command: str, *needles: str) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"arena {command}: "), last
    for needle in needles:
        assert needle in last, last
    assert SECRET not in done.stderr
    return last


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_relay_without_nats_says_so(tmp_path: Path) -> None:
    _refused(_arena("relay", "--socket", tmp_path / "s.sock"), "relay", "--nats", "required")


def test_relay_with_an_unreachable_nats_server_names_it_without_credentials(
    tmp_path: Path,
) -> None:
    url = f"nats://user:{SECRET}@127.0.0.1:{_free_port()}"
    done = _arena("relay", "--socket", tmp_path / "s.sock", "--nats", url)
    _refused(done, "relay", "cannot reach NATS at nats://127.0.0.1:")


async def test_relay_without_a_socket_gives_up_after_the_connect_timeout(tmp_path: Path) -> None:
    async with NatsServer(jetstream_dir=tmp_path / "js") as server:
        done = _arena(
            "relay",
            "--socket",
            tmp_path / "none.sock",
            "--nats",
            server.url,
            "--connect-timeout",
            "0.5",
        )
    _refused(done, "relay", "could not connect to", "none.sock")


async def test_relay_on_a_server_without_jetstream_says_so(tmp_path: Path) -> None:
    async with NatsServer() as server:
        done = _arena("relay", "--socket", tmp_path / "s.sock", "--nats", server.url)
    _refused(done, "relay", "EXEX_ETHEREUM", "JetStream")


async def test_relay_refuses_batches_the_server_would_refuse(tmp_path: Path) -> None:
    async with NatsServer(jetstream_dir=tmp_path / "js") as server:
        done = _arena(
            "relay",
            "--socket",
            tmp_path / "s.sock",
            "--nats",
            server.url,
            "--batch-bytes",
            str(4 * 1024 * 1024),
        )
    _refused(done, "relay", "--batch-bytes", "max_payload (1048576 bytes)")


def test_relay_refuses_a_chain_that_cannot_be_a_subject(tmp_path: Path) -> None:
    done = _arena(
        "relay",
        "--socket",
        tmp_path / "s.sock",
        "--nats",
        "nats://127.0.0.1:1",
        "--chain",
        "eth.main",
    )
    _refused(done, "relay", "chain name 'eth.main'")


def _whitelist(tmp_path: Path) -> Path:
    path = tmp_path / "wl.json"
    path.write_text('{"chain": "ethereum", "pools": []}')
    return path


def test_run_refuses_jetstream_with_socket(tmp_path: Path) -> None:
    done = _arena(
        "run",
        "--jetstream",
        "nats://127.0.0.1:1",
        "--socket",
        tmp_path / "s.sock",
        "--whitelist",
        _whitelist(tmp_path),
    )
    _refused(done, "run", "--jetstream", "not with --socket")


def test_run_refuses_a_window_without_jetstream(tmp_path: Path) -> None:
    done = _arena("run", "--to-seq", "5", "--whitelist", _whitelist(tmp_path))
    _refused(done, "run", "need --jetstream")


async def test_run_on_a_stream_nobody_relays_says_what_to_start(tmp_path: Path) -> None:
    async with NatsServer(jetstream_dir=tmp_path / "js") as server:
        done = _arena(
            "run",
            "--jetstream",
            server.url,
            "--whitelist",
            _whitelist(tmp_path),
            "--spill-depth",
            "0",
        )
    _refused(done, "run", "EXEX_ETHEREUM", "arena relay")
