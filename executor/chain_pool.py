"""The executor's connection to the node: a pooled `RpcClient` over the endpoints of
`ExecutorSettings.rpc_url` (one URL, or several separated by commas), on an event loop
of its own (`RpcLoopThread`), served to the executor's synchronous code as a
`ChainClient`.

Reads (estimateGas, eth_call, receipts, nonces, balances, headers) are ranked and
retried across the endpoints; `eth_sendRawTransaction` goes to one endpoint only (the
first listed, the pool's write endpoint), never to several and never retried: a lost
answer reaches the lane as an ambiguous send (`executor.lane_sender`). Health checks run
on that loop every `HEALTH_INTERVAL_S`.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Final, final

from executor.chain import DEFAULT_TIMEOUT_S, ChainClient
from executor.errors import ExecutorError
from exex_bridge.rpc import EndpointLimits, RpcClient, RpcLoopThread, RpcMetrics, endpoints_from

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S: Final = 10.0


@final
class ChainPool:
    """The pooled client, its loop thread and the `ChainClient` over them."""

    def __init__(
        self,
        urls: str,
        metrics: RpcMetrics,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        health_interval_s: float | None = HEALTH_INTERVAL_S,
        named: str = "rpc_url",
    ) -> None:
        """`health_interval_s` None: no health checks (ranking and breakers only); `named`:
        what an error calls `urls` (the setting, or a flag)."""
        try:
            endpoints = endpoints_from(urls, EndpointLimits(timeout_s=timeout_s))
        except ValueError as exc:  # the message shows no path, user or password
            raise ExecutorError(f"{named}: {exc}") from None
        self.client = RpcClient(endpoints, client="executor", metrics=metrics)
        self._loop_thread = RpcLoopThread(self.client, name="executor-rpc")
        blocking = self._loop_thread.start()
        self.chain = ChainClient(self.client.write_endpoint, timeout_s, pool=blocking)
        self._health: Future[None] | None = None
        if health_interval_s is not None:
            self._health = asyncio.run_coroutine_threadsafe(
                self.client.run_health_checks(health_interval_s), blocking.loop
            )
        log.info(
            "executor RPC: %d endpoint(s) %s; writes to %s only",
            len(endpoints),
            ", ".join(self.client.names),
            self.client.write_endpoint,
        )

    def close(self) -> None:
        if self._health is not None:
            self._health.cancel()
        self._loop_thread.stop()
