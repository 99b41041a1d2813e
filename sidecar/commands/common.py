"""Options and helpers shared by `arena replay` and `arena run` (not a subcommand)."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import final
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from arena.errors import ArenaError
from arena.snapshot_ring import DEFAULT_DEPTH
from arena.spill import DEFAULT_SPILL_DEPTH

log = logging.getLogger(__name__)


def non_negative(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return n


def positive(value: str) -> int:
    n = non_negative(value)
    if n == 0:
        raise argparse.ArgumentTypeError("must be positive, got 0")
    return n


def seconds(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not n > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return n


def port(value: str) -> int:
    n = non_negative(value)
    if n > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return n


def default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "pool-state-arena"


def add_state_options(parser: argparse.ArgumentParser, *, whitelist_required: bool) -> None:
    parser.add_argument(
        "--whitelist",
        type=Path,
        required=whitelist_required,
        metavar="W.json",
        help="pools to model: a whitelist.pools.{chain}.full JSON document",
    )
    parser.add_argument(
        "--initial-state",
        type=Path,
        metavar="S0.json",
        help="seed the pools from a state file (as written by --state-out) before the stream",
    )
    parser.add_argument(
        "--state-out", type=Path, metavar="S.json", help="write the final state here (atomic)"
    )


def add_engine_options(parser: argparse.ArgumentParser, *, spill_help: str) -> None:
    parser.add_argument("--spill-path", type=Path, metavar="DIR", help=spill_help)
    parser.add_argument(
        "--spill-depth",
        type=non_negative,
        default=DEFAULT_SPILL_DEPTH,
        metavar="BLOCKS",
        help=f"blocks kept in RocksDB below the ring (default {DEFAULT_SPILL_DEPTH}; 0: no spill)",
    )
    parser.add_argument(
        "--ring-depth",
        type=positive,
        default=DEFAULT_DEPTH,
        metavar="BLOCKS",
        help=f"blocks of pre-images kept in memory (default {DEFAULT_DEPTH})",
    )


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=port,
        metavar="P",
        help="serve Prometheus metrics on this port (0: any free port; default: not served)",
    )
    parser.add_argument(
        "--metrics-addr",
        default="127.0.0.1",
        metavar="ADDR",
        help="address the metrics server binds (default 127.0.0.1)",
    )


class MetricsServerError(ArenaError):
    def __init__(self, addr: str, port: int, reason: str) -> None:
        self.addr, self.port, self.reason = addr, port, reason
        super().__init__(f"cannot serve metrics on {addr}:{port}: {reason}")


@final
@dataclass(slots=True)
class MetricsServer:
    """The prometheus_client HTTP server on its daemon thread."""

    httpd: WSGIServer
    thread: threading.Thread
    url: str

    @classmethod
    def start(cls, registry: CollectorRegistry, addr: str, port: int) -> MetricsServer:
        try:
            httpd, thread = start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            raise MetricsServerError(addr, port, exc.strerror or str(exc)) from exc
        host = f"[{addr}]" if ":" in addr else addr
        url = f"http://{host}:{httpd.server_port}/metrics"
        log.info("serving metrics at %s", url)
        return cls(httpd, thread, url)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
