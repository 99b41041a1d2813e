"""The state of multi-coin pools (2..8 coins), journaled per block so reorgs revert it.

Curve StableSwap-NG and Balancer weighted pools do not fit the 52-byte record: they hold
one balance per coin and protocol parameters. Each such pool's state is one frozen
`CoinPoolState` value: its coins, their balances, and its protocol's parameters
(`CurveParams` or `WeightedParams`). Values are never changed in place; an update makes
a new value. So a block's pre-images are simply the values it replaced, kept by block,
and reverting the block puts them back, exactly.

Protocol-neutral API (the engine calls it from its block staging; pathfinding reads it):

- `CoinPoolStore.state(index)`: the current state of a pool, or None (unknown: a pool
  without a state is never quoted).
- `CoinPoolStore.set(index, state)`: hydration or resync; not journaled (the engine
  clears history when state stops being continuous).
- `CoinPoolStore.commit(block, states, undo)`: write a block's new states, keeping the
  values they replaced as the block's pre-images; pushes the step that takes it back on
  `undo` (the engine's list, run newest first if the block fails).
- `CoinPoolStore.revert(block, undo)`: put the block's pre-images back; returns the pools
  it restored, or None if the store holds nothing for that block (the caller marks the
  block's pools stale, and any pool with an update in the block but no pre-image).
- `CoinPoolStore.keep_newest(blocks)` / `drop_history()`: bound or clear the journal.
- `CoinPoolStore.exclude(index, reason)` / `exclusion(index)`: a pool hydration found
  the arena cannot model (tracked, never quoted, not hydrated again); `set` lifts it.
- `CoinPoolStore.clock`: the timestamp of the newest block committed (0 before any),
  put back by reverts: what time-dependent parameters (Curve's A ramp) are read at.

Protocol-specific folds of stream updates into new states live beside this module
(`arena/curve_updates.py` for Curve); a new protocol adds its own params struct and fold.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final, final

import msgspec

MIN_COINS: Final = 2
MAX_COINS: Final = 8


class CurveParams(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A Curve StableSwap-NG pool's parameters, as the contract stores them.

    `rates`: the stored rate multipliers, 10**(36 - decimals) per coin for plain coins.
    `fee`, `offpeg_fee_multiplier`: 1e10 precision. `initial_a`/`future_a`: A times
    A_PRECISION (100); `initial_a_time`/`future_a_time`: unix seconds of the A ramp.
    """

    rates: tuple[int, ...]
    fee: int
    offpeg_fee_multiplier: int
    initial_a: int
    future_a: int
    initial_a_time: int
    future_a_time: int


class WeightedParams(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A Balancer weighted pool's parameters: normalized weights and scaling factors
    (1e18 fixed point, one per coin), the swap fee (1e18 fixed point) and the pool
    contract's version."""

    weights: tuple[int, ...]
    scaling_factors: tuple[int, ...]
    swap_fee: int
    version: int


CoinPoolParams = CurveParams | WeightedParams


class CoinPoolState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One multi-coin pool: `coins` (20-byte addresses, the pool's order), `balances`
    (the amounts the pool's math uses, native units, same order) and its parameters."""

    coins: tuple[bytes, ...]
    balances: tuple[int, ...]
    params: CoinPoolParams

    def coin_index(self, coin: bytes) -> int | None:
        try:
            return self.coins.index(coin)
        except ValueError:
            return None


def shape_error(state: CoinPoolState) -> str | None:
    """Why `state` is not a well-formed multi-coin state, or None."""
    n = len(state.coins)
    if not MIN_COINS <= n <= MAX_COINS:
        return f"{n} coins (expected {MIN_COINS}..{MAX_COINS})"
    if len(state.balances) != n:
        return f"{len(state.balances)} balances for {n} coins"
    if any(b < 0 for b in state.balances):
        return "a negative balance"
    per_coin: tuple[tuple[int, ...], ...] = ()
    match state.params:
        case CurveParams(rates=rates):
            per_coin = (rates,)
        case WeightedParams(weights=weights, scaling_factors=factors):
            per_coin = (weights, factors)
    if any(len(values) != n for values in per_coin):
        return f"parameters for another coin count than {n}"
    return None


# pool -> the state a block replaced (None: the pool had no state before it)
_PreImages = dict[int, CoinPoolState | None]
# a journaled block: its pre-images and the clock before it
_Entry = tuple[_PreImages, int]


@final
class CoinPoolStore:
    """Multi-coin pool states by registry index, with each recent block's pre-images."""

    __slots__ = ("_excluded", "_journal", "_states", "clock")

    def __init__(self) -> None:
        self._states: dict[int, CoinPoolState] = {}
        self._excluded: dict[int, str] = {}
        self._journal: OrderedDict[int, _Entry] = OrderedDict()
        self.clock = 0

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, index: int) -> bool:
        return index in self._states

    def state(self, index: int) -> CoinPoolState | None:
        return self._states.get(index)

    def states(self) -> Mapping[int, CoinPoolState]:
        """A read-only view of every known state (do not hold it across blocks)."""
        return self._states

    def set(self, index: int, state: CoinPoolState) -> None:
        """Hydration or resync: the pool's whole state, outside any block's journal.

        Raises ValueError for a malformed state (nothing written)."""
        bad = shape_error(state)
        if bad is not None:
            raise ValueError(f"pool {index}: {bad}")
        self._states[index] = state
        self._excluded.pop(index, None)

    def exclude(self, index: int, reason: str) -> bool:
        """Exclude a pool (its state is dropped); False if it already was, for `reason`."""
        self._states.pop(index, None)
        if self._excluded.get(index) == reason:
            return False
        self._excluded[index] = reason
        return True

    def exclusion(self, index: int) -> str | None:
        return self._excluded.get(index)

    def forget(self, index: int) -> None:
        self._states.pop(index, None)

    def commit(
        self,
        block: int,
        states: Mapping[int, CoinPoolState],
        undo: list[Callable[[], object]],
        *,
        timestamp: int,
    ) -> None:
        """Write a block's new states, keeping what they replace as the block's pre-images;
        the clock moves to the block's `timestamp`.

        A block already journaled (re-applied after a revert) replaces its entry. Pushes
        the step that puts everything back on `undo`."""
        current = self._states
        entry: _Entry = ({index: current.get(index) for index in states}, self.clock)
        replaced = self._journal.get(block)
        undo.append(lambda: self._undo_commit(block, entry, replaced))
        current.update(states)
        self._journal[block] = entry
        self._journal.move_to_end(block)
        self.clock = timestamp

    def revert(self, block: int, undo: list[Callable[[], object]]) -> frozenset[int] | None:
        """Put back the states `block` replaced; returns the pools restored, or None if
        its pre-images are not held (nothing changes then). Pushes the step that
        re-applies the block on `undo`."""
        entry = self._journal.get(block)
        if entry is None:
            return None
        pre, clock = entry
        current = self._states
        after: _Entry = ({index: current.get(index) for index in pre}, self.clock)
        undo.append(lambda: self._undo_revert(block, entry, after))
        _put(current, pre)
        self.clock = clock
        del self._journal[block]
        return frozenset(pre)

    def journaled(self, block: int) -> bool:
        return block in self._journal

    def keep_newest(self, blocks: int) -> None:
        """Forget the pre-images of all but the newest `blocks` journaled blocks."""
        while len(self._journal) > blocks:
            self._journal.popitem(last=False)

    def drop_history(self) -> None:
        self._journal.clear()

    def _undo_commit(self, block: int, entry: _Entry, replaced: _Entry | None) -> None:
        _put(self._states, entry[0])
        self.clock = entry[1]
        if replaced is None:
            self._journal.pop(block, None)
        else:
            self._journal[block] = replaced

    def _undo_revert(self, block: int, entry: _Entry, after: _Entry) -> None:
        _put(self._states, after[0])
        self.clock = after[1]
        self._journal[block] = entry
        self._journal.move_to_end(block)


def _put(states: dict[int, CoinPoolState], values: _PreImages) -> None:
    for index, value in values.items():
        if value is None:
            states.pop(index, None)
        else:
            states[index] = value
