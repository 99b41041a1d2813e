"""The node reads of the chain follower: heads, a block's logs, and reorg finals.

Plain JSON-RPC through a web3 HTTP provider (synchronous; the follower calls it from a
worker thread). Finals are read in one JSON-RPC batch pinned to the final tip's hash
(EIP-1898), so every pool's final comes from the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from web3 import HTTPProvider, Web3
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from exex_bridge import messages as m
from exex_bridge.errors import BridgeError
from exex_bridge.v4_storage import decode_slot0, extsload_call, liquidity_slot, slot0_slot

_GET_RESERVES: Final = bytes.fromhex("0902f1ac")
_SLOT0: Final = bytes.fromhex("3850c7bd")
_LIQUIDITY: Final = bytes.fromhex("1a686502")
_BATCH: Final = 500


class FollowerRpcError(BridgeError):
    """A node call of the follower failed or answered something unusable."""

    def __init__(self, method: str, detail: object) -> None:
        self.method = method
        self.detail = detail
        super().__init__(f"{method}: {detail}")


@dataclass(frozen=True, slots=True)
class Header:
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    base_fee_per_gas: int


def connect(rpc: Web3 | str, timeout_s: float = 30.0) -> Web3:
    if isinstance(rpc, Web3):
        return rpc
    return Web3(HTTPProvider(rpc, request_kwargs={"timeout": timeout_s}))


def _request(w3: Web3, method: str, params: Sequence[Any]) -> Any:
    response = w3.provider.make_request(cast(RPCEndpoint, method), list(params))
    if "error" in response:
        raise FollowerRpcError(method, response["error"])
    return response.get("result")


def block_number(w3: Web3) -> int:
    return int(str(_request(w3, "eth_blockNumber", [])), 16)


def header(w3: Web3, number: int) -> Header | None:
    """The canonical header at `number`, None if the node has no such block (yet)."""
    raw = _request(w3, "eth_getBlockByNumber", [hex(number), False])
    if raw is None:
        return None
    return Header(
        number=int(raw["number"], 16),
        hash=str(raw["hash"]).lower(),
        parent_hash=str(raw["parentHash"]).lower(),
        timestamp=int(raw["timestamp"], 16),
        base_fee_per_gas=int(raw.get("baseFeePerGas") or "0x0", 16),
    )


def block_logs(w3: Web3, block_hash: str) -> list[dict[str, Any]]:
    """Every log of the block (no filter: receipt-local log indexes need them all)."""
    logs = _request(w3, "eth_getLogs", [{"blockHash": block_hash}])
    if not isinstance(logs, list):
        raise FollowerRpcError("eth_getLogs", f"unexpected answer {logs!r}")
    for log in logs:
        if str(log.get("blockHash", block_hash)).lower() != block_hash:
            raise FollowerRpcError("eth_getLogs", f"log of another block for {block_hash}")
    return cast(list[dict[str, Any]], logs)


def _word(data: bytes, index: int, *, signed: bool = False) -> int:
    return int.from_bytes(data[32 * index : 32 * index + 32], "big", signed=signed)


def _call_batch(w3: Web3, calls: Sequence[tuple[bytes, bytes]], block_hash: str) -> list[bytes]:
    provider = w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise FollowerRpcError("eth_call", f"{type(provider).__name__} cannot batch")
    block = {"blockHash": block_hash, "requireCanonical": True}
    out: list[bytes] = []
    for start in range(0, len(calls), _BATCH):
        chunk = calls[start : start + _BATCH]
        requests = [
            (
                cast(RPCEndpoint, "eth_call"),
                [{"to": "0x" + to.hex(), "data": "0x" + data.hex()}, block],
            )
            for to, data in chunk
        ]
        responses = provider.make_batch_request(requests)
        if not isinstance(responses, list):
            raise FollowerRpcError("eth_call", responses.get("error", responses))
        for (to, _), response in zip(chunk, responses, strict=True):
            if "error" in response:
                raise FollowerRpcError("eth_call", f"0x{to.hex()}: {response['error']}")
            data = bytes.fromhex(str(response.get("result", "0x"))[2:])
            if len(data) < 32:
                raise FollowerRpcError("eth_call", f"0x{to.hex()}: short answer {data.hex()}")
            out.append(data)
    return out


def read_finals(
    w3: Web3,
    v2_pools: Sequence[bytes],
    v3_pools: Sequence[bytes],
    block_hash: str,
    v4_pools: Sequence[tuple[bytes, bytes]] = (),
) -> list[m.ReorgEpilogueUpdate]:
    """`V2ReservesFinal` for each V2 pair, then `Slot0Final` for each V3 pool, then for
    each V4 pool ((pool id, PoolManager) pairs: its storage words through `extsload`)."""
    calls = [(p, _GET_RESERVES) for p in v2_pools]
    for pool in v3_pools:
        calls += [(pool, _SLOT0), (pool, _LIQUIDITY)]
    for pool_id, manager in v4_pools:
        calls += [
            (manager, extsload_call(slot0_slot(pool_id))),
            (manager, extsload_call(liquidity_slot(pool_id))),
        ]
    results = iter(_call_batch(w3, calls, block_hash))
    finals: list[m.ReorgEpilogueUpdate] = []
    for pool in v2_pools:
        data = next(results)
        finals.append(
            m.V2ReservesFinal(
                pool_id=m.PoolAddress(value=pool), reserve0=_word(data, 0), reserve1=_word(data, 1)
            )
        )
    for pool in v3_pools:
        slot0, liquidity = next(results), next(results)
        state = m.Slot0State(
            sqrt_price_x96=_word(slot0, 0),
            liquidity=_word(liquidity, 0),
            tick=_word(slot0, 1, signed=True),
        )
        finals.append(
            m.Slot0Final(
                pool_id=m.PoolAddress(value=pool), protocol=m.Protocol.UNISWAP_V3, state=state
            )
        )
    for pool_id, _ in v4_pools:
        head = decode_slot0(_word(next(results), 0))
        state = m.Slot0State(
            sqrt_price_x96=head.sqrt_price_x96,
            liquidity=_word(next(results), 0) & ((1 << 128) - 1),
            tick=head.tick,
        )
        finals.append(
            m.Slot0Final(
                pool_id=m.V4PoolId(value=pool_id), protocol=m.Protocol.UNISWAP_V4, state=state
            )
        )
    return finals


_SWAP_FEE_PERCENTAGE: Final = bytes.fromhex("55c67628")  # getSwapFeePercentage()


def read_swap_fees(w3: Web3, pools: Sequence[bytes], block_hash: str) -> list[int]:
    """Each Balancer pool's `getSwapFeePercentage()` in the state of `block_hash`."""
    if not pools:
        return []
    return [
        _word(data, 0)
        for data in _call_batch(w3, [(p, _SWAP_FEE_PERCENTAGE) for p in pools], block_hash)
    ]


# Curve StableSwap-NG storage, as the producer reads it (`read_curve_stable_liquidity_state`):
# slot 1 the coin count (stored balances' length), 2 + i stored balances, 17 + i admin
# balances, 10..15 fee, offpeg multiplier, initial_A, future_A, initial_A_time, future_A_time.
_CURVE_COUNT: Final = 1
_CURVE_PARAMS: Final = (10, 11, 12, 13, 14, 15)
_CURVE_MAX_COINS: Final = 8
_U64: Final = (1 << 64) - 1
_U128: Final = (1 << 128) - 1


def _storage_batch(w3: Web3, reads: Sequence[tuple[bytes, int]], block_hash: str) -> list[int]:
    provider = w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise FollowerRpcError("eth_getStorageAt", f"{type(provider).__name__} cannot batch")
    block = {"blockHash": block_hash, "requireCanonical": True}
    out: list[int] = []
    for start in range(0, len(reads), _BATCH):
        chunk = reads[start : start + _BATCH]
        requests = [
            (cast(RPCEndpoint, "eth_getStorageAt"), ["0x" + to.hex(), hex(slot), block])
            for to, slot in chunk
        ]
        responses = provider.make_batch_request(requests)
        if not isinstance(responses, list):
            raise FollowerRpcError("eth_getStorageAt", responses.get("error", responses))
        for (to, _), response in zip(chunk, responses, strict=True):
            if "error" in response:
                raise FollowerRpcError("eth_getStorageAt", f"0x{to.hex()}: {response['error']}")
            out.append(int(str(response.get("result", "0x0")), 16))
    return out


def read_curve_states(
    w3: Web3, pools: Sequence[bytes], block_hash: str
) -> dict[bytes, m.CurveLiquidity]:
    """Each Curve pool's `CurveLiquidity` at the end of the block: what the producer sends
    for its swaps and liquidity events (values saturated to u128/u64 as it does)."""
    heads = _storage_batch(
        w3, [(p, s) for p in pools for s in (_CURVE_COUNT, *_CURVE_PARAMS)], block_hash
    )
    counts = [min(heads[7 * k], _CURVE_MAX_COINS) for k in range(len(pools))]
    reads = [
        (p, base + i)
        for p, n in zip(pools, counts, strict=True)
        for i in range(n)
        for base in (2, 17)
    ]
    balances = iter(_storage_batch(w3, reads, block_hash))
    out = {}
    for k, (pool, n) in enumerate(zip(pools, counts, strict=True)):
        effective = []
        for _ in range(n):
            stored, admin = min(next(balances), _U128), min(next(balances), _U128)
            effective.append(max(0, stored - admin))
        fee, offpeg, a0, a1, t0, t1 = (min(v, _U64) for v in heads[7 * k + 1 : 7 * k + 7])
        out[pool] = m.CurveLiquidity(
            effective_balances=tuple(effective),
            fee=fee,
            offpeg_fee_multiplier=offpeg,
            initial_a=a0,
            future_a=a1,
            initial_a_time=t0,
            future_a_time=t1,
        )
    return out
