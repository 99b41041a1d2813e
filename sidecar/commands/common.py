"""What `arena replay` and `arena run` share (not a subcommand): the metrics server,
the directories their settings name, flags read by setting kinds."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, final

from prometheus_client import CollectorRegistry

from arena.errors import ArenaError
from sidecar.errors import DirectoryError
from sidecar.probe_server import Probes, ProbeServer
from sidecar.setting_values import Kind, SettingValueError

log = logging.getLogger(__name__)

T = TypeVar("T")


def flag_type(kind: Kind[T]) -> Callable[[str], T]:
    """An argparse `type=` for a flag that is not a setting, read by a setting kind."""

    def parse(text: str) -> T:
        try:
            return kind.from_text(text)
        except SettingValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def prepare_directory(path: Path, role: str) -> Path:
    """Create `path` (and its parents) if missing; a one-line error if that fails."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DirectoryError(path, role, "a file of that name exists") from None
    except OSError as exc:
        raise DirectoryError(path, role, exc.strerror or str(exc)) from None
    return path


class MetricsServerError(ArenaError):
    def __init__(self, addr: str, port: int, reason: str) -> None:
        self.addr, self.port, self.reason = addr, port, reason
        super().__init__(f"cannot serve metrics on {addr}:{port}: {reason}")


@final
@dataclass(slots=True)
class MetricsServer:
    """`/metrics` (and the probes when given `probes`) on the service's HTTP port."""

    server: ProbeServer
    url: str

    @classmethod
    def start(
        cls, registry: CollectorRegistry, addr: str, port: int, probes: Probes | None = None
    ) -> MetricsServer:
        try:
            server = ProbeServer(registry, addr, port, probes)
        except OSError as exc:
            raise MetricsServerError(addr, port, exc.strerror or str(exc)) from exc
        host = f"[{addr}]" if ":" in addr else addr
        url = f"http://{host}:{server.port}/metrics"
        log.info("serving metrics at %s", url)
        if probes is not None:
            log.info("probes at http://%s:%d/healthz and /readyz", host, server.port)
        return cls(server, url)

    def stop(self) -> None:
        self.server.stop()
