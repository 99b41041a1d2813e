"""The follower's Balancer fee changes: from the pool's event to the producer's message.

A weighted pool emits `SwapFeePercentageChanged` itself (not through the Vault), so the
event names the pool's address; the stream names Balancer pools by their 32-byte pool id,
whose first 20 bytes are that address. Like the producer, the fee sent is the one the
chain holds, not the event's value: the block's own state for a committed block, the
final tip's state for a reverted one. Fee changes of pools nobody follows are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from web3 import Web3

from exex_bridge.producers import chain_rpc as rpc
from exex_bridge.producers.log_decoding import DecodedLog, EventKind

__all__ = ["resolve_fee_changes"]


def resolve_fee_changes(
    w3: Web3, logs: Sequence[DecodedLog], tracked: frozenset[bytes], state_hash: str
) -> tuple[DecodedLog, ...]:
    """`logs` with every fee change of a tracked Balancer pool completed (pool id and the
    fee read at `state_hash`) and every other fee change left out."""
    changes = [entry for entry in logs if entry.kind is EventKind.BALANCER_FEE]
    if not changes:
        return tuple(logs)
    ids = {key[:20]: key for key in tracked if len(key) == 32}
    pools = sorted({entry.pool for entry in changes if entry.pool in ids})
    fees = dict(zip(pools, rpc.read_swap_fees(w3, pools, state_hash), strict=True))
    out: list[DecodedLog] = []
    for entry in logs:
        if entry.kind is not EventKind.BALANCER_FEE:
            out.append(entry)
        elif entry.pool in fees:
            out.append(entry.with_fee(ids[entry.pool], fees[entry.pool]))
    return tuple(out)
