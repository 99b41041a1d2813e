"""The RPC client for synchronous code on a worker thread (hydration's rounds, the chain
follower's reads, the executor's thread): each call runs on the client's event loop and
the thread waits for it. Shaped like a web3 provider (`make_request`,
`make_batch_request`), so code written against one takes it unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, TypeVar, final

from exex_bridge.rpc.client import Call, RpcClient
from exex_bridge.rpc.errors import RpcAnswerError

_T = TypeVar("_T")


class JsonRpcProvider(Protocol):
    """What synchronous node code needs of a connection (a web3 provider has it, so has
    `BlockingRpc`): answer objects with `result` or `error`."""

    def make_request(self, method: Any, params: Any) -> Any: ...

    def make_batch_request(self, requests: Any) -> Any: ...


@final
class BlockingRpc:
    def __init__(self, client: RpcClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if self._on_loop_thread():
            coroutine.close()
            raise RuntimeError("BlockingRpc waits on its loop: call it from another thread")
        if self.loop.is_closed():
            coroutine.close()
            raise RuntimeError("BlockingRpc's loop is closed: the client was stopped")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:  # no loop runs in this thread
            return False

    def call(
        self, method: str, params: Sequence[Any], *, write: bool = False, at_writer: bool = False
    ) -> Any:
        return self._run(self.client.call(method, params, write=write, at_writer=at_writer))

    def make_request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        """A JSON-RPC answer object: `result`, or `error` for an error answer. Raises
        RpcUnavailableError when no endpoint answered."""
        try:
            return {"result": self.call(method, params)}
        except RpcAnswerError as exc:
            return {"error": {"code": exc.code, "message": exc.message, "data": exc.data}}

    def make_batch_request(self, requests: Sequence[Call]) -> list[dict[str, Any]]:
        return self._run(self.client.batch(list(requests)))
