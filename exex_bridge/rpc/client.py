"""The one async JSON-RPC client over a pool of endpoints.

    client = RpcClient.from_urls("https://a,wss://b", EndpointLimits(rate=20))
    head = await client.call("eth_blockNumber", [])
    answers = await client.batch([("eth_call", [...]), ...])   # raw answers, in order
    tx_hash = await client.call("eth_sendRawTransaction", [raw], write=True)

Reads go to the best-ranked endpoint (`ranking`), wait for its token bucket, and on a
failure of the endpoint (transport, timeout, HTTP status, garbage) are retried on the
next one after a backoff, `retries` times. A JSON-RPC error answer is an answer: raised
as `RpcAnswerError`, never retried. Writes go to one endpoint only, the pinned writer
(the first configured unless `pin_writes` names another), once: never fanned out, never
retried; a failure raises `RpcWriteUnconfirmedError`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, final

from prometheus_client import CollectorRegistry

from exex_bridge.backoff import Backoff
from exex_bridge.rpc.breaker import BreakerState
from exex_bridge.rpc.endpoint import Endpoint, EndpointLimits, endpoints_from
from exex_bridge.rpc.errors import (
    EndpointFailedError,
    RpcAnswerError,
    RpcUnavailableError,
    RpcWriteUnconfirmedError,
)
from exex_bridge.rpc.metrics import BREAKER_VALUE, CLIENT_NAMES, RpcMetrics
from exex_bridge.rpc.ranking import ranked
from exex_bridge.rpc.transport import Transport, transport_for

log = logging.getLogger(__name__)

DEFAULT_RETRIES: Final = 2
DEFAULT_HEAD_LAG: Final = 3  # blocks an endpoint may trail the best head and stay healthy
Call = tuple[str, Sequence[Any]]


def _answer_error(method: str, endpoint: str, error: object) -> RpcAnswerError:
    if isinstance(error, dict):
        code = error.get("code")
        return RpcAnswerError(
            method,
            endpoint,
            code if isinstance(code, int) else None,
            str(error.get("message", "")),
            error.get("data"),
        )
    return RpcAnswerError(method, endpoint, None, str(error), None)


@final
class RpcClient:
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        client: str = "arena",
        retries: int = DEFAULT_RETRIES,
        metrics: RpcMetrics | None = None,
        backoff: Callable[[], Backoff] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("an RPC client needs at least one endpoint")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if client not in CLIENT_NAMES:
            raise ValueError(f"client must be one of {sorted(CLIENT_NAMES)}, got {client!r}")
        self.client_name = client  # the `client` label of every series it writes
        self.endpoints = tuple(endpoints)
        self.retries = retries
        self.metrics = metrics if metrics is not None else RpcMetrics()
        self._backoff = backoff or (lambda: Backoff(initial=0.05, maximum=1.0))
        self._clock = clock
        self._transports: dict[str, Transport] = {}
        self._ids = itertools.count(1)
        self._writer = self.endpoints[0]
        for endpoint in self.endpoints:
            self.metrics.breaker_state.labels(client=self.client_name, endpoint=endpoint.name).set(
                0
            )
            self.metrics.healthy.labels(client=self.client_name, endpoint=endpoint.name).set(1)

    @classmethod
    def from_urls(
        cls,
        urls: str | Sequence[str],
        limits: EndpointLimits | None = None,
        *,
        client: str = "arena",
        retries: int = DEFAULT_RETRIES,
        registry: CollectorRegistry | None = None,
    ) -> RpcClient:
        endpoints = endpoints_from(urls, limits or EndpointLimits())
        return cls(endpoints, client=client, retries=retries, metrics=RpcMetrics(registry))

    # -- the API ------------------------------------------------------------------------
    async def call(
        self, method: str, params: Sequence[Any], *, write: bool = False, at_writer: bool = False
    ) -> Any:
        """The `result` of one call. Raises RpcAnswerError, RpcUnavailableError, or (a
        write) RpcWriteUnconfirmedError. `at_writer`: a read asked of the write endpoint
        only (retried there) — what that node knows of a transaction written to it."""
        if write:
            answer, endpoint = await self._write(method, params)
        else:
            only = self._writer if at_writer else None
            answer, endpoint = await self._read(
                method, lambda: self._request(method, params), only=only
            )
        if not isinstance(answer, dict):
            raise RpcUnavailableError(method, 1, f"{endpoint.name} answered a non-object")
        if "error" in answer:
            raise _answer_error(method, endpoint.name, answer["error"])
        return answer.get("result")

    async def batch(self, calls: Sequence[Call]) -> list[dict[str, Any]]:
        """One JSON-RPC batch of reads; the raw answers (`result` or `error`), in the order
        of `calls`. Retried whole on an endpoint failure. Raises RpcUnavailableError."""
        if not calls:
            return []

        def payload() -> list[dict[str, Any]]:
            return [self._request(method, params) for method, params in calls]

        answer, _ = await self._read("batch", payload, expected=len(calls))
        return answer  # type: ignore[no-any-return]

    @property
    def write_endpoint(self) -> str:
        return self._writer.name

    def pin_writes(self, name: str) -> None:
        """Send every write to the endpoint shown as `name` (a value of `names`)."""
        for endpoint in self.endpoints:
            if endpoint.name == name:
                self._writer = endpoint
                return
        raise ValueError(f"no RPC endpoint named {name!r}: {', '.join(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.endpoints)

    async def check_health(self, head_lag: int = DEFAULT_HEAD_LAG) -> None:
        """eth_blockNumber on every endpoint whose breaker admits a request; healthy when
        it answered and trails the best head by at most `head_lag` blocks."""

        async def probe(endpoint: Endpoint) -> None:
            endpoint.head = None
            if not endpoint.breaker.admit(self._clock()):
                return
            try:
                answer = await self._send(
                    endpoint, "eth_blockNumber", self._request("eth_blockNumber", [])
                )
                endpoint.head = int(str(answer.get("result")), 16)
            except (EndpointFailedError, ValueError, AttributeError) as exc:
                log.debug("health check of %s failed: %s", endpoint.name, exc)

        await asyncio.gather(*(probe(e) for e in self.endpoints))
        heads = [e.head for e in self.endpoints if e.head is not None]
        best = max(heads, default=0)
        for endpoint in self.endpoints:
            healthy = endpoint.head is not None and endpoint.head >= best - head_lag
            if healthy != endpoint.healthy:
                log.warning(
                    "RPC endpoint %s is %s", endpoint.name, "healthy" if healthy else "unhealthy"
                )
            endpoint.healthy = healthy
            self.metrics.healthy.labels(client=self.client_name, endpoint=endpoint.name).set(
                int(healthy)
            )

    async def run_health_checks(self, interval_s: float) -> None:
        """Check every `interval_s` seconds until cancelled."""
        while True:
            await self.check_health()
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        transports, self._transports = self._transports, {}
        for transport in transports.values():
            await transport.close()

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the attempts -------------------------------------------------------------------
    def _request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}

    def _pick(self, tried: set[str], only: Endpoint | None = None) -> Endpoint | None:
        """The best endpoint not tried yet (any, once all were), admitted by its breaker;
        `only`: that endpoint, if its breaker admits it."""
        now = self._clock()
        if only is not None:
            return only if only.breaker.admit(now) else None
        candidates = ranked(self.endpoints, now)
        fresh = [e for e in candidates if e.name not in tried] or candidates
        for endpoint in fresh:
            if endpoint.breaker.admit(now):
                return endpoint
        return None

    async def _read(
        self,
        method: str,
        payload: Callable[[], Any],
        expected: int | None = None,
        *,
        only: Endpoint | None = None,
    ) -> tuple[Any, Endpoint]:
        backoff = self._backoff()
        tried: set[str] = set()
        detail = "no endpoint tried"
        attempts = self.retries + 1
        for attempt in range(attempts):
            if attempt:
                self.metrics.retries.labels(client=self.client_name, method=method).inc()
                await asyncio.sleep(backoff.next_delay())
            endpoint = self._pick(tried, only)
            if endpoint is None:
                detail = "every endpoint's circuit breaker is open"
                continue
            tried.add(endpoint.name)
            try:
                answer = await self._send(endpoint, method, payload(), expected)
            except EndpointFailedError as exc:
                detail = str(exc)
                continue
            return answer, endpoint
        self.metrics.unavailable.labels(client=self.client_name, method=method).inc()
        log.warning("RPC %s failed on every attempt (%d): %s", method, attempts, detail)
        raise RpcUnavailableError(method, attempts, detail)

    async def _write(self, method: str, params: Sequence[Any]) -> tuple[Any, Endpoint]:
        endpoint = self._writer
        if not endpoint.breaker.admit(self._clock()):
            raise RpcUnavailableError(method, 0, f"{endpoint.name}: circuit breaker open")
        try:
            return await self._send(endpoint, method, self._request(method, params)), endpoint
        except EndpointFailedError as exc:
            self.metrics.requests.labels(
                client=self.client_name,
                endpoint=endpoint.name,
                method=method,
                outcome="unconfirmed_write",
            ).inc()
            log.error("write %s to %s not confirmed, not retried: %s", method, endpoint.name, exc)
            raise RpcWriteUnconfirmedError(method, endpoint.name, exc.detail) from None

    async def _send(
        self, endpoint: Endpoint, method: str, payload: Any, expected: int | None = None
    ) -> Any:
        """One request to one endpoint whose breaker admitted it; the decoded answer."""
        wait = endpoint.bucket.reserve(self._clock())
        if wait > 0:
            self.metrics.rate_limit_waits.labels(
                client=self.client_name, endpoint=endpoint.name
            ).inc()
            self.metrics.rate_limit_wait_seconds.labels(
                client=self.client_name, endpoint=endpoint.name
            ).inc(wait)
            await asyncio.sleep(wait)
        transport = self._transports.get(endpoint.name)
        if transport is None:
            transport = self._transports[endpoint.name] = transport_for(endpoint)
        started = self._clock()
        try:
            answer = await transport.send(payload)
            answer = _checked(endpoint.name, payload, answer, expected)
        except EndpointFailedError as exc:
            # ranked as slow as its timeout: a failing endpoint is not tried first again
            endpoint.observe_latency(max(self._clock() - started, endpoint.timeout_s))
            self._failed(endpoint, method, exc)
            raise
        except BaseException:
            endpoint.breaker.abandon()  # cancelled: no verdict on the endpoint
            raise
        elapsed = self._clock() - started
        endpoint.observe_latency(elapsed)
        endpoint.breaker.record_success()
        self._show_breaker(endpoint)
        self.metrics.latency.labels(client=self.client_name, endpoint=endpoint.name).observe(
            elapsed
        )
        outcome = "answer_error" if isinstance(answer, dict) and "error" in answer else "ok"
        self.metrics.requests.labels(
            client=self.client_name, endpoint=endpoint.name, method=method, outcome=outcome
        ).inc()
        return answer

    def _failed(self, endpoint: Endpoint, method: str, exc: EndpointFailedError) -> None:
        now = self._clock()
        was_open = endpoint.breaker.state(now) is BreakerState.OPEN
        endpoint.breaker.record_failure(now)
        self.metrics.requests.labels(
            client=self.client_name, endpoint=endpoint.name, method=method, outcome=exc.kind
        ).inc()
        if not was_open and endpoint.breaker.state(now) is BreakerState.OPEN:
            self.metrics.breaker_opened.labels(
                client=self.client_name, endpoint=endpoint.name
            ).inc()
            log.warning(
                "RPC endpoint %s: circuit breaker open for %.0f s after %d failure(s), last: %s",
                endpoint.name,
                endpoint.breaker.cooldown_s,
                endpoint.breaker.consecutive_failures,
                exc.detail,
            )
        else:
            log.debug("RPC %s on %s failed: %s", method, endpoint.name, exc.detail)
        self._show_breaker(endpoint)

    def _show_breaker(self, endpoint: Endpoint) -> None:
        state = endpoint.breaker.state(self._clock())
        self.metrics.breaker_state.labels(client=self.client_name, endpoint=endpoint.name).set(
            BREAKER_VALUE[state]
        )


def _checked(name: str, payload: Any, answer: Any, expected: int | None) -> Any:
    """The answer of a single request is its object; a batch's, its objects in the
    order of the requests (nodes may answer a batch in any order)."""
    if expected is None:
        if not isinstance(answer, dict) or answer.get("id") != payload["id"]:
            raise EndpointFailedError(name, "garbage", "the answer does not match the request")
        return answer
    if not isinstance(answer, list):
        if isinstance(answer, dict) and "error" in answer:  # the whole batch refused
            raise EndpointFailedError(name, "garbage", f"batch refused: {answer['error']}")
        raise EndpointFailedError(name, "garbage", "a batch answered with a non-list")
    by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
    try:
        return [by_id[request["id"]] for request in payload]
    except KeyError:
        raise EndpointFailedError(name, "garbage", "a batch answer misses requests") from None
