"""Two RPC clients of one process (the arena's and the executor's) on one registry and
the same endpoint keep their own `arena_rpc_*` series, told apart by `client`."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from exex_bridge.rpc import EndpointLimits, RpcClient, RpcMetrics, RpcUnavailableError
from exex_bridge.rpc.endpoint import endpoints_from
from tests.rpc_proxy import closed_port_url


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.mark.parametrize(("failing", "other"), [("arena", "executor"), ("executor", "arena")])
async def test_one_clients_open_breaker_leaves_the_others_series_closed(
    failing: str, other: str
) -> None:
    registry = CollectorRegistry()
    metrics = RpcMetrics(registry)
    url = closed_port_url()
    limits = EndpointLimits(timeout_s=2, failure_threshold=1, cooldown_s=600)
    clients = {
        name: RpcClient(endpoints_from(url, limits), client=name, retries=0, metrics=metrics)
        for name in (failing, other)
    }
    (endpoint,) = clients[failing].names
    assert clients[other].names == (endpoint,)  # the same endpoint label for both
    async with clients[failing] as client:
        with pytest.raises(RpcUnavailableError):
            await client.call("eth_chainId", [])
    state = "arena_rpc_breaker_state"
    assert _value(registry, state, client=failing, endpoint=endpoint) == 2  # open
    assert _value(registry, state, client=other, endpoint=endpoint) == 0  # closed
    opened = "arena_rpc_breaker_opened_total"
    assert _value(registry, opened, client=failing, endpoint=endpoint) == 1
    assert _value(registry, opened, client=other, endpoint=endpoint) is None
    requests = "arena_rpc_requests_total"
    failed = {"endpoint": endpoint, "method": "eth_chainId", "outcome": "transport"}
    assert _value(registry, requests, client=failing, **failed) == 1
    assert _value(registry, requests, client=other, **failed) is None
    unavailable = "arena_rpc_unavailable_total"
    assert _value(registry, unavailable, client=failing, method="eth_chainId") == 1
    assert _value(registry, unavailable, client=other, method="eth_chainId") is None
    for name in (failing, other):  # health untouched by the failed read
        assert _value(registry, "arena_rpc_endpoint_healthy", client=name, endpoint=endpoint) == 1


def test_a_client_name_outside_the_known_ones_is_refused() -> None:
    endpoints = endpoints_from(closed_port_url(), EndpointLimits())
    with pytest.raises(ValueError, match="client must be one of"):
        RpcClient(endpoints, client="Executor")


@settings(max_examples=20, deadline=None)
@given(failures=st.fixed_dictionaries({"arena": st.integers(0, 3), "executor": st.integers(0, 3)}))
def test_each_clients_series_follow_only_its_own_failures(failures: dict[str, int]) -> None:
    registry = CollectorRegistry()
    metrics = RpcMetrics(registry)
    url = closed_port_url()
    limits = EndpointLimits(timeout_s=2, failure_threshold=2, cooldown_s=600)
    clients = {
        name: RpcClient(endpoints_from(url, limits), client=name, retries=0, metrics=metrics)
        for name in failures
    }

    async def fail_reads() -> None:
        for name, count in failures.items():
            async with clients[name] as client:
                for _ in range(count):
                    with pytest.raises(RpcUnavailableError):
                        await client.call("eth_chainId", [])

    asyncio.run(fail_reads())
    for name, count in failures.items():
        (endpoint,) = clients[name].names
        # the breaker opens at the threshold; a read after that is refused unsent
        sent = min(count, limits.failure_threshold)
        requests = registry.get_sample_value(
            "arena_rpc_requests_total",
            {"client": name, "endpoint": endpoint, "method": "eth_chainId", "outcome": "transport"},
        )
        assert (requests or 0.0) == sent
        state = registry.get_sample_value(
            "arena_rpc_breaker_state", {"client": name, "endpoint": endpoint}
        )
        assert state == (2 if sent == limits.failure_threshold else 0)
