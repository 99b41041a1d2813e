"""Seeded Balancer traffic on the anvil Vault: swaps, joins, exits and fee changes.

One block touches each pool at most once, so every operation is exact against the state
it was built from (the chain at a block), and a swap's `BalancerQueries` answer read
before the block is the swap's result in it. Amounts stay inside what the pools accept:
a swap's amount in is at most 25 % of the balance in (the pools refuse more than 30 %
after the fee), joins add up to 3 % of each balance, exits burn up to 5 % of the
deployer's pool tokens, swap fees stay within 0.0001 %..10 %.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final, Literal

from devchain.balancer_world import BalancerPool, BalancerWorld
from devchain.rpc import TxRequest, nonce_at

__all__ = ["BalancerOp", "BalancerTraffic", "OpKind"]

OpKind = Literal["swap", "join", "exit", "fee"]
_KINDS: Final[tuple[OpKind, ...]] = ("swap", "join", "exit", "fee")
_WEIGHTS: Final = (10, 3, 3, 1)
MIN_SWAP_FEE: Final = 10**12
MAX_SWAP_FEE: Final = 10**17


@dataclass(frozen=True, kw_only=True)
class BalancerOp:
    """One operation; `i`, `j`, `amount` describe a swap (token indices, raw amount in)."""

    kind: OpKind
    pool: BalancerPool
    tx: TxRequest
    i: int = -1
    j: int = -1
    amount: int = 0


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return float(low * (high / low) ** rng.random())


class BalancerTraffic:
    def __init__(self, world: BalancerWorld, seed: int) -> None:
        self.world = world
        self.rng = random.Random(seed)

    def build_block(self, block: int | str = "latest") -> list[BalancerOp]:
        """Operations for one block, exact against the chain at `block`."""
        rng, world = self.rng, self.world
        pools = rng.sample(world.pools, rng.randint(2, len(world.pools)))
        return [self._op(rng.choices(_KINDS, _WEIGHTS)[0], pool, block) for pool in pools]

    def _op(self, kind: OpKind, pool: BalancerPool, block: int | str) -> BalancerOp:
        rng, world = self.rng, self.world
        balances = world.balances(pool, block)
        if kind == "swap":
            i, j = rng.sample(range(len(pool.tokens)), 2)
            amount = max(1, int(balances[i] * _log_uniform(rng, 1e-9, 0.25)))
            tx = world.swap_tx(pool, i, j, amount)
            return BalancerOp(kind=kind, pool=pool, tx=tx, i=i, j=j, amount=amount)
        if kind == "join":
            amounts = [
                int(b * rng.uniform(1e-4, 0.03)) if rng.random() < 0.7 else 0 for b in balances
            ]
            if not any(amounts):
                amounts[0] = max(1, balances[0] // 100)
            return BalancerOp(kind=kind, pool=pool, tx=world.join_tx(pool, amounts))
        if kind == "exit":
            bpt = world.bpt_balance(pool, block)
            burned = max(1, int(bpt * rng.uniform(1e-3, 0.05)))
            return BalancerOp(kind=kind, pool=pool, tx=world.exit_tx(pool, burned))
        fee = int(_log_uniform(rng, MIN_SWAP_FEE, MAX_SWAP_FEE))
        return BalancerOp(kind=kind, pool=pool, tx=world.fee_tx(pool, fee))

    def numbered(self, ops: list[BalancerOp], block: int | str = "latest") -> list[TxRequest]:
        """The operations' transactions with the deployer's nonces from `block` on."""
        nonce = nonce_at(self.world.w3, self.world.deployer, block)
        return [
            TxRequest(
                sender=op.tx.sender,
                to=op.tx.to,
                data=op.tx.data,
                gas=op.tx.gas,
                nonce=nonce + k,
                label=op.tx.label,
            )
            for k, op in enumerate(ops)
        ]
