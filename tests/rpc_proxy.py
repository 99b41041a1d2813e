"""A real HTTP JSON-RPC proxy for tests: forwards every POST to a node (anvil), after an
optional delay, and can fail on purpose. It counts the methods it received, so a test can
prove which endpoint saw a write and how often.

    async with RpcProxy(anvil_url, delay_s=5.0) as proxy:
        client = RpcClient.from_urls(proxy.url)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from enum import Enum
from typing import Any

import aiohttp
import msgspec
from aiohttp import web


class ProxyFailure(Enum):
    NONE = "none"
    STATUS_502 = "status_502"  # answer 502 without forwarding
    FORWARD_THEN_502 = "forward_then_502"  # the node takes the request; the answer is lost


def _methods(body: bytes) -> list[str]:
    try:
        decoded: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ["<garbage>"]
    items = decoded if isinstance(decoded, list) else [decoded]
    return [str(item.get("method")) for item in items if isinstance(item, dict)]


class RpcProxy:
    def __init__(
        self, target: str, *, delay_s: float = 0.0, failure: ProxyFailure = ProxyFailure.NONE
    ) -> None:
        self.target = target
        self.delay_s = delay_s
        self.failure = failure
        self.received: Counter[str] = Counter()
        self.requests = 0
        self.answered = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""
        self._changed = asyncio.Event()

    async def wait_until(self, ready: Callable[[RpcProxy], bool]) -> None:
        """Return once `ready(proxy)` holds, checked after every request and answer."""
        while not ready(self):
            self._changed.clear()
            await self._changed.wait()

    async def __aenter__(self) -> RpcProxy:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        self.received.update(_methods(body))
        self._changed.set()
        if self.failure is ProxyFailure.STATUS_502:
            return web.Response(status=502)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # the node is slow: that is what is tested
        assert self._session is not None
        async with self._session.post(
            self.target, data=body, headers={"Content-Type": "application/json"}
        ) as upstream:
            answer = await upstream.read()
        if self.failure is ProxyFailure.FORWARD_THEN_502:
            return web.Response(status=502)
        self.answered += 1
        self._changed.set()
        return web.Response(body=answer, content_type="application/json")


def closed_port_url() -> str:
    """A URL where nothing listens (the port was bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
