"""What a dropped transaction does to its nonce, for every combination of what the node
says (unit test of `executor.nonce_outcomes` with a stand-in node; the real node and
lanes are in tests/chain/test_inclusion.py and test_bundles.py).

Properties: exactly one of confirmed / released / filled; a public transaction the node
still holds is never released (its nonce could be reused while it can still be mined);
a nonce the chain already used is never released; the lane keeps every nonce below
`next` confirmed, leased or free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from executor.keys import SigningKey
from executor.lane_sender import LaneSender
from executor.nonce_lane import LocalLane
from executor.nonce_outcomes import NonceOutcomes
from executor.outcome_metrics import OutcomeMetrics
from executor.transaction import UnsignedTransaction, sign_transaction

KEY = SigningKey(bytes.fromhex("11" * 32))
GWEI = 10**9


class NodeAnswers:
    """The node's answers for one dropped transaction; records what was sent."""

    def __init__(self, mined_count: int, holds: bool, base_fee: int) -> None:
        self.mined_count = mined_count
        self.holds = holds
        self.base_fee = base_fee
        self.sent: list[bytes] = []

    def nonce(self, address: bytes, tag: str = "pending") -> int:
        return self.mined_count + (1 if self.holds and tag == "pending" else 0)

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        return {"hash": tx_hash} if self.holds else None

    def latest_header(self) -> tuple[int, int]:
        return 100, self.base_fee

    def send_raw(self, raw: bytes) -> str:
        self.sent.append(raw)
        return "0x" + "00" * 32


@given(
    nonce=st.integers(min_value=0, max_value=5),
    mined_ahead=st.booleans(),
    holds=st.booleans(),
    channel=st.sampled_from(["mempool", "bundle"]),
    base_fee=st.integers(min_value=1, max_value=500 * GWEI),
)
def test_a_dropped_nonce_is_confirmed_filled_or_released(
    tmp_path_factory: Any,
    *,
    nonce: int,
    mined_ahead: bool,
    holds: bool,
    channel: str,
    base_fee: int,
) -> None:
    node = NodeAnswers(nonce + 1 if mined_ahead else nonce, holds and not mined_ahead, base_fee)
    path = Path(tmp_path_factory.mktemp("lane")) / "lane.json"
    lane = LocalLane(path, lambda: nonce, owner="test")
    assert lane.reserve() == nonce
    lane.confirm(nonce)  # the channel accepted it
    sender = LaneSender(node, KEY, lane)  # type: ignore[arg-type]
    metrics = OutcomeMetrics(CollectorRegistry())
    outcomes = NonceOutcomes(node, sender, metrics)  # type: ignore[arg-type]
    dropped = sign_transaction(
        UnsignedTransaction(
            chain_id=1,
            nonce=nonce,
            max_priority_fee_per_gas=GWEI,
            max_fee_per_gas=30 * GWEI,
            gas=300_000,
            to=b"\x22" * 20,
        ),
        KEY,
    )

    said = outcomes.dropped(dropped, channel)

    state = lane.state
    filled = metrics.nonce_fills.labels("sent")._value.get() == 1
    released = nonce in state.free or state.next == nonce
    assert not state.leases
    if mined_ahead:
        assert said == f"nonce {nonce} used on chain" and not released and not node.sent
    elif node.holds and channel == "mempool":
        assert filled and not released and len(node.sent) == 1
        assert said.startswith(f"nonce {nonce} filled by self-transfer 0x")
    else:
        assert said == f"nonce {nonce} released to the lane" and released and not node.sent
    assert state.next >= nonce  # nothing below `next` is lost: confirmed or free
