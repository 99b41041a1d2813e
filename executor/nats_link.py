"""One NATS connection for the executor's synchronous code (it runs on worker threads):
its own asyncio loop on a daemon thread; `call` runs a coroutine there and waits for it
with a deadline; `subscribe` delivers a subject's messages to a plain callback.

Connecting fails fast (`NatsUnavailableError`); once connected the client reconnects forever,
and a call made while the server is away fails after its timeout with `NatsUnavailableError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar, final

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from executor.errors import ExecutorError
from exex_bridge.redaction import shown_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 5.0
CALL_TIMEOUT_S: Final = 5.0
T = TypeVar("T")


class NatsUnavailableError(ExecutorError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"NATS at {url}: {reason}")


@final
class NatsLink:
    def __init__(self, url: str, client: NatsClient, loop: asyncio.AbstractEventLoop) -> None:
        self.url = shown_url(url)
        self.client = client
        self._loop = loop
        self._thread: threading.Thread | None = None

    @classmethod
    def connect(cls, url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> NatsLink:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="executor-nats", daemon=True)
        thread.start()

        shown = shown_url(url)

        async def on_error(exc: Exception) -> None:
            # one line, not the client's default traceback; no credentials
            log.warning("NATS at %s: %s", shown, type(exc).__name__)

        async def connect() -> NatsClient:
            return await nats.connect(
                url,
                connect_timeout=timeout_s,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=on_error,
            )

        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(connect(), timeout_s), loop)
        try:
            client = future.result(timeout_s + 1.0)
        except (OSError, TimeoutError, concurrent.futures.TimeoutError, nats.errors.Error) as exc:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            raise NatsUnavailableError(
                shown_url(url), f"cannot connect ({type(exc).__name__})"
            ) from None
        link = cls(url, client, loop)
        link._thread = thread
        return link

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected)

    def call(
        self, make: Callable[[], Coroutine[Any, Any, T]], timeout_s: float = CALL_TIMEOUT_S
    ) -> T:
        if not self.connected:
            raise NatsUnavailableError(self.url, "not connected")
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(make(), timeout_s), self._loop)
        try:
            return future.result(timeout_s + 1.0)
        except (TimeoutError, concurrent.futures.TimeoutError, nats.errors.Error) as exc:
            future.cancel()
            if isinstance(exc, nats.js.errors.APIError):
                raise
            raise NatsUnavailableError(self.url, f"no answer ({type(exc).__name__})") from None

    def subscribe(self, subject: str, on_message: Callable[[bytes], None]) -> None:
        async def deliver(msg: Msg) -> None:
            on_message(msg.data)

        async def subscribe() -> None:
            await self.client.subscribe(subject, cb=deliver)
            await self.client.flush()

        self.call(subscribe)

    def close(self) -> None:
        async def shutdown() -> None:
            # closing a broken connection: nothing more to do than stop its tasks
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.drain(), CALL_TIMEOUT_S)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), CALL_TIMEOUT_S)
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        with contextlib.suppress(Exception):
            future = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
            future.result(3 * CALL_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join()
        self._loop.close()
