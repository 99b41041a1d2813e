"""Latency-ranked selection: which endpoints a request may try, best first.

An endpoint whose breaker refuses is never offered. Among the rest: closed breakers
before half-open ones, healthy before unhealthy, then the lowest mean latency (a failure
counts as the endpoint's timeout); an endpoint never measured ranks as fast (it gets
measured), ties keep configuration order.
"""

from __future__ import annotations

from collections.abc import Sequence

from exex_bridge.rpc.breaker import BreakerState
from exex_bridge.rpc.endpoint import Endpoint


def ranked(endpoints: Sequence[Endpoint], now: float) -> list[Endpoint]:
    order = {id(e): i for i, e in enumerate(endpoints)}

    def key(e: Endpoint) -> tuple[bool, bool, float, int]:
        return (
            e.breaker.state(now) is not BreakerState.CLOSED,
            not e.healthy,
            e.latency_s if e.latency_s is not None else 0.0,
            order[id(e)],
        )

    return sorted((e for e in endpoints if e.breaker.available(now)), key=key)
