"""The pooled client on an event loop of its own, for a process part that has none (the
executor's thread, a command without asyncio): `with RpcLoopThread(client) as rpc:` gives
a `BlockingRpc` whose calls run on that loop, never on the stream's."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import final

from exex_bridge.rpc.blocking import BlockingRpc
from exex_bridge.rpc.client import RpcClient


@final
class RpcLoopThread:
    def __init__(self, client: RpcClient, name: str = "rpc-loop") -> None:
        self.client = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self.blocking = BlockingRpc(client, self._loop)

    def start(self) -> BlockingRpc:
        self._thread.start()
        return self.blocking

    def stop(self) -> None:
        """Close the client's connections, then the loop and its thread."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.client.close(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def __enter__(self) -> BlockingRpc:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
