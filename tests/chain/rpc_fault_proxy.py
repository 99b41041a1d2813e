"""A real HTTP proxy in front of a node that misbehaves on chosen requests: the n-th
`eth_sendRawTransaction` can get a JSON-RPC error answer without reaching the node,
reach the node and lose its answer, or be dropped unanswered. It can also stand for
another node that no sent transaction has reached yet (`unseen`: every
`eth_getTransactionByHash` is answered null), and make every other read slow
(`read_delay`)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class Fault(StrEnum):
    REJECT = "reject"  # an error answer; the node never sees the request
    LOSE_ANSWER = "lose_answer"  # the node accepts it; the connection closes unanswered
    DROP = "drop"  # the connection closes unanswered; the node never sees it
    TWICE = "twice"  # forwarded twice (a retrying middlebox); the second answer returned


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        faults: dict[int, Fault],
        message: str,
        *,
        unseen: bool = False,
        read_delay: float = 0.0,
    ) -> None:
        self.upstream = upstream
        self.faults = faults
        self.message = message
        self.unseen = unseen
        self.read_delay = read_delay
        self.sends = 0
        self.lookups = 0  # eth_getTransactionByHash requests
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                if request.get("method") == "eth_getTransactionByHash":
                    with proxy._lock:
                        proxy.lookups += 1
                    if proxy.unseen:
                        unknown = {"jsonrpc": "2.0", "id": request["id"], "result": None}
                        self._reply(json.dumps(unknown).encode())
                        return
                elif request.get("method") != "eth_sendRawTransaction" and proxy.read_delay:
                    time.sleep(proxy.read_delay)  # the injected latency of a slow node
                fault = proxy.fault_for(request)
                if fault is Fault.DROP:
                    self.close_connection = True
                    return
                if fault is Fault.REJECT:
                    error = {"code": -32000, "message": proxy.message}
                    answer = json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error})
                    self._reply(answer.encode())
                    return
                forwarded = urllib.request.Request(
                    proxy.upstream, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(forwarded, timeout=60) as response:
                    answer_bytes = response.read()
                if fault is Fault.TWICE:
                    with urllib.request.urlopen(forwarded, timeout=60) as response:
                        answer_bytes = response.read()
                if fault is Fault.LOSE_ANSWER:
                    self.close_connection = True
                    return
                self._reply(answer_bytes)

            def _reply(self, payload: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def fault_for(self, request: dict[str, object]) -> Fault | None:
        if request.get("method") != "eth_sendRawTransaction":
            return None
        with self._lock:
            self.sends += 1
            return self.faults.get(self.sends)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
