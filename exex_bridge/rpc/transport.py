"""How one request reaches one endpoint: HTTP POST (aiohttp) or a WebSocket connection
(websockets) shared by every request, answers matched by JSON-RPC id.

Every failure becomes an `EndpointFailedError` naming the endpoint by its shown name only:
library messages can repeat the URL, and a URL can hold an API key.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol, final

import aiohttp
import msgspec
import websockets
from websockets.asyncio.client import ClientConnection, connect

from exex_bridge.rpc.endpoint import Endpoint
from exex_bridge.rpc.errors import EndpointFailedError

_JSON_HEADERS = {"Content-Type": "application/json"}


class Transport(Protocol):
    async def send(self, payload: Any) -> Any:
        """Send one JSON-RPC request or batch; the decoded answer. Raises EndpointFailedError."""
        ...

    async def close(self) -> None: ...


def _decode(name: str, body: bytes | str) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise EndpointFailedError(name, "garbage", "the answer is not JSON") from None


@final
class HttpTransport:
    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None

    async def send(self, payload: Any) -> Any:
        name = self._endpoint.name
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = msgspec.json.encode(payload)
        try:
            async with asyncio.timeout(self._endpoint.timeout_s):
                async with self._session.post(
                    self._endpoint.url, data=body, headers=_JSON_HEADERS
                ) as response:
                    if response.status != 200:
                        raise EndpointFailedError(name, "http_status", f"HTTP {response.status}")
                    answer = await response.read()
        except TimeoutError:
            raise EndpointFailedError(
                name, "timeout", f"no answer within {self._endpoint.timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise EndpointFailedError(name, "transport", type(exc).__name__) from None
        return _decode(name, answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _ids_of(payload: Any) -> list[object]:
    if isinstance(payload, list):
        return [item.get("id") for item in payload if isinstance(item, dict)]
    return [payload.get("id")] if isinstance(payload, dict) else []


@final
class WsTransport:
    """One connection, opened on first use and again after it drops."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[object, asyncio.Future[Any]] = {}
        self._connecting = asyncio.Lock()

    async def send(self, payload: Any) -> Any:
        name = self._endpoint.name
        ids = _ids_of(payload)
        if not ids:
            raise ValueError("a WebSocket request needs a JSON-RPC id")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        for request_id in ids:
            self._pending[request_id] = future
        try:
            async with asyncio.timeout(self._endpoint.timeout_s):
                connection = await self._connected()
                await connection.send(msgspec.json.encode(payload).decode())
                return await future
        except TimeoutError:
            raise EndpointFailedError(
                name, "timeout", f"no answer within {self._endpoint.timeout_s:g} s"
            ) from None
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            raise EndpointFailedError(name, "transport", type(exc).__name__) from None
        finally:
            for request_id in ids:
                self._pending.pop(request_id, None)

    async def _connected(self) -> ClientConnection:
        async with self._connecting:
            if self._connection is None:
                self._connection = await connect(self._endpoint.url, max_size=None)
                self._reader = asyncio.create_task(self._read(self._connection))
            return self._connection

    async def _read(self, connection: ClientConnection) -> None:
        name = self._endpoint.name
        failure = EndpointFailedError(name, "transport", "connection closed")
        try:
            async for message in connection:
                try:
                    answer = _decode(name, message)
                except EndpointFailedError as exc:
                    failure = exc
                    break
                ids = _ids_of(answer)
                future = self._pending.get(ids[0]) if ids else None
                if future is not None and not future.done():
                    future.set_result(answer)
        except websockets.exceptions.WebSocketException as exc:
            failure = EndpointFailedError(name, "transport", type(exc).__name__)
        finally:
            if self._connection is connection:
                self._connection = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(failure)
            with contextlib.suppress(websockets.exceptions.WebSocketException):
                await connection.close()

    async def close(self) -> None:
        connection, reader = self._connection, self._reader
        self._connection = self._reader = None
        if connection is not None:
            await connection.close()
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def transport_for(endpoint: Endpoint) -> Transport:
    return HttpTransport(endpoint) if endpoint.transport == "http" else WsTransport(endpoint)
