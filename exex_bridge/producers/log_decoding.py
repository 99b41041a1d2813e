"""Decode a block's Uniswap V2/V3/V4 and Curve StableSwap-NG logs (JSON-RPC form) into the
producer's pool updates.

Mirrors the upstream ExEx (`Sgas17/reth-exex-liquidity` at 2ea87a6, `src/events.rs`
`decode_log` and `src/main.rs` `create_pool_update`):

- the event kind comes from the log's `topic0`, not from the whitelist entry;
- V2 `Sync` becomes `V2Sync` (absolute reserves, `UpdateType.SWAP`), and only in committed
  blocks: a reverted block carries no V2 update. V2 `Swap`/`Mint`/`Burn` produce nothing
  but count as touching the pair (its reserves final after a reorg);
- V3 `Swap` becomes `V3Swap(sqrt_price_x96, liquidity, tick)`; `Mint` becomes
  `V3Liquidity(+amount)` with `UpdateType.MINT`, `Burn` `V3Liquidity(-amount)` with
  `UpdateType.BURN` — a zero-amount burn (the position manager's fee "poke" in `collect`)
  is sent too, as a zero delta;
- V4 `Swap` and `ModifyLiquidity` (the PoolManager's) are keyed by the pool id in
  `topics[1]`, whichever contract emitted them, and filtered by tracked pool id; `Swap`
  becomes `V4Swap`, `ModifyLiquidity` `V4Liquidity(liquidityDelta)` with `UpdateType.MINT`
  when the delta is positive and `UpdateType.BURN` otherwise (zero included), the delta
  saturated to ±(2**127 - 1) as the producer does;
- Balancer V2 (`src/events.rs`, the Vault section): the Vault's `Swap` becomes
  `BalancerSwap` (`UpdateType.SWAP`) and its `PoolBalanceChanged` (joins and exits)
  `BalancerLiquidity` (`UpdateType.MINT` for both), keyed by the 32-byte pool id and only
  when emitted by the Vault; each int256 delta is clamped to ±(2^127 − 1) as the producer
  does, and the event's protocol fee amounts are dropped (the deltas do not include them).
  A pool's `SwapFeePercentageChanged` (matched by signature, any emitter) becomes a
  `BalancerFeeUpdate` whose fee the follower reads from the chain (`with_fee`): the
  producer sends the absolute fee of the block's state, not the event's value;
- Curve StableSwap-NG `TokenExchange` (update type Swap) and `AddLiquidity`,
  `RemoveLiquidity`, `RemoveLiquidityOne`, `RemoveLiquidityImbalance` (update type Mint)
  become `CurveLiquidity`, the pool's state read from storage at the end of the block:
  the log alone carries no payload (`EventKind.CURVE_STATE`), the follower reads it
  (`chain_rpc.read_curve_states`). `RampA` becomes `CurveRampA` and `ApplyNewFee`
  `CurveFeeUpdate` (update type Swap), from the log's values;
- `tx_index` is the transaction's index in the block and `log_index` the log's index in
  its own receipt (the producer enumerates `receipt.logs()`), not the block-wide
  `logIndex` of JSON-RPC. That is why whole-block logs are needed to rebuild it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final

from eth_utils.crypto import keccak

from exex_bridge import messages as m


def _topic(signature: str) -> bytes:
    return bytes(keccak(text=signature))


V2_SYNC: Final = _topic("Sync(uint112,uint112)")
V2_SWAP: Final = _topic("Swap(address,uint256,uint256,uint256,uint256,address)")
V2_MINT: Final = _topic("Mint(address,uint256,uint256)")
V2_BURN: Final = _topic("Burn(address,uint256,uint256,address)")
V3_SWAP: Final = _topic("Swap(address,address,int256,int256,uint160,uint128,int24)")
V3_MINT: Final = _topic("Mint(address,address,int24,int24,uint128,uint256,uint256)")
V3_BURN: Final = _topic("Burn(address,int24,int24,uint128,uint256,uint256)")
V4_SWAP: Final = _topic("Swap(bytes32,address,int128,int128,uint160,uint128,int24,uint24)")
V4_MODIFY_LIQUIDITY: Final = _topic("ModifyLiquidity(bytes32,address,int24,int24,int256,bytes32)")
CURVE_EXCHANGE: Final = _topic("TokenExchange(address,int128,uint256,int128,uint256)")
CURVE_ADD: Final = _topic("AddLiquidity(address,uint256[],uint256[],uint256,uint256)")
CURVE_REMOVE: Final = _topic("RemoveLiquidity(address,uint256[],uint256[],uint256)")
CURVE_REMOVE_ONE: Final = _topic("RemoveLiquidityOne(address,int128,uint256,uint256,uint256)")
CURVE_REMOVE_IMBALANCE: Final = _topic(
    "RemoveLiquidityImbalance(address,uint256[],uint256[],uint256,uint256)"
)
CURVE_RAMP_A: Final = _topic("RampA(uint256,uint256,uint256,uint256)")
CURVE_NEW_FEE: Final = _topic("ApplyNewFee(uint256,uint256)")

BALANCER_SWAP: Final = _topic("Swap(bytes32,address,address,uint256,uint256)")
BALANCER_BALANCE_CHANGED: Final = _topic(
    "PoolBalanceChanged(bytes32,address,address[],int256[],uint256[])"
)
BALANCER_FEE_CHANGED: Final = _topic("SwapFeePercentageChanged(uint256)")
MAINNET_BALANCER_VAULT: Final = bytes.fromhex("ba12222222228d8ba445958a75a0704d566bf2c8")

_U112: Final = (1 << 112) - 1
_U128: Final = (1 << 128) - 1
_U160: Final = (1 << 160) - 1
_I128_MAX: Final = (1 << 127) - 1


class EventKind(Enum):
    V2_SYNC = "v2_sync"
    V2_OTHER = "v2_other"  # Swap, Mint, Burn of a pair: no update, touches the pair
    V3_SWAP = "v3_swap"
    V3_MINT = "v3_mint"
    V3_BURN = "v3_burn"
    V4_SWAP = "v4_swap"
    V4_MODIFY = "v4_modify_liquidity"
    BALANCER_SWAP = "balancer_swap"
    BALANCER_LIQUIDITY = "balancer_liquidity"
    BALANCER_FEE = "balancer_fee"  # payload read from the chain by the follower
    CURVE_STATE = "curve_state"  # a Curve event answered with the pool's end-of-block state
    CURVE_RAMP_A = "curve_ramp_a"
    CURVE_NEW_FEE = "curve_new_fee"


BALANCER_KINDS: Final = frozenset(
    {EventKind.BALANCER_SWAP, EventKind.BALANCER_LIQUIDITY, EventKind.BALANCER_FEE}
)


_CURVE_KINDS: Final = frozenset(
    {EventKind.CURVE_STATE, EventKind.CURVE_RAMP_A, EventKind.CURVE_NEW_FEE}
)
_U64: Final = (1 << 64) - 1


# topic0 -> (kind, topics expected, data words expected; None: dynamic arrays, any length)
_SHAPES: Final[dict[bytes, tuple[EventKind, int, int | None]]] = {
    V2_SYNC: (EventKind.V2_SYNC, 1, 2),
    V2_SWAP: (EventKind.V2_OTHER, 3, 4),
    V2_MINT: (EventKind.V2_OTHER, 2, 2),
    V2_BURN: (EventKind.V2_OTHER, 3, 2),
    V3_SWAP: (EventKind.V3_SWAP, 3, 5),
    V3_MINT: (EventKind.V3_MINT, 4, 4),
    V3_BURN: (EventKind.V3_BURN, 4, 3),
    V4_SWAP: (EventKind.V4_SWAP, 3, 6),
    V4_MODIFY_LIQUIDITY: (EventKind.V4_MODIFY, 3, 4),
    CURVE_EXCHANGE: (EventKind.CURVE_STATE, 2, 4),
    CURVE_ADD: (EventKind.CURVE_STATE, 2, None),
    CURVE_REMOVE: (EventKind.CURVE_STATE, 2, None),
    CURVE_REMOVE_ONE: (EventKind.CURVE_STATE, 2, 4),
    CURVE_REMOVE_IMBALANCE: (EventKind.CURVE_STATE, 2, None),
    CURVE_RAMP_A: (EventKind.CURVE_RAMP_A, 1, 4),
    CURVE_NEW_FEE: (EventKind.CURVE_NEW_FEE, 1, 2),
}
_V4_KINDS: Final = frozenset({EventKind.V4_SWAP, EventKind.V4_MODIFY})
_V2_KINDS: Final = frozenset({EventKind.V2_SYNC, EventKind.V2_OTHER})
_CURVE_SWAP_TOPICS: Final = frozenset({CURVE_EXCHANGE})
POOL_TOPICS: Final = tuple(_SHAPES)


@dataclass(frozen=True, slots=True)
class DecodedLog:
    """One pool event of a block. `pool` is the pool's key (a V4 or Balancer pool's id);
    `payload` is None for V2 Swap/Mint/Burn, and for a Balancer fee change until
    `with_fee` gives it (whose `pool` is then the pool's address, not yet its id)."""

    pool: bytes
    kind: EventKind
    tx_index: int
    log_index: int
    update_type: m.UpdateType
    payload: m.PoolUpdatePayload | None

    @property
    def protocol(self) -> m.Protocol:
        if self.kind in BALANCER_KINDS:
            return m.Protocol.BALANCER_V2_WEIGHTED
        if self.kind in _CURVE_KINDS:
            return m.Protocol.CURVE_STABLE
        if self.kind in _V2_KINDS:
            return m.Protocol.UNISWAP_V2
        return m.Protocol.UNISWAP_V4 if self.kind in _V4_KINDS else m.Protocol.UNISWAP_V3

    def with_fee(self, pool_id: bytes, swap_fee_percentage: int) -> DecodedLog:
        """A Balancer fee change completed with its pool id and the fee read on chain."""
        update = m.BalancerFeeUpdate(swap_fee_percentage=swap_fee_percentage)
        return replace(self, pool=pool_id, payload=update)

    def message(
        self, block_number: int, block_timestamp: int, *, is_revert: bool
    ) -> m.PoolUpdateMessage | None:
        """The producer's PoolUpdateMessage, or None where it sends nothing."""
        if self.payload is None or (is_revert and self.kind is EventKind.V2_SYNC):
            return None
        pool_id: m.PoolIdentifier = (
            m.V4PoolId(value=self.pool) if len(self.pool) == 32 else m.PoolAddress(value=self.pool)
        )
        return m.PoolUpdateMessage(
            pool_id=pool_id,
            protocol=self.protocol,
            update_type=self.update_type,
            block_number=block_number,
            block_timestamp=block_timestamp,
            tx_index=self.tx_index,
            log_index=self.log_index,
            is_revert=is_revert,
            update=self.payload,
        )


def _hex_bytes(value: object) -> bytes:
    if isinstance(value, bytes):  # also HexBytes, from web3's formatted answers
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _hex_int(value: object) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 16)


def _words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 32], "big") for i in range(0, len(data), 32)]


def _signed(word: int, bits: int) -> int | None:
    """A sign-extended ABI word as a `bits`-wide signed int, None if it does not fit."""
    value = word - (1 << 256) if word >> 255 else word
    limit = 1 << (bits - 1)
    return value if -limit <= value < limit else None


def _curve_payload(
    kind: EventKind, topics: Sequence[bytes], words: Sequence[int]
) -> tuple[m.UpdateType, m.PoolUpdatePayload | None]:
    """As the producer: values saturate to u64 (`saturating_to::<u64>`)."""
    if kind is EventKind.CURVE_STATE:
        swap = topics[0] in _CURVE_SWAP_TOPICS
        return (m.UpdateType.SWAP if swap else m.UpdateType.MINT), None
    w = [min(x, _U64) for x in words]
    if kind is EventKind.CURVE_RAMP_A:
        ramp = m.CurveRampA(initial_a=w[0], future_a=w[1], initial_a_time=w[2], future_a_time=w[3])
        return m.UpdateType.SWAP, ramp
    return m.UpdateType.SWAP, m.CurveFeeUpdate(fee=w[0], offpeg_fee_multiplier=w[1])


def _payload(
    kind: EventKind, topics: Sequence[bytes], words: Sequence[int]
) -> tuple[m.UpdateType, m.PoolUpdatePayload | None] | None:
    """The update of one log whose shape already matched; None if a value is out of range."""
    if kind in _CURVE_KINDS:
        return _curve_payload(kind, topics, words)
    if kind is EventKind.V2_OTHER:
        return m.UpdateType.SWAP, None
    if kind in _V4_KINDS:
        return _v4_payload(kind, words)
    if kind is EventKind.V2_SYNC:
        if words[0] > _U112 or words[1] > _U112:
            return None
        return m.UpdateType.SWAP, m.V2Sync(reserve0=words[0], reserve1=words[1])
    if kind is EventKind.V3_SWAP:
        tick = _signed(words[4], 24)
        if tick is None or words[2] > _U160 or words[3] > _U128:
            return None
        return m.UpdateType.SWAP, m.V3Swap(sqrt_price_x96=words[2], liquidity=words[3], tick=tick)
    lower = _signed(int.from_bytes(topics[2], "big"), 24)
    upper = _signed(int.from_bytes(topics[3], "big"), 24)
    amount = words[1] if kind is EventKind.V3_MINT else words[0]
    if lower is None or upper is None or amount > _U128:
        return None
    if kind is EventKind.V3_MINT:
        liquidity = m.V3Liquidity(tick_lower=lower, tick_upper=upper, liquidity_delta=amount)
        return m.UpdateType.MINT, liquidity
    return m.UpdateType.BURN, m.V3Liquidity(
        tick_lower=lower, tick_upper=upper, liquidity_delta=-amount
    )


def _v4_payload(
    kind: EventKind, words: Sequence[int]
) -> tuple[m.UpdateType, m.PoolUpdatePayload] | None:
    if kind is EventKind.V4_SWAP:
        tick = _signed(words[4], 24)
        if tick is None or words[2] > _U160 or words[3] > _U128:
            return None
        return m.UpdateType.SWAP, m.V4Swap(sqrt_price_x96=words[2], liquidity=words[3], tick=tick)
    lower, upper = _signed(words[0], 24), _signed(words[1], 24)
    delta = _signed(words[2], 256)
    if lower is None or upper is None or delta is None:
        return None
    delta = max(-_I128_MAX, min(_I128_MAX, delta))
    update_type = m.UpdateType.MINT if delta > 0 else m.UpdateType.BURN
    return update_type, m.V4Liquidity(tick_lower=lower, tick_upper=upper, liquidity_delta=delta)


def decode_block_logs(
    logs: Iterable[Mapping[str, Any]],
    tracked: frozenset[bytes] | None = None,
    *,
    vault: bytes = MAINNET_BALANCER_VAULT,
) -> list[DecodedLog]:
    """The pool events among ALL logs of one block, in execution order (of `tracked`
    pools only, when given).

    `logs` must be every log of the block (eth_getLogs by block hash, no filter): the
    receipt-local log index is the log's position among its transaction's logs.
    """
    ordered = sorted(logs, key=lambda log: _hex_int(log["logIndex"]))
    out: list[DecodedLog] = []
    current_tx = -1
    position = 0
    for log in ordered:
        tx_index = _hex_int(log["transactionIndex"])
        if tx_index != current_tx:
            current_tx, position = tx_index, 0
        else:
            position += 1
        decoded = decode_log(log, tx_index, position, tracked, vault=vault)
        if decoded is not None:
            out.append(decoded)
    return out


def decode_log(
    log: Mapping[str, Any],
    tx_index: int,
    log_index: int,
    tracked: frozenset[bytes] | None = None,
    *,
    vault: bytes = MAINNET_BALANCER_VAULT,
) -> DecodedLog | None:
    """One log, if it is a known pool event (of a tracked pool) with the expected shape.
    `tracked` holds addresses, and the 32-byte ids of V4 and Balancer pools."""
    pool = _hex_bytes(log["address"])
    topics = [_hex_bytes(t) for t in log["topics"]]
    if not topics:
        return None
    if topics[0] in _BALANCER_TOPICS:
        found = _balancer_log(pool, topics, _hex_bytes(log["data"]), (tx_index, log_index), vault)
        if found is None or tracked is None or found.kind is EventKind.BALANCER_FEE:
            return found  # a fee change's emitter is matched to its pool id by the follower
        return found if found.pool in tracked else None
    shape = _SHAPES.get(topics[0])
    if shape is None:
        return None
    kind, n_topics, n_words = shape
    if len(topics) != n_topics:
        return None
    if kind in _V4_KINDS:
        pool = topics[1]
    if tracked is not None and pool not in tracked:
        return None
    data = _hex_bytes(log["data"])
    if len(data) % 32:
        return None
    if n_words is not None and len(data) != 32 * n_words:
        return None
    decoded = _payload(kind, topics, _words(data))
    if decoded is None:
        return None
    update_type, payload = decoded
    return DecodedLog(pool, kind, tx_index, log_index, update_type, payload)


_BALANCER_TOPICS: Final = frozenset({BALANCER_SWAP, BALANCER_BALANCE_CHANGED, BALANCER_FEE_CHANGED})


def _clamped_i128(word: int) -> int:
    """An int256 ABI word as the producer's i128: magnitudes beyond 2^127 − 1 saturate."""
    value = word - (1 << 256) if word >> 255 else word
    return max(-_I128_MAX, min(_I128_MAX, value))


def _dynamic_array(data: bytes, words: Sequence[int], head: int) -> list[int] | None:
    """The elements of the ABI-encoded dynamic array whose offset is head word `head`."""
    offset = words[head]
    if offset % 32 or offset + 32 > len(data):
        return None
    start = offset // 32
    length = words[start]
    if start + 1 + length > len(words):
        return None
    return list(words[start + 1 : start + 1 + length])


def _balancer_log(
    emitter: bytes,
    topics: Sequence[bytes],
    data: bytes,
    position: tuple[int, int],
    vault: bytes,
) -> DecodedLog | None:
    """A Balancer event; the tracked filter is the follower's (pool ids, fee emitters)."""
    tx_index, log_index = position
    words = _words(data) if len(data) % 32 == 0 else []
    if topics[0] == BALANCER_FEE_CHANGED:
        if len(topics) != 1 or len(words) != 1:
            return None
        return DecodedLog(
            emitter, EventKind.BALANCER_FEE, tx_index, log_index, m.UpdateType.SWAP, None
        )
    if emitter != vault:
        return None
    if topics[0] == BALANCER_SWAP:
        if len(topics) != 4 or len(words) != 2:
            return None
        swap = m.BalancerSwap(
            token_in=topics[2][12:],
            token_out=topics[3][12:],
            amount_in=words[0],
            amount_out=words[1],
        )
        return DecodedLog(
            topics[1], EventKind.BALANCER_SWAP, tx_index, log_index, m.UpdateType.SWAP, swap
        )
    if len(topics) != 3 or len(words) < 6:
        return None
    tokens = _dynamic_array(data, words, 0)
    deltas = _dynamic_array(data, words, 1)
    if (
        tokens is None
        or deltas is None
        or len(tokens) != len(deltas)
        or any(t > _U160 for t in tokens)
    ):
        return None
    liquidity = m.BalancerLiquidity(
        tokens=tuple(t.to_bytes(20, "big") for t in tokens),
        deltas=tuple(_clamped_i128(d) for d in deltas),
    )
    return DecodedLog(
        topics[1], EventKind.BALANCER_LIQUIDITY, tx_index, log_index, m.UpdateType.MINT, liquidity
    )
