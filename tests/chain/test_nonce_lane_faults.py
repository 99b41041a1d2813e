"""The lane sender against a real node's answers: injected errors before acceptance
leave no gap, an ambiguous send is settled by the node, replacements follow the 10 %
rule (anvil itself accepts less, so the rule is ours to enforce)."""

from __future__ import annotations

from pathlib import Path

import msgspec
from prometheus_client import CollectorRegistry

from devchain.executor_world import new_funded_key
from devchain.rpc import mine, rpc_call
from executor.chain import ChainClient
from executor.keys import SigningKey
from executor.lane_sender import LaneSender, SendStatus
from executor.metrics import ExecutionMetrics
from executor.nonce_lane import LaneState, LocalLane
from executor.transaction import UnsignedTransaction, sign_transaction
from tests.chain.conftest import DevChain
from tests.chain.rpc_fault_proxy import Fault, FaultProxy

GWEI = 10**9


def _template(key_address: bytes) -> UnsignedTransaction:
    return UnsignedTransaction(
        chain_id=31337,
        nonce=0,
        max_priority_fee_per_gas=GWEI,
        max_fee_per_gas=100 * GWEI,
        gas=21_000,
        to=key_address,
    )


def _mined_nonces(chain: DevChain, sender: str, first_block: int) -> list[int]:
    tip = mine(chain.w3)
    nonces = []
    for number in range(first_block, tip + 1):
        block = rpc_call(chain.w3, "eth_getBlockByNumber", [hex(number), True])
        nonces += [
            int(t["nonce"], 16) for t in block["transactions"] if t["from"].lower() == sender
        ]
    return sorted(nonces)


def test_errors_before_acceptance_and_lost_answers_leave_no_gap(
    clean_devchain: DevChain, tmp_path: Path
) -> None:
    key, _ = new_funded_key(clean_devchain.w3)
    direct = ChainClient(clean_devchain.node.url)
    first_block = direct.block_number() + 1
    faults = {2: Fault.REJECT, 4: Fault.LOSE_ANSWER, 6: Fault.DROP, 8: Fault.REJECT}
    registry = CollectorRegistry()
    metrics = ExecutionMetrics(registry)
    with FaultProxy(clean_devchain.node.url, faults, "insufficient funds for gas") as proxy:
        chain = ChainClient(proxy.url, timeout_s=30.0)
        lane = LocalLane(tmp_path / "lane.json", lambda: chain.nonce(key.address), owner="t")
        sender = LaneSender(chain, key, lane, metrics)
        results = [sender.send(_template(key.address)) for _ in range(10)]
    statuses = [r.status for r in results]
    assert statuses.count(SendStatus.ACCEPTED) == 7  # sends 2, 6, 8 never reached the pool
    assert results[3].status is SendStatus.ACCEPTED  # lost answer: the node had it
    assert [r.kind for r in results if r.status is not SendStatus.ACCEPTED] == [
        "rejected",
        "ambiguous",
        "rejected",
    ]
    accepted = sorted(
        r.signed.transaction.nonce for r in results if r.signed and r.status is SendStatus.ACCEPTED
    )
    assert accepted == list(range(7))
    assert _mined_nonces(clean_devchain, key.address_hex.lower(), first_block) == list(range(7))
    assert direct.nonce(key.address, "pending") == 7
    assert lane.state.next == 7 and not lane.state.free and not lane.state.leases
    for kind, count in (("rejected", 2), ("ambiguous", 2)):
        found = registry.get_sample_value("arena_executor_lane_errors_total", {"kind": kind})
        assert found == count


def test_an_equal_fee_replacement_is_refused_and_a_ten_percent_one_replaces(
    clean_devchain: DevChain, tmp_path: Path
) -> None:
    key, _ = new_funded_key(clean_devchain.w3)
    chain = ChainClient(clean_devchain.node.url)
    lane = LocalLane(tmp_path / "lane.json", lambda: chain.nonce(key.address), owner="t")
    sender = LaneSender(chain, key, lane)
    first = sender.send(_template(key.address))
    assert first.status is SendStatus.ACCEPTED and first.signed is not None
    before = lane.state

    same = sender.replace(first.signed, 100 * GWEI, GWEI)
    assert same.status is SendStatus.REFUSED and same.signed is None
    assert "below the least accepted" in same.reason
    almost = sender.replace(first.signed, 109 * GWEI, 2 * GWEI)  # anvil would take this
    assert almost.status is SendStatus.REFUSED
    assert lane.state == before  # no nonce reserved or consumed

    bumped = sender.bump(first.signed)
    assert bumped.status is SendStatus.ACCEPTED and bumped.signed is not None
    assert bumped.signed.transaction.nonce == first.signed.transaction.nonce
    assert bumped.signed.transaction.max_fee_per_gas == 110 * GWEI
    assert bumped.signed.transaction.max_priority_fee_per_gas == 1_100_000_000
    assert chain.transaction(bumped.tx_hash) is not None
    assert chain.transaction(first.tx_hash) is None  # replaced in the pool
    mine(clean_devchain.w3)
    assert chain.receipt(bumped.tx_hash) is not None and chain.receipt(first.tx_hash) is None
    assert lane.state == before


def _sent_outside_the_lane(chain: ChainClient, key: SigningKey, nonce: int) -> str:
    tx = msgspec.structs.replace(_template(key.address), nonce=nonce, value=1)  # not ours
    return chain.send_raw(sign_transaction(tx, key).raw)


def test_nonce_too_low_and_a_held_nonce_are_used_elsewhere_and_skipped_once(
    clean_devchain: DevChain, tmp_path: Path
) -> None:
    key, _ = new_funded_key(clean_devchain.w3)
    chain = ChainClient(clean_devchain.node.url)
    registry = CollectorRegistry()
    lane = LocalLane(tmp_path / "lane.json", lambda: chain.nonce(key.address), owner="t")
    sender = LaneSender(chain, key, lane, ExecutionMetrics(registry))
    # another sender with the same key: nonce 0 mined, nonce 1 pending with equal fees
    _sent_outside_the_lane(chain, key, 0)
    mine(clean_devchain.w3)
    _sent_outside_the_lane(chain, key, 1)
    first = sender.send(_template(key.address))  # the lane hands out 0: nonce too low
    second = sender.send(_template(key.address))
    assert first.status is SendStatus.ACCEPTED and first.signed is not None
    assert first.signed.transaction.nonce == 2  # after one resync from the node's count
    assert second.status is SendStatus.ACCEPTED and second.signed is not None
    assert second.signed.transaction.nonce == 3
    found = registry.get_sample_value("arena_executor_lane_errors_total", {"kind": "nonce_too_low"})
    assert found == 1

    # a lane behind a pending transaction gets "replacement transaction underpriced"
    lane._apply(LaneState(next=1))
    third = sender.send(_template(key.address))
    assert third.status is SendStatus.ACCEPTED and third.signed is not None
    assert third.signed.transaction.nonce == 4
    kind = {"kind": "replacement_underpriced"}
    assert registry.get_sample_value("arena_executor_lane_errors_total", kind) == 1
    mine(clean_devchain.w3)
    assert chain.nonce(key.address, "latest") == 5


def test_already_known_counts_as_accepted(clean_devchain: DevChain, tmp_path: Path) -> None:
    key, _ = new_funded_key(clean_devchain.w3)
    with FaultProxy(clean_devchain.node.url, {1: Fault.TWICE}, "") as proxy:
        chain = ChainClient(proxy.url)
        lane = LocalLane(tmp_path / "lane.json", lambda: chain.nonce(key.address), owner="t")
        result = LaneSender(chain, key, lane).send(_template(key.address))
    assert result.status is SendStatus.ACCEPTED and result.kind == "already_known"
    assert lane.state == LaneState(next=1)
    direct = ChainClient(clean_devchain.node.url)
    assert direct.transaction(result.tx_hash) is not None
