"""V4 pool state read from a node's JSON-RPC at one block: slot0, liquidity, every tick.

A V4 pool lives inside its PoolManager, so it is read either through a `StateView` lens
(v4-periphery: `getSlot0`, `getLiquidity`, `getTickBitmap`, `getTickInfo`) or, for nodes
without one, straight from the PoolManager's storage with `extsload`
(`exex_bridge.v4_storage` holds the slots). Both give the same numbers; the same three
rounds as V3 hydration (heads, every bitmap word the pool's spacing can use, every
initialized tick), every call pinned to one block.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final, final

import msgspec
from eth_hash.auto import keccak  # not eth_utils: its import pulls in pydantic

from arena.hydration import (
    DEFAULT_BATCH_SIZE,
    BlockRef,
    HydrationError,
    NodeRpc,
    _Caller,
    initialized_ticks,
    resolve_block_number,
    word_range,
)
from exex_bridge import v4_storage as slots

log = logging.getLogger(__name__)

__all__ = ["V4Pool", "V4PoolSnapshot", "hydrate_v4_pools"]


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


_GET_SLOT0: Final = _selector("getSlot0(bytes32)")
_GET_LIQUIDITY: Final = _selector("getLiquidity(bytes32)")
_GET_TICK_BITMAP: Final = _selector("getTickBitmap(bytes32,int16)")
_GET_TICK_INFO: Final = _selector("getTickInfo(bytes32,int24)")


@final
class V4Pool(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What locates a V4 pool's state: its id, PoolManager and tick spacing."""

    pool_id: bytes
    pool_manager: bytes
    tick_spacing: int


@final
class V4PoolSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    pool_id: str
    block: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    protocol_fee: int
    lp_fee: int
    tick_spacing: int
    # Every initialized tick: tick -> (liquidityNet, liquidityGross).
    ticks: dict[int, tuple[int, int]]


def _int(data: bytes, index: int = 0, *, signed: bool = False) -> int:
    return int.from_bytes(data[32 * index : 32 * index + 32], "big", signed=signed)


def _arg(value: int) -> bytes:
    return value.to_bytes(32, "big", signed=True)


class _Reader:
    """The calls of one way of reading: (to, calldata, method) and how to decode them."""

    def __init__(self, state_view: str | None) -> None:
        self.state_view = state_view

    def head_calls(self, pool: V4Pool) -> list[tuple[str, bytes, str]]:
        pid = pool.pool_id
        if self.state_view is not None:
            return [
                (self.state_view, _GET_SLOT0 + pid, "getSlot0"),
                (self.state_view, _GET_LIQUIDITY + pid, "getLiquidity"),
            ]
        to = "0x" + pool.pool_manager.hex()
        return [
            (to, slots.extsload_call(slots.slot0_slot(pid)), "extsload(slot0)"),
            (to, slots.extsload_call(slots.liquidity_slot(pid)), "extsload(liquidity)"),
        ]

    def head(self, slot0: bytes, liquidity: bytes) -> tuple[slots.V4Slot0, int]:
        if self.state_view is not None:
            head = slots.V4Slot0(
                _int(slot0, 0), _int(slot0, 1, signed=True), _int(slot0, 2), _int(slot0, 3)
            )
            return head, _int(liquidity)
        return slots.decode_slot0(_int(slot0)), _int(liquidity) & ((1 << 128) - 1)

    def bitmap_call(self, pool: V4Pool, word_pos: int) -> tuple[str, bytes, str]:
        if self.state_view is not None:
            data = _GET_TICK_BITMAP + pool.pool_id + _arg(word_pos)
            return self.state_view, data, "getTickBitmap"
        slot = slots.bitmap_slot(pool.pool_id, word_pos)
        return "0x" + pool.pool_manager.hex(), slots.extsload_call(slot), "extsload(bitmap)"

    def tick_call(self, pool: V4Pool, tick: int) -> tuple[str, bytes, str]:
        if self.state_view is not None:
            return self.state_view, _GET_TICK_INFO + pool.pool_id + _arg(tick), "getTickInfo"
        slot = slots.tick_slot(pool.pool_id, tick)
        return "0x" + pool.pool_manager.hex(), slots.extsload_call(slot), "extsload(tick)"

    def tick(self, data: bytes) -> tuple[int, int]:
        if self.state_view is not None:
            return _int(data, 1, signed=True), _int(data, 0)
        return slots.decode_tick_info(_int(data))


def hydrate_v4_pools(
    w3: NodeRpc,
    pools: Sequence[V4Pool],
    block: BlockRef,
    *,
    state_view: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[V4PoolSnapshot]:
    """Snapshots of `pools` at `block`, in order: through the StateView at `state_view`,
    or through each PoolManager's `extsload` when it is None."""
    caller = _Caller(w3, block, batch_size)
    reader = _Reader(state_view)
    number = resolve_block_number(w3, block)
    for pool in pools:
        if pool.tick_spacing <= 0:
            raise HydrationError("0x" + pool.pool_id.hex(), "tick_spacing", pool.tick_spacing)
    results = iter(caller.call_many([c for p in pools for c in reader.head_calls(p)]))
    heads = [reader.head(next(results), next(results)) for _ in pools]
    words = iter(
        caller.call_many(
            [reader.bitmap_call(p, w) for p in pools for w in word_range(p.tick_spacing)]
        )
    )
    tick_calls: list[tuple[str, bytes, str]] = []
    owners: list[tuple[int, int]] = []
    for n, pool in enumerate(pools):
        for word_pos in word_range(pool.tick_spacing):
            for tick in initialized_ticks(word_pos, _int(next(words)), pool.tick_spacing):
                tick_calls.append(reader.tick_call(pool, tick))
                owners.append((n, tick))
    maps: list[dict[int, tuple[int, int]]] = [{} for _ in pools]
    for (n, tick), data in zip(owners, caller.call_many(tick_calls), strict=True):
        maps[n][tick] = reader.tick(data)
    log.debug("hydrated %d V4 pools at block %d: %d ticks", len(pools), number, len(owners))
    return [
        V4PoolSnapshot(
            pool_id="0x" + pool.pool_id.hex(),
            block=number,
            sqrt_price_x96=head.sqrt_price_x96,
            tick=head.tick,
            liquidity=liquidity,
            protocol_fee=head.protocol_fee,
            lp_fee=head.lp_fee,
            tick_spacing=pool.tick_spacing,
            ticks=ticks,
        )
        for pool, (head, liquidity), ticks in zip(pools, heads, maps, strict=True)
    ]
