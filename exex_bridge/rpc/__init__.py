"""One async JSON-RPC client over a pool of node endpoints (HTTP and WebSocket): health
checks, latency-ranked selection, a circuit breaker and a token bucket per endpoint,
retries with backoff for reads only, per-endpoint metrics. `BlockingRpc` serves it to
synchronous code on worker threads; nothing here ever blocks the caller's event loop."""

from exex_bridge.rpc.blocking import BlockingRpc, JsonRpcProvider
from exex_bridge.rpc.breaker import BreakerState, CircuitBreaker
from exex_bridge.rpc.client import RpcClient
from exex_bridge.rpc.endpoint import Endpoint, EndpointLimits, endpoints_from
from exex_bridge.rpc.errors import (
    EndpointFailedError,
    RpcAnswerError,
    RpcError,
    RpcUnavailableError,
    RpcWriteUnconfirmedError,
)
from exex_bridge.rpc.loop_thread import RpcLoopThread
from exex_bridge.rpc.metrics import RpcMetrics
from exex_bridge.rpc.ranking import ranked
from exex_bridge.rpc.rate_limit import TokenBucket

__all__ = [
    "BlockingRpc",
    "BreakerState",
    "CircuitBreaker",
    "Endpoint",
    "EndpointFailedError",
    "EndpointLimits",
    "JsonRpcProvider",
    "RpcAnswerError",
    "RpcClient",
    "RpcError",
    "RpcLoopThread",
    "RpcMetrics",
    "RpcUnavailableError",
    "RpcWriteUnconfirmedError",
    "TokenBucket",
    "endpoints_from",
    "ranked",
]
