"""One RPC endpoint of the pool: its URL (secret), its shown name, breaker, bucket and
the latency it has shown (an exponentially weighted mean of successful requests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from exex_bridge.redaction import shown_url, split_urls
from exex_bridge.rpc.breaker import CircuitBreaker
from exex_bridge.rpc.rate_limit import TokenBucket

Transport = Literal["http", "ws"]
_LATENCY_WEIGHT: Final = 0.3  # weight of the newest sample in the running mean


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointLimits:
    """Per-endpoint limits, the same for every endpoint of a pool."""

    rate: float = 50.0  # requests per second
    burst: float | None = None  # default: max(1, rate)
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    timeout_s: float = 10.0


def transport_of(url: str) -> Transport:
    scheme = url.partition("://")[0].lower()
    if scheme in ("http", "https"):
        return "http"
    if scheme in ("ws", "wss"):
        return "ws"
    raise ValueError(f"{shown_url(url)}: an RPC endpoint is http(s):// or ws(s)://")


@dataclass(slots=True, eq=False)
class Endpoint:
    url: str = field(repr=False)  # may hold credentials: never logged
    name: str  # what logs and metric labels show
    transport: Transport
    breaker: CircuitBreaker
    bucket: TokenBucket
    timeout_s: float
    latency_s: float | None = None
    healthy: bool = True
    head: int | None = None  # the block number its last health check saw

    def observe_latency(self, seconds: float) -> None:
        old = self.latency_s
        self.latency_s = seconds if old is None else old + _LATENCY_WEIGHT * (seconds - old)


def endpoints_from(urls: str | Sequence[str], limits: EndpointLimits) -> list[Endpoint]:
    """Endpoints of comma-separated URLs (or a list); names are the redacted URLs, made
    unique with `#n` when two share one (two keys on the same host)."""
    parts = split_urls(urls) if isinstance(urls, str) else [u.strip() for u in urls]
    if not parts:
        raise ValueError("an RPC pool needs at least one endpoint URL")
    seen: dict[str, int] = {}
    out = []
    for url in parts:
        shown = shown_url(url)
        seen[shown] = seen.get(shown, 0) + 1
        name = shown if seen[shown] == 1 else f"{shown}#{seen[shown]}"
        out.append(
            Endpoint(
                url=url,
                name=name,
                transport=transport_of(url),
                breaker=CircuitBreaker(limits.failure_threshold, limits.cooldown_s),
                bucket=TokenBucket(limits.rate, limits.burst),
                timeout_s=limits.timeout_s,
            )
        )
    return out
