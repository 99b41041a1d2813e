"""The service's HTTP port: `/metrics` and, for `arena run`, the `/healthz` and `/readyz`
probes. Anything else is 404.

The server answers from its own thread so that it can report an event loop that stopped
ticking (a loop that cannot run cannot answer for itself); what it reports comes from the
`Probes` it is given: a liveness and a readiness check, each a list of reasons (empty:
fine). The probe bodies are JSON: `{"alive"|"ready": bool, "reasons": [str, ...]}`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol, final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

_JSON: Final = "application/json"


class Probes(Protocol):
    def liveness_reasons(self) -> list[str]: ...

    def readiness_reasons(self) -> list[str]: ...


def probe_body(key: str, reasons: list[str]) -> bytes:
    return json.dumps({key: not reasons, "reasons": reasons}).encode()


@final
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() waits for the requests being answered

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, probes: Probes | None
    ) -> None:
        self.registry = registry
        self.probes = probes
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


@final
class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        probes = self.server.probes
        if path == "/metrics":
            self._answer(HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(self.server.registry))
        elif path == "/healthz" and probes is not None:
            self._probe("alive", probes.liveness_reasons())
        elif path == "/readyz" and probes is not None:
            self._probe("ready", probes.readiness_reasons())
        else:
            self._answer(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    def _probe(self, key: str, reasons: list[str]) -> None:
        status = HTTPStatus.SERVICE_UNAVAILABLE if reasons else HTTPStatus.OK
        self._answer(status, _JSON, probe_body(key, reasons))

    def _answer(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


@final
class ProbeServer:
    """Serves until `stop()`; `port` is the bound one (0 asks for any free port)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        addr: str,
        port: int,
        probes: Probes | None = None,
    ) -> None:
        self._httpd = _Server((addr, port), registry, probes)  # OSError if it cannot bind
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"http:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
