"""Per-endpoint metrics of the RPC clients; `endpoint` is always the redacted name.

Every series carries `client`, the name the `RpcClient` was given (`arena`, `executor`,
`follow`): two clients of one process may share endpoints and a registry, and their
request counts, breakers and health stay apart."""

from __future__ import annotations

from typing import Final, final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exex_bridge.rpc.breaker import BreakerState

_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CLIENT_NAMES: Final = frozenset({"arena", "executor", "follow"})
BREAKER_VALUE: Final = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@final
class RpcMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "arena_rpc_requests",
            "RPC requests by endpoint, method (batch for a batch) and outcome "
            "(ok, answer_error, timeout, transport, http_status, garbage, unconfirmed_write)",
            ["client", "endpoint", "method", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "arena_rpc_request_seconds",
            "Seconds from sending an RPC request to its answer, answered requests only",
            ["client", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.breaker_state = Gauge(
            "arena_rpc_breaker_state",
            "Circuit breaker of the endpoint: 0 closed, 1 half-open, 2 open",
            ["client", "endpoint"],
            registry=r,
        )
        self.breaker_opened = Counter(
            "arena_rpc_breaker_opened",
            "Times the endpoint's breaker opened",
            ["client", "endpoint"],
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "arena_rpc_rate_limit_waits",
            "Requests that waited for the endpoint's token bucket",
            ["client", "endpoint"],
            registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            "arena_rpc_rate_limit_wait_seconds",
            "Seconds requests waited for the endpoint's token bucket",
            ["client", "endpoint"],
            registry=r,
        )
        self.retries = Counter(
            "arena_rpc_retries",
            "Read attempts after a failed one, by method",
            ["client", "method"],
            registry=r,
        )
        self.unavailable = Counter(
            "arena_rpc_unavailable",
            "Reads that failed on every attempt, by method",
            ["client", "method"],
            registry=r,
        )
        self.healthy = Gauge(
            "arena_rpc_endpoint_healthy",
            "1 when the endpoint's last health check answered and was not behind",
            ["client", "endpoint"],
            registry=r,
        )
