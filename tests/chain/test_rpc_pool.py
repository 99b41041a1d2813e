"""The pooled RPC client against a real anvil: a dead endpoint, a slow one, a good one;
reads retried, writes sent once to one endpoint; batches; WebSocket; hydration through it."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from eth_account import Account
from prometheus_client import CollectorRegistry

from arena.hydration import hydrate_pools
from devchain import AnvilNode, rpc_call
from executor.chain import ChainClient
from executor.errors import ChainRpcError
from exex_bridge.rpc import (
    BlockingRpc,
    EndpointLimits,
    RpcAnswerError,
    RpcClient,
    RpcLoopThread,
    RpcUnavailableError,
    RpcWriteUnconfirmedError,
)
from tests.chain.conftest import DevChain
from tests.rpc_proxy import ProxyFailure, RpcProxy, closed_port_url

pytestmark = pytest.mark.chain


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, {"client": "arena", **labels})
    return 0.0 if value is None else value


async def test_reads_avoid_a_dead_and_a_slow_endpoint_and_their_breakers_open(
    anvil_node: AnvilNode,
) -> None:
    head = int(rpc_call(anvil_node.web3(), "eth_blockNumber", []), 16)
    registry = CollectorRegistry()
    limits = EndpointLimits(rate=1000, failure_threshold=2, cooldown_s=600, timeout_s=0.5)
    async with (
        RpcProxy(anvil_node.url, delay_s=3.0) as slow,
        RpcProxy(anvil_node.url) as good,
    ):
        dead = closed_port_url()
        client = RpcClient.from_urls([dead, slow.url, good.url], limits, registry=registry)
        async with client:
            names = client.names
            answers = [await client.call("eth_blockNumber", []) for _ in range(6)]
        assert [int(a, 16) for a in answers] == [head] * 6
    dead_name, slow_name, good_name = names
    # Each failing endpoint was tried once; ranked as slow as its timeout after, never again.
    requests = "arena_rpc_requests_total"
    method = "eth_blockNumber"
    assert _sample(registry, requests, endpoint=dead_name, method=method, outcome="transport") == 1
    assert _sample(registry, requests, endpoint=slow_name, method=method, outcome="timeout") == 1
    assert _sample(registry, requests, endpoint=good_name, method=method, outcome="ok") == 6
    assert _sample(registry, "arena_rpc_request_seconds_count", endpoint=good_name) == 6
    assert _sample(registry, "arena_rpc_retries_total", method=method) == 2
    assert good.received[method] == 6 and slow.requests == 1


async def test_breakers_open_and_a_read_with_no_endpoint_left_fails_in_one_error(
    anvil_node: AnvilNode,
) -> None:
    registry = CollectorRegistry()
    client = RpcClient.from_urls(
        [closed_port_url(), closed_port_url()],
        EndpointLimits(timeout_s=1, failure_threshold=2, cooldown_s=600),
        retries=4,
        registry=registry,
    )
    async with client:
        with pytest.raises(RpcUnavailableError) as caught:
            await client.call("eth_chainId", [])
        with pytest.raises(RpcUnavailableError, match="circuit breaker is open"):
            await client.call("eth_chainId", [])  # nothing is sent to an open breaker
    assert caught.value.attempts == 5
    for name in client.names:
        assert _sample(registry, "arena_rpc_breaker_state", endpoint=name) == 2  # open
        assert _sample(registry, "arena_rpc_breaker_opened_total", endpoint=name) == 1
        outcomes = _sample(
            registry,
            "arena_rpc_requests_total",
            endpoint=name,
            method="eth_chainId",
            outcome="transport",
        )
        assert outcomes == 2
    assert _sample(registry, "arena_rpc_unavailable_total", method="eth_chainId") == 2


async def test_an_error_answer_is_raised_and_not_retried(anvil_node: AnvilNode) -> None:
    async with RpcProxy(anvil_node.url) as first, RpcProxy(anvil_node.url) as second:
        async with RpcClient.from_urls([first.url, second.url]) as client:
            with pytest.raises(RpcAnswerError) as caught:
                await client.call("eth_getBalance", ["not an address", "latest"])
        assert first.received["eth_getBalance"] + second.received["eth_getBalance"] == 1
    assert caught.value.code is not None


def _signed_transfer(node: AnvilNode) -> tuple[bytes, str]:
    w3 = node.web3()
    account = Account.from_key(secrets.token_bytes(32))
    rpc_call(w3, "anvil_setBalance", [account.address, hex(10**18)])
    nonce = int(rpc_call(w3, "eth_getTransactionCount", [account.address, "pending"]), 16)
    tx = {
        "to": account.address,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 1,
        "nonce": nonce,
        "chainId": int(rpc_call(w3, "eth_chainId", []), 16),
        "type": 2,
    }
    signed = Account.sign_transaction(tx, account.key)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


async def test_a_write_goes_once_to_the_pinned_endpoint_and_is_never_retried(
    anvil_node: AnvilNode,
) -> None:
    raw, tx_hash = _signed_transfer(anvil_node)
    async with (
        RpcProxy(anvil_node.url, failure=ProxyFailure.FORWARD_THEN_502) as lossy,
        RpcProxy(anvil_node.url) as other,
    ):
        async with RpcClient.from_urls([lossy.url, other.url]) as client:
            assert client.write_endpoint == client.names[0]
            with pytest.raises(RpcWriteUnconfirmedError):
                await client.call("eth_sendRawTransaction", ["0x" + raw.hex()], write=True)
            # The node took it although the answer was lost: a blind retry would resend.
            found = await client.call("eth_getTransactionByHash", [tx_hash])
            # reads are retried elsewhere after the lossy endpoint fails them
            assert await client.call("eth_chainId", []) is not None
        assert lossy.received["eth_sendRawTransaction"] == 1
        assert other.received["eth_sendRawTransaction"] == 0
    assert found is not None and found["hash"] == tx_hash


async def test_writes_follow_the_pin(anvil_node: AnvilNode) -> None:
    raw, tx_hash = _signed_transfer(anvil_node)
    async with RpcProxy(anvil_node.url) as first, RpcProxy(anvil_node.url) as second:
        async with RpcClient.from_urls([first.url, second.url]) as client:
            client.pin_writes(client.names[1])
            sent = await client.call("eth_sendRawTransaction", ["0x" + raw.hex()], write=True)
            with pytest.raises(ValueError, match="no RPC endpoint named"):
                client.pin_writes("http://elsewhere:1")
        assert (
            first.received["eth_sendRawTransaction"],
            second.received["eth_sendRawTransaction"],
        ) == (0, 1)
    assert sent == tx_hash


async def test_batches_over_http_and_websocket_answer_in_request_order(
    anvil_node: AnvilNode,
) -> None:
    w3 = anvil_node.web3()
    accounts = rpc_call(w3, "eth_accounts", [])
    expected = [rpc_call(w3, "eth_getBalance", [a, "latest"]) for a in accounts]
    calls = [("eth_getBalance", [a, "latest"]) for a in reversed(accounts)]
    ws_url = anvil_node.url.replace("http://", "ws://")
    for url in (anvil_node.url, ws_url):
        async with RpcClient.from_urls(url) as client:
            answers = await client.batch(calls)
            together = await asyncio.gather(*(client.call(m, p) for m, p in calls))
        assert [a["result"] for a in answers] == list(reversed(expected)), url
        assert list(together) == list(reversed(expected)), url


async def test_health_checks_mark_a_dead_endpoint_unhealthy(anvil_node: AnvilNode) -> None:
    registry = CollectorRegistry()
    client = RpcClient.from_urls([closed_port_url(), anvil_node.url], registry=registry)
    async with client:
        await client.check_health()
        heads = [e.head for e in client.endpoints]
    dead, live = client.names
    assert heads[0] is None and heads[1] is not None
    assert _sample(registry, "arena_rpc_endpoint_healthy", endpoint=dead) == 0
    assert _sample(registry, "arena_rpc_endpoint_healthy", endpoint=live) == 1


async def test_hydration_through_the_pool_equals_hydration_through_web3(
    devchain: DevChain,
) -> None:
    pools = [(p.address, p.protocol) for p in devchain.deployment.pools]
    block = devchain.w3.eth.block_number
    direct = hydrate_pools(devchain.w3, pools, block)
    async with RpcProxy(devchain.node.url) as proxy:
        async with RpcClient.from_urls([closed_port_url(), proxy.url]) as client:
            blocking = BlockingRpc(client, asyncio.get_running_loop())
            pooled = await asyncio.to_thread(hydrate_pools, blocking, pools, block, batch_size=7)
        assert proxy.received["eth_call"] > len(pools)
    assert pooled == direct


def test_the_executor_chain_client_reads_and_sends_through_the_pool(
    anvil_node: AnvilNode,
) -> None:
    raw, tx_hash = _signed_transfer(anvil_node)
    client = RpcClient.from_urls([closed_port_url(), anvil_node.url])
    client.pin_writes(client.names[1])
    direct = ChainClient(anvil_node.url)
    with RpcLoopThread(client) as pool:  # its own loop: this thread waits, no loop does
        chain = ChainClient(anvil_node.url, pool=pool)
        assert chain.chain_id() == direct.chain_id()
        assert chain.send_raw(raw) == tx_hash
        with pytest.raises(ChainRpcError):
            chain.request("eth_getBalance", ["not an address", "latest"])
        found = chain.request("eth_getTransactionByHash", [tx_hash])
    assert found is not None and found["hash"] == tx_hash
    with pytest.raises(RuntimeError, match="loop is closed"):  # stopped: said, not hung
        chain.chain_id()
