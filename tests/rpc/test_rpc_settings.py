"""`[rpc]` as the user gives it: several endpoints in one value, bad ones refused in one
line (exit 2) without showing a path, user or password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from exex_bridge.rpc import EndpointLimits, RpcClient, endpoints_from
from sidecar.cli import build_parser
from sidecar.commands.run import rpc_client
from sidecar.config_file import load_settings
from sidecar.execution import executor_settings
from tests.arena.replay_scenario import whitelist_document


def test_several_endpoints_become_one_pool_with_the_configured_limits() -> None:
    args = build_parser().parse_args(
        ["run", "--rpc-rate-limit", "7", "--rpc-breaker-failures", "3", "--rpc-retries", "0"]
    )
    environ = {"ARENA_RPC_URL": "https://u:pw@a.example/v2/KEY,wss://b.example:8546/KEY"}
    settings = load_settings(args, environ=environ)
    client = rpc_client(settings, CollectorRegistry())
    assert client is not None
    assert client.names == ("https://a.example", "wss://b.example:8546")
    assert client.retries == 0
    assert [e.bucket.rate for e in client.endpoints] == [7, 7]
    assert [e.breaker.failure_threshold for e in client.endpoints] == [3, 3]
    assert client.write_endpoint == "https://a.example"


def test_an_endpoint_of_another_scheme_is_one_line_and_exit_2(tmp_path: Path) -> None:
    whitelist = tmp_path / "w.json"
    whitelist.write_text(json.dumps(whitelist_document()))
    done = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", "run", "--whitelist", str(whitelist)],
        env={**os.environ, "ARENA_RPC_URL": "http://ok:8545,ftp://user:pw@host/KEY"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ftp://host" in lines[0], done.stderr
    assert "KEY" not in done.stderr and "pw" not in done.stderr


def test_the_executor_reads_from_every_endpoint_and_writes_to_the_first(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "execute",
            "--executor",
            "0x" + "11" * 20,
            "--whitelist",
            str(tmp_path / "w.json"),
            "--journal",
            str(tmp_path / "journal.jsonl"),
            "--opportunities",
            str(tmp_path / "opportunities.jsonl"),
        ]
    )
    environ = {"ARENA_RPC_URL": "http://first:8545/KEY,ws://second:8546"}
    chosen = executor_settings(load_settings(args, environ=environ), "execute")
    assert chosen.rpc_url == environ["ARENA_RPC_URL"]  # the executor's pool: every endpoint
    client = RpcClient(endpoints_from(chosen.rpc_url, EndpointLimits()))
    assert client.names == ("http://first:8545", "ws://second:8546")
    assert client.write_endpoint == "http://first:8545"
