"""Pool state read from a node's JSON-RPC at one block: V2 reserves, V3 slot0 and tick maps.

Batched as raw JSON-RPC batches of `eth_call` sent through `make_batch_request` of the
web3 HTTP provider or of the pooled client's `exex_bridge.rpc.BlockingRpc` (one round
trip per chunk of `batch_size` calls), every call
pinned to the same block, by number or by hash (EIP-1898, `requireCanonical`), so a snapshot
never mixes two blocks. Three rounds for any number of pools: slot0/liquidity/tickSpacing
and getReserves; every tick bitmap word of the V3 pools; every initialized tick.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, Literal, cast

import msgspec
from web3 import Web3
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from exex_bridge.rpc.blocking import JsonRpcProvider

log = logging.getLogger(__name__)

MIN_TICK: Final = -887272
MAX_TICK: Final = 887272
DEFAULT_BATCH_SIZE: Final = 500

_GET_RESERVES: Final = bytes.fromhex("0902f1ac")
_SLOT0: Final = bytes.fromhex("3850c7bd")
_LIQUIDITY: Final = bytes.fromhex("1a686502")
_TICK_SPACING: Final = bytes.fromhex("d0c93a7c")
_TICK_BITMAP: Final = bytes.fromhex("5339c296")  # tickBitmap(int16)
_TICKS: Final = bytes.fromhex("f30dba93")  # ticks(int24)

PoolKind = Literal["v2", "v3"]
BlockRef = int | str  # a block number, or a 0x block hash


NodeRpc = Web3 | JsonRpcProvider


def batch_provider(rpc: NodeRpc) -> JsonRpcProvider:
    """What sends the JSON-RPC (batches) of `rpc`: itself, or a web3 instance's provider."""
    if not isinstance(rpc, Web3):
        return rpc
    if not isinstance(rpc.provider, JSONBaseProvider):
        raise HydrationError("-", "batch", f"{type(rpc.provider).__name__} cannot batch")
    return rpc.provider


class HydrationError(Exception):
    """An RPC call of the hydration failed or answered something unreadable."""

    def __init__(self, pool: str, method: str, detail: object) -> None:
        super().__init__(f"hydrating {pool}: {method}: {detail}")
        self.pool = pool
        self.method = method
        self.detail = detail


class V2PoolSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    block: int
    reserve0: int
    reserve1: int


class V3PoolSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    address: str
    block: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    tick_spacing: int
    # Every initialized tick: tick -> (liquidityNet, liquidityGross).
    ticks: dict[int, tuple[int, int]]


PoolSnapshot = V2PoolSnapshot | V3PoolSnapshot


def _word(data: bytes, index: int, *, signed: bool = False) -> int:
    return int.from_bytes(data[32 * index : 32 * index + 32], "big", signed=signed)


def _int_arg(value: int) -> bytes:
    return value.to_bytes(32, "big", signed=True)


def word_range(tick_spacing: int) -> range:
    """Every tick bitmap word position a pool with this spacing can use, and no other.

    Usable ticks are the multiples of the spacing inside [MIN_TICK, MAX_TICK]; the
    compressed tick (tick / spacing) sits in word `compressed >> 8` (arithmetic shift).
    """
    lowest = -(-MIN_TICK // tick_spacing)
    highest = MAX_TICK // tick_spacing
    return range(lowest >> 8, (highest >> 8) + 1)


def initialized_ticks(word_pos: int, word: int, tick_spacing: int) -> list[int]:
    ticks = []
    while word:
        low = word & -word
        bit = low.bit_length() - 1
        ticks.append(((word_pos << 8) + bit) * tick_spacing)
        word ^= low
    return ticks


class _Caller:
    def __init__(self, w3: NodeRpc, block: BlockRef, batch_size: int) -> None:
        self.provider = batch_provider(w3)
        self.batch_size = batch_size
        self.block_param: object
        if isinstance(block, int):
            self.block_param = hex(block)
        else:
            self.block_param = {"blockHash": block, "requireCanonical": True}

    def call_many(self, calls: Sequence[tuple[str, bytes, str]]) -> list[bytes]:
        """`calls` are (pool, calldata, method name for errors); results in the same order."""
        out: list[bytes] = []
        for start in range(0, len(calls), self.batch_size):
            chunk = calls[start : start + self.batch_size]
            requests = [
                (
                    cast(RPCEndpoint, "eth_call"),
                    [{"to": to, "data": "0x" + data.hex()}, self.block_param],
                )
                for to, data, _ in chunk
            ]
            responses = self.provider.make_batch_request(requests)
            if not isinstance(responses, list):
                pool, _, method = chunk[0]
                raise HydrationError(pool, method, responses.get("error", responses))
            for (pool, _, method), response in zip(chunk, responses, strict=True):
                out.append(self._result(pool, method, response))
        return out

    @staticmethod
    def _result(pool: str, method: str, response: Any) -> bytes:
        if "error" in response:
            raise HydrationError(pool, method, response["error"])
        data = bytes.fromhex(str(response.get("result", "0x"))[2:])
        if not data:
            raise HydrationError(pool, method, "empty result (no contract at this block?)")
        return data


def resolve_block_number(w3: NodeRpc, block: BlockRef) -> int:
    if isinstance(block, int):
        return block
    response = batch_provider(w3).make_request(
        cast(RPCEndpoint, "eth_getBlockByHash"), [block, False]
    )
    header = response.get("result")
    if not header:
        raise HydrationError("-", "eth_getBlockByHash", response.get("error", "unknown block"))
    return int(header["number"], 16)


_Head = tuple[str, PoolKind, tuple[int, ...]]


def _heads(caller: _Caller, pools: Sequence[tuple[str, PoolKind]]) -> list[_Head]:
    """Round one: getReserves for V2; slot0, liquidity and tickSpacing for V3."""
    calls: list[tuple[str, bytes, str]] = []
    for address, kind in pools:
        if kind == "v2":
            calls.append((address, _GET_RESERVES, "getReserves"))
        else:
            calls += [
                (address, _SLOT0, "slot0"),
                (address, _LIQUIDITY, "liquidity"),
                (address, _TICK_SPACING, "tickSpacing"),
            ]
    results = iter(caller.call_many(calls))
    heads: list[_Head] = []
    for address, kind in pools:
        if kind == "v2":
            data = next(results)
            heads.append((address, kind, (_word(data, 0), _word(data, 1))))
        else:
            slot0, liquidity, spacing = next(results), next(results), next(results)
            heads.append(
                (
                    address,
                    kind,
                    (
                        _word(slot0, 0),
                        _word(slot0, 1, signed=True),
                        _word(liquidity, 0),
                        _word(spacing, 0, signed=True),
                    ),
                )
            )
    return heads


def hydrate_pools(
    w3: NodeRpc,
    pools: Sequence[tuple[str, PoolKind]],
    block: BlockRef,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[PoolSnapshot]:
    """Snapshots of `pools` ((address, "v2"|"v3") pairs) at `block`, in the same order."""
    caller = _Caller(w3, block, batch_size)
    number = resolve_block_number(w3, block)
    heads = _heads(caller, pools)
    tick_maps = _tick_maps(caller, [(a, h[3]) for a, k, h in heads if k == "v3"])
    snapshots: list[PoolSnapshot] = []
    for address, kind, head in heads:
        if kind == "v2":
            snapshots.append(
                V2PoolSnapshot(address=address, block=number, reserve0=head[0], reserve1=head[1])
            )
        else:
            snapshots.append(
                V3PoolSnapshot(
                    address=address,
                    block=number,
                    sqrt_price_x96=head[0],
                    tick=head[1],
                    liquidity=head[2],
                    tick_spacing=head[3],
                    ticks=tick_maps[address],
                )
            )
    return snapshots


def _tick_maps(
    caller: _Caller, pools: Sequence[tuple[str, int]]
) -> dict[str, dict[int, tuple[int, int]]]:
    word_calls = []
    for address, spacing in pools:
        if spacing <= 0:
            raise HydrationError(address, "tickSpacing", f"invalid spacing {spacing}")
        word_calls += [
            (address, _TICK_BITMAP + _int_arg(w), "tickBitmap") for w in word_range(spacing)
        ]
    words = iter(caller.call_many(word_calls))
    tick_calls: list[tuple[str, bytes, str]] = []
    owners: list[tuple[str, int]] = []
    for address, spacing in pools:
        for word_pos in word_range(spacing):
            for tick in initialized_ticks(word_pos, _word(next(words), 0), spacing):
                tick_calls.append((address, _TICKS + _int_arg(tick), "ticks"))
                owners.append((address, tick))
    maps: dict[str, dict[int, tuple[int, int]]] = {address: {} for address, _ in pools}
    for (address, tick), data in zip(owners, caller.call_many(tick_calls), strict=True):
        maps[address][tick] = (_word(data, 1, signed=True), _word(data, 0))
    log.debug(
        "hydrated %d V3 pools: %d bitmap words, %d ticks",
        len(pools),
        len(word_calls),
        len(tick_calls),
    )
    return maps


def hydrate_v2(w3: NodeRpc, address: str, block: BlockRef) -> V2PoolSnapshot:
    (snapshot,) = hydrate_pools(w3, [(address, "v2")], block)
    return cast(V2PoolSnapshot, snapshot)


def hydrate_v3(w3: NodeRpc, address: str, block: BlockRef) -> V3PoolSnapshot:
    (snapshot,) = hydrate_pools(w3, [(address, "v3")], block)
    return cast(V3PoolSnapshot, snapshot)
