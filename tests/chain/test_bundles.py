"""Bundles through local relays (devchain/bundle_relay.py, real HTTP) on anvil.

- two transactions land atomically, in order, in one block — or not at all;
- the executor's bundle goes to two relays and is included once, then confirmed;
- a bundle whose eth_callBundle result holds a revert is not sent (journaled refused);
- a request whose body no longer matches its signature is rejected by the relay (403,
  JSON-RPC error), and the executor logs, counts and journals it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest
import requests
from prometheus_client import CollectorRegistry

from devchain import TxRequest, execute_block
from devchain.abi import call, encode_call
from devchain.bundle_relay import BundleRelay
from devchain.executor_world import arena_opportunities, new_funded_key
from devchain.rpc import mine
from executor.attempt import ChainHead, Prepared
from executor.channels.auth import SIGNATURE_HEADER, signature_header
from executor.channels.bundle import simulation_revert
from executor.channels.relay import RelayClient
from executor.journal import AttemptStatus, confirmed_profit, read_journal
from executor.keys import SigningKey
from executor.session import OpportunityExecutor
from executor.settings import ExecutorSettings
from executor.transaction import SignedTransaction, UnsignedTransaction, sign_transaction
from pathfinder.opportunity import Opportunity
from tests.chain.executor_fixtures import (
    ExecutorWorld,
    RecordingLane,
    executor_world,
    send_unchecked,
)
from tests.chain.test_execute_command import (
    append,
    assert_no_key,
    execute_args,
    finish,
    read_until,
    start,
)
from tests.chain.test_executor_guards import competitor

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

WAIT_S = 60.0
S = AttemptStatus


@pytest.fixture
def relays(executor_world: ExecutorWorld) -> Iterator[tuple[BundleRelay, BundleRelay]]:
    url = executor_world.chain.node.url
    with BundleRelay(url) as first, BundleRelay(url) as second:
        yield first, second


@pytest.fixture
def auth_key(executor_world: ExecutorWorld) -> SigningKey:
    secret = os.urandom(32)
    (executor_world.tmp / "relay-auth.key").write_text(secret.hex())
    return SigningKey(secret)


def bundle_settings(world: ExecutorWorld, *urls: str) -> ExecutorSettings:
    return msgspec.structs.replace(
        world.settings(live=True),
        channel="bundle",
        relays=urls,
        relay_auth_key_file=str(world.tmp / "relay-auth.key"),
        confirm_depth=1,
        deadline_blocks=20,
    )


def signed(
    world: ExecutorWorld, key: SigningKey, to: str, data: bytes, nonce: int
) -> SignedTransaction:
    _, base_fee = world.client.latest_header()
    tx = UnsignedTransaction(
        chain_id=world.client.chain_id(),
        nonce=nonce,
        max_priority_fee_per_gas=10**9,
        max_fee_per_gas=2 * base_fee + 10**9,
        gas=100_000,
        to=bytes.fromhex(to[2:]),
        data=data,
    )
    return sign_transaction(tx, key)


def best(world: ExecutorWorld) -> Opportunity:
    found = arena_opportunities(world.chain.w3, world.pools)
    assert found, "the dev chain is deployed mispriced: there is a cycle"
    return found[0]


def test_two_transactions_land_in_one_block_in_order_or_not_at_all(
    executor_world: ExecutorWorld, relays: tuple[BundleRelay, BundleRelay], auth_key: SigningKey
) -> None:
    """A passes tokens to B, B passes them to C: B's transfer succeeds only after A's."""
    world, (relay, _) = executor_world, relays
    w3, token = world.chain.w3, world.chain.deployment.tokens[0].address
    a, _ = new_funded_key(w3)
    b, _ = new_funded_key(w3)
    c = "0x" + os.urandom(20).hex()
    amount = 10**18
    transfer = TxRequest(
        sender=world.chain.deployment.trader,
        to=token,
        data=encode_call("ERC20", "transfer", a.address_hex, amount),
        gas=100_000,
    )
    execute_block(w3, [transfer])
    first = signed(world, a, token, encode_call("ERC20", "transfer", b.address_hex, amount), 0)
    second = signed(world, b, token, encode_call("ERC20", "transfer", c, amount), 0)
    client = RelayClient(relay.url, auth_key)
    head = world.client.block_number()
    # the relay's simulation sees B's transfer fail when it runs first, and not otherwise
    backwards = client.call_bundle([second.raw, first.raw], head + 1, head)
    assert (simulation_revert(backwards) or "").startswith("tx 0: ")
    assert simulation_revert(client.call_bundle([first.raw, second.raw], head + 1, head)) is None
    assert world.client.block_number() == head  # simulations leave no trace

    client.send_bundle([second.raw, first.raw], head + 1, str(uuid.uuid4()))
    built = relay.build_block()
    assert built.number == head + 1 and built.bundle_hash is None
    assert world.client.receipt("0x" + first.tx_hash.hex()) is None  # not even A's
    assert world.client.nonce(a.address, "latest") == 0
    assert call(w3, token, "ERC20", "balanceOf", a.address_hex)[0] == amount

    head += 1
    bundle_hash = client.send_bundle([first.raw, second.raw], head + 1, str(uuid.uuid4()))
    built = relay.build_block()
    assert built.number == head + 1 and built.bundle_hash == bundle_hash
    receipts = [world.client.receipt("0x" + tx.tx_hash.hex()) for tx in (first, second)]
    assert all(r is not None and r["status"] == "0x1" for r in receipts)
    blocks = {int(r["blockNumber"], 16) for r in receipts if r is not None}
    indexes = [int(r["transactionIndex"], 16) for r in receipts if r is not None]
    assert blocks == {head + 1} and indexes[0] < indexes[1]
    assert call(w3, token, "ERC20", "balanceOf", c)[0] == amount
    assert relay.log.signers == {auth_key.address_hex}


def run_in_thread(executor: OpportunityExecutor, feed: list[Opportunity]) -> threading.Thread:
    thread = threading.Thread(target=executor, args=(feed,), name="test-executor")
    thread.start()
    return thread


def test_the_executors_bundle_goes_to_two_relays_and_is_included_once(
    executor_world: ExecutorWorld, relays: tuple[BundleRelay, BundleRelay], auth_key: SigningKey
) -> None:
    world, (first, second) = executor_world, relays
    registry = CollectorRegistry()
    executor = OpportunityExecutor.open(bundle_settings(world, first.url, second.url), registry)
    opportunity = best(world)
    head = world.client.block_number()
    try:
        thread = run_in_thread(executor, [opportunity])
        # each relay holds it for the next two blocks
        assert first.wait_for_bundles(2, WAIT_S) and second.wait_for_bundles(2, WAIT_S)
        landed = first.build_block()
        assert landed.bundle_hash is not None and landed.number == head + 1
        thread.join(WAIT_S)
        assert not thread.is_alive()
        # included: the executor withdrew it from both relays; the next block has nothing
        assert second.build_block().bundle_hash is None
        executor.track()
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    assert [e.status for e in journal] == [
        AttemptStatus.SENT,
        AttemptStatus.INCLUDED,
        AttemptStatus.CONFIRMED,
    ]
    sent, included, confirmed = journal
    assert sent.channel == "bundle" and sent.target_blocks == (head + 1, head + 2)
    assert included.mined_block == head + 1 and included.tx_hash == sent.tx_hash
    assert landed.tx_hashes == (sent.tx_hash,)
    for relay in (first, second):
        assert relay.log.calls["eth_sendBundle"] == 2
        assert relay.log.calls["eth_cancelBundle"] == 1
    assert first.log.calls["eth_callBundle"] == 1 and "eth_callBundle" not in second.log.calls
    assert sent.nonce is not None
    assert world.client.nonce(world.key.address, "latest") == sent.nonce + 1
    held = call(world.chain.w3, opportunity.tokens[0], "ERC20", "balanceOf", world.executor)[0]
    assert confirmed.realized_profit == held == opportunity.profit
    assert confirmed_profit(journal) == {opportunity.tokens[0].lower(): held}
    token = opportunity.tokens[0].lower()
    sample = registry.get_sample_value("arena_executor_realized_profit_total", {"token": token})
    assert sample == float(held)  # a Prometheus sample is a float; the journal is exact
    assert executor.tracker.realized == {token: held}
    sends = registry.get_sample_value(
        "arena_executor_channel_sends_total", {"channel": "bundle", "outcome": "accepted"}
    )
    assert sends == 1


def test_a_bundle_past_its_blocks_is_dropped_and_its_nonce_returns_to_the_lane(
    executor_world: ExecutorWorld, relays: tuple[BundleRelay, BundleRelay], auth_key: SigningKey
) -> None:
    """The relays never build its blocks: after its last target block the bundle can no
    longer be included, so its nonce (confirmed in the lane when a relay took it) is
    released — no self-transfer fill, it never was public."""
    world, (relay, _) = executor_world, relays
    lane = RecordingLane(world)
    executor = OpportunityExecutor.open(bundle_settings(world, relay.url), lane=lane)
    nonce = world.client.nonce(world.key.address)
    try:
        thread = run_in_thread(executor, [best(world)])
        assert relay.wait_for_bundles(2, WAIT_S)
        mine(world.chain.w3, 2)  # both target blocks pass without the bundle
        thread.join(WAIT_S)
        assert not thread.is_alive()
    finally:
        executor.close()
    sent, dropped = read_journal(world.tmp / "journal.jsonl")
    assert (sent.status, dropped.status) == (AttemptStatus.SENT, AttemptStatus.DROPPED)
    assert sent.nonce == nonce and dropped.reason.endswith(f"nonce {nonce} released to the lane")
    assert lane.confirmed == [nonce] and lane.released == [nonce]
    assert lane.lane.state.next == nonce and lane.lane.reserve() == nonce  # no gap
    assert relay.log.calls["eth_cancelBundle"] == 1
    assert world.client.nonce(world.key.address, "latest") == nonce
    assert world.client.receipt(str(sent.tx_hash)) is None


def test_a_bundle_whose_simulation_reverts_is_not_sent(
    executor_world: ExecutorWorld, relays: tuple[BundleRelay, BundleRelay], auth_key: SigningKey
) -> None:
    """Prepared (our own simulation passed), then a competitor takes the cycle: the
    relay's eth_callBundle holds the revert, and nothing is sent."""
    world, (relay, _) = executor_world, relays
    lane = RecordingLane(world)
    executor = OpportunityExecutor.open(bundle_settings(world, relay.url), lane=lane)
    opportunity = best(world)
    try:
        number, base_fee = world.client.latest_header()
        head = ChainHead(chain_id=world.client.chain_id(), number=number, base_fee_per_gas=base_fee)
        prepared = executor.builder.prepare(
            opportunity, head, world.client.nonce(world.key.address)
        )
        assert isinstance(prepared, Prepared)
        rival_key, rival = competitor(world)
        assert send_unchecked(world, rival_key, rival, prepared.transaction.data)["status"] == "0x1"
        executor.send(prepared)
    finally:
        executor.close()
    (refused,) = read_journal(world.tmp / "journal.jsonl")
    assert refused.status is AttemptStatus.REFUSED and refused.channel == "bundle"
    assert refused.reason.startswith("bundle simulation reverted: tx 0: InsufficientProfit(")
    assert relay.log.calls == {"eth_callBundle": 1}
    assert relay.bundles == []
    assert lane.released == [refused.nonce]  # the nonce was never used: back to the lane


class ReserializingProxy:
    """Forwards each request to `target` with its JSON re-serialized (other spacing) and
    the same headers: the signature no longer matches the body the relay receives."""

    def __init__(self, target: str) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                changed = json.dumps(json.loads(body), indent=1).encode()
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: self.headers[SIGNATURE_HEADER],
                }
                answer = requests.post(proxy.target, data=changed, headers=headers, timeout=WAIT_S)
                self.send_response(answer.status_code)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        self.target = target
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()
        host, port = self.server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_a_bad_signature_is_rejected_by_the_relay_and_reported(
    executor_world: ExecutorWorld,
    relays: tuple[BundleRelay, BundleRelay],
    auth_key: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, (relay, _) = executor_world, relays
    body = (
        b'{"jsonrpc":"2.0","id":1,"method":"eth_cancelBundle","params":[{"replacementUuid":"x"}]}'
    )
    header = signature_header(body, auth_key)
    forged = signature_header(body, SigningKey(os.urandom(32))).partition(":")[2]
    for bad in (f"{auth_key.address_hex}:{forged}", None):
        headers = {"Content-Type": "application/json"}
        if bad is not None:
            headers[SIGNATURE_HEADER] = bad
        answer = requests.post(relay.url, data=body, headers=headers, timeout=WAIT_S)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == -32600
    assert (
        "signature check"
        in requests.post(
            relay.url, data=body + b" ", headers={SIGNATURE_HEADER: header}, timeout=WAIT_S
        ).json()["error"]["message"]
    )
    assert (
        requests.post(
            relay.url, data=body, headers={SIGNATURE_HEADER: header}, timeout=WAIT_S
        ).json()["result"]
        is None
    )
    assert relay.log.rejected_signatures == 3

    proxy = ReserializingProxy(relay.url)
    registry = CollectorRegistry()
    executor = OpportunityExecutor.open(bundle_settings(world, proxy.url), registry)
    try:
        with caplog.at_level(logging.WARNING, logger="executor.channels.bundle"):
            executor([best(world)])
    finally:
        executor.close()
        proxy.close()
    (refused,) = read_journal(world.tmp / "journal.jsonl")
    assert refused.status is AttemptStatus.REFUSED
    assert "no relay simulated it" in refused.reason
    assert f"error in signature check {auth_key.address_hex}" in refused.reason
    errors = registry.get_sample_value(
        "arena_executor_relay_errors_total",
        {"relay": proxy.url, "method": "eth_callBundle"},
    )
    assert errors == 1
    assert [r.message for r in caplog.records if "signature check" in r.message]
    assert relay.log.rejected_signatures == 4 and relay.bundles == []
    assert world.tmp.joinpath("relay-auth.key").read_text() not in caplog.text


async def test_arena_execute_sends_a_bundle_and_confirms_it_from_the_nodes_heads(
    executor_world: ExecutorWorld, relays: tuple[BundleRelay, BundleRelay], auth_key: SigningKey
) -> None:
    """The flags end to end: `arena execute --live --channel bundle --relay URL`; between
    batches the process polls the node, so a block mined later confirms it."""
    world, (relay, _) = executor_world, relays
    source = world.tmp / "opportunities.jsonl"
    append(source, [best(world)])
    auth_file = world.tmp / "relay-auth.key"
    flags = ["--live", "--channel", "bundle", "--relay", relay.url]
    flags += ["--relay-auth-key-file", str(auth_file), "--confirm-depth", "1"]
    process = await start(execute_args(world, str(source), *flags, "--until-idle", "60"))
    seen: list[str] = []
    try:
        assert await asyncio.to_thread(relay.wait_for_bundles, 2, WAIT_S)
        landed = await asyncio.to_thread(relay.build_block)
        assert landed.bundle_hash is not None
        await read_until(process, " attempt included ", seen)
        assert (await asyncio.to_thread(relay.build_block)).bundle_hash is None
        await read_until(process, " attempt confirmed ", seen)
    finally:
        out, err = await finish(process, seen)
    journal = read_journal(world.tmp / "journal.jsonl")
    assert [e.status for e in journal] == [S.SENT, S.INCLUDED, S.CONFIRMED]
    assert journal[0].channel == "bundle" and landed.tx_hashes == (journal[0].tx_hash,)
    assert "arena execute (live):" in out.splitlines()[-1]
    journal_text = (world.tmp / "journal.jsonl").read_text()
    assert_no_key(world, out, err, journal_text)
    assert auth_file.read_text() not in out + err + journal_text
