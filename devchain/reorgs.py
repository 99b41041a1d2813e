"""Reorgs and reverts on anvil 1.7.1, checked rather than assumed.

What anvil does (measured on 1.7.1): `anvil_reorg` takes positional params
`[depth, [[tx, offset], ...]]`, each tx either a transaction-request object (the node signs
for its dev accounts; a missing nonce is filled from the state at the fork) or raw signed
bytes; `offset` 0 is the first block after the common ancestor. It drops the last `depth`
blocks and mines exactly `depth` new ones, so the tip number stays; the dropped
transactions do not return to the pool. A replaced block gets a new hash even with the
same contents while the base fee is not at its floor (the base fee is not rewound); once
it sits at its floor (7 wei), an empty block replacing an empty one at the same height and
timestamp is the same block, hash included. `anvil_rollback [depth]` (null = 1) drops
blocks without replacing them. Neither emits removed logs: `eth_getFilterChanges` on a log
filter returns only the new blocks' logs with `removed: false`, and `eth_getLogs` shows the
canonical chain only. Over a websocket, `newHeads` re-announces the replaced heights with
their new hashes and the `logs` subscription sends only the new logs; a rollback sends
nothing at all, the next mined block simply reappears at a lower height. A follower must
therefore detect reorgs from block hashes (parentHash of each new head against its own
record). `evm_revert` and reorgs do not rewind anvil's base fee, so the same traffic after
a rewind gets other block hashes (fresh nodes with the same seed get identical ones).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3

from devchain.errors import DevchainError, TransactionFailedError
from devchain.rpc import TxRequest, block_header, block_number, receipts, rpc_call
from devchain.traffic import TrafficGenerator

log = logging.getLogger(__name__)


class ReorgDepthError(DevchainError):
    def __init__(self, depth: int, available: int) -> None:
        super().__init__(f"reorg depth {depth} outside 1..{available}")
        self.depth = depth
        self.available = available


@dataclass(frozen=True, kw_only=True)
class ReorgOutcome:
    """`old_hashes`/`new_hashes` cover blocks fork_block+1 .. (new_hashes: after the change)."""

    depth: int
    fork_block: int
    old_hashes: tuple[str, ...]
    new_hashes: tuple[str, ...]
    tip: int


def canonical_hashes(w3: Web3, first: int, last: int) -> tuple[str, ...]:
    return tuple(str(block_header(w3, n)["hash"]) for n in range(first, last + 1))


def _check_depth(w3: Web3, depth: int, floor: int) -> int:
    tip = block_number(w3)
    if not 1 <= depth <= tip - floor:
        raise ReorgDepthError(depth, tip - floor)
    return tip


def reorg(
    w3: Web3, depth: int, replacement: Sequence[tuple[TxRequest, int]] = (), floor: int = 0
) -> ReorgOutcome:
    """Replaces the last `depth` blocks; `replacement` puts txs at block offsets 0..depth-1.

    Every replacement transaction must be mined and succeed. `floor` is the lowest block
    that may become the common ancestor (e.g. the deployment block).
    """
    tip = _check_depth(w3, depth, floor)
    for _, offset in replacement:
        if not 0 <= offset < depth:
            raise ReorgDepthError(offset, depth - 1)
    fork = tip - depth
    old = canonical_hashes(w3, fork + 1, tip)
    pairs = [[tx.to_json(), offset] for tx, offset in replacement]
    rpc_call(w3, "anvil_reorg", [depth, pairs])
    new_tip = block_number(w3)
    new = canonical_hashes(w3, fork + 1, new_tip)
    _check_replacement(w3, fork, new_tip, replacement)
    log.info("reorg depth %d at fork %d: %d replacement txs", depth, fork, len(replacement))
    return ReorgOutcome(depth=depth, fork_block=fork, old_hashes=old, new_hashes=new, tip=new_tip)


def _check_replacement(
    w3: Web3, fork: int, tip: int, replacement: Sequence[tuple[TxRequest, int]]
) -> None:
    mined: list[str] = []
    for number in range(fork + 1, tip + 1):
        mined += [str(h) for h in block_header(w3, number)["transactions"]]
    if len(mined) != len(replacement):
        raise TransactionFailedError(
            "-", f"{len(replacement)} replacement txs, {len(mined)} mined", None
        )
    for tx_hash, receipt in zip(mined, receipts(w3, mined), strict=True):
        if receipt.get("status") != "0x1":
            raise TransactionFailedError(tx_hash, "replacement tx", receipt)


def rollback(w3: Web3, depth: int, floor: int = 0) -> ReorgOutcome:
    """Drops the last `depth` blocks without replacement (a plain revert)."""
    tip = _check_depth(w3, depth, floor)
    fork = tip - depth
    old = canonical_hashes(w3, fork + 1, tip)
    rpc_call(w3, "anvil_rollback", [depth])
    new_tip = block_number(w3)
    if new_tip != fork:
        raise DevchainError(f"anvil_rollback {depth} from {tip} left tip {new_tip}")
    return ReorgOutcome(depth=depth, fork_block=fork, old_hashes=old, new_hashes=(), tip=new_tip)


def reorg_with_traffic(
    generator: TrafficGenerator, depth: int, rng: random.Random | None = None
) -> ReorgOutcome:
    """A reorg whose replacement blocks hold fresh seeded traffic built from the fork state."""
    w3, deployment = generator.w3, generator.deployment
    tip = _check_depth(w3, depth, deployment.block)
    draw = rng or generator.rng
    view = generator.load_view(tip - depth)
    # Prices may move in any replacement block, so price limits are only set on pools the
    # view still knows exactly (ChainView.moved persists across these blocks).
    replacement = [
        (tx, offset) for offset in range(depth) for tx in generator.build_block(draw, view)
    ]
    return reorg(w3, depth, replacement, floor=deployment.block)
