"""Curve StableSwap-NG pools read from a node's JSON-RPC at one block, and whether the
arena can model them.

Batched JSON-RPC, every call pinned to the same block, in three rounds for any number
of pools: the pool's parameters (`N_COINS`, `stored_rates`, `fee`,
`offpeg_fee_multiplier`, `initial_A`, `future_A`, `initial_A_time`, `future_A_time`,
and `BASE_POOL`, which only a meta pool answers); per coin `coins(i)`, `balances(i)`
and the two storage slots the stream's producer reads (stored balance at slot 2 + i,
admin balance at slot 17 + i); then each coin's `decimals()`.

Only plain pools are modelled exactly (`classify_curve_pool`); the others are tracked
(their updates are counted) but excluded, by reason:
- `rates_not_plain`: a stored rate is not 10**(36 - decimals): an oracle or ERC-4626 coin,
  whose rate moves without any event the stream carries;
- `meta_pool`: the pool answers `BASE_POOL()`: its second coin is another pool's LP token;
- `rebasing_coin`: `balances(i)` differs from stored minus admin balance in storage,
  which is what the stream carries: the pool counts a coin by `balanceOf` (a rebasing
  coin). A rebasing pool read right after an operation may agree and pass; its next
  update that disagrees cannot be seen here (the stream carries storage only).
- `unreadable`: a call failed or answered something out of shape (not a StableSwap-NG
  pool, or a coin count outside 2..8).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Final, cast

import msgspec
from web3 import Web3
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from arena.coin_pools import MAX_COINS, MIN_COINS, CoinPoolState, CurveParams
from arena.hydration import DEFAULT_BATCH_SIZE, BlockRef, HydrationError

STORED_BALANCES_SLOT: Final = 2  # + coin index (the producer reads the same slots)
ADMIN_BALANCES_SLOT: Final = 17


def _selector(signature: str) -> bytes:
    return bytes(Web3.keccak(text=signature)[:4])


_PARAMETERS: Final = tuple(
    _selector(s)
    for s in (
        "N_COINS()",
        "stored_rates()",
        "fee()",
        "offpeg_fee_multiplier()",
        "initial_A()",
        "future_A()",
        "initial_A_time()",
        "future_A_time()",
    )
)
_BASE_POOL: Final = _selector("BASE_POOL()")
_COINS: Final = _selector("coins(uint256)")
_BALANCES: Final = _selector("balances(uint256)")
_DECIMALS: Final = _selector("decimals()")


class CurveExclusion(StrEnum):
    """Why a Curve pool is tracked but not modelled: the `reason` label of
    `arena_coin_pools_excluded_total`."""

    RATES_NOT_PLAIN = "rates_not_plain"
    META_POOL = "meta_pool"
    REBASING_COIN = "rebasing_coin"
    UNREADABLE = "unreadable"


class CurveReads(msgspec.Struct, frozen=True, kw_only=True):
    """What the node answered for one pool (None: the call failed)."""

    n_coins: int | None
    base_pool: bool  # BASE_POOL() answered: a meta pool
    stored_rates: tuple[int, ...] | None
    fee: int | None
    offpeg_fee_multiplier: int | None
    a_values: tuple[int, int, int, int] | None  # initial, future, initial time, future time
    coins: tuple[bytes, ...] | None
    balances: tuple[int, ...] | None  # balances(i): what the pool's math uses
    stored_minus_admin: tuple[int, ...] | None  # from storage, as the stream carries
    decimals: tuple[int, ...] | None


class CurveSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A pool at `block`: its state, or why it is excluded (`detail` for the log)."""

    address: str
    block: int
    state: CoinPoolState | None
    excluded: CurveExclusion | None
    detail: str = ""


def classify_curve_pool(
    reads: CurveReads,
) -> tuple[CoinPoolState | None, CurveExclusion | None, str]:
    """The pool's state if it is a plain pool the arena models, else why not."""
    unreadable = CurveExclusion.UNREADABLE
    n = reads.n_coins
    if n is None or not MIN_COINS <= n <= MAX_COINS:
        return None, unreadable, f"N_COINS {n}"
    if reads.base_pool:
        return None, CurveExclusion.META_POOL, "answers BASE_POOL()"
    if (
        reads.stored_rates is None
        or reads.fee is None
        or reads.offpeg_fee_multiplier is None
        or reads.a_values is None
        or reads.coins is None
        or reads.balances is None
        or reads.stored_minus_admin is None
        or reads.decimals is None
    ):
        return None, unreadable, "a call failed"
    if len(reads.stored_rates) != n or any(d > 36 for d in reads.decimals):
        return None, unreadable, f"{len(reads.stored_rates)} rates, decimals {reads.decimals}"
    plain = tuple(10 ** (36 - d) for d in reads.decimals)
    if reads.stored_rates != plain:
        return None, CurveExclusion.RATES_NOT_PLAIN, f"rates {reads.stored_rates} != {plain}"
    if reads.balances != reads.stored_minus_admin:
        detail = f"balances() {reads.balances} != stored - admin {reads.stored_minus_admin}"
        return None, CurveExclusion.REBASING_COIN, detail
    initial_a, future_a, initial_time, future_time = reads.a_values
    state = CoinPoolState(
        coins=reads.coins,
        balances=reads.balances,
        params=CurveParams(
            rates=reads.stored_rates,
            fee=reads.fee,
            offpeg_fee_multiplier=reads.offpeg_fee_multiplier,
            initial_a=initial_a,
            future_a=future_a,
            initial_a_time=initial_time,
            future_a_time=future_time,
        ),
    )
    return state, None, ""


def read_curve_pools(
    w3: Web3, addresses: Sequence[str], block: int, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> list[CurveSnapshot]:
    """Snapshots of the Curve pools at `addresses` at `block`, in the same order."""
    batch = _Batch(w3, block, batch_size)
    heads = _chunks(batch.calls([(a, s) for a in addresses for s in (*_PARAMETERS, _BASE_POOL)]), 9)
    counts = [_count(head[0]) for head in heads]
    per_coin: list[tuple[str, bytes | int]] = []
    for address, n in zip(addresses, counts, strict=True):
        for i in range(n or 0):
            arg = i.to_bytes(32, "big")
            per_coin += [(address, _COINS + arg), (address, _BALANCES + arg)]
            per_coin += [(address, STORED_BALANCES_SLOT + i), (address, ADMIN_BALANCES_SLOT + i)]
    coin_answers = iter(batch.mixed(per_coin))
    coin_rows: list[list[tuple[bytes | None, ...]]] = [
        [tuple(next(coin_answers) for _ in range(4)) for _ in range(n or 0)] for n in counts
    ]
    coins = [[_address(row[0]) for row in rows] for rows in coin_rows]
    wanted = sorted({c for pool in coins for c in pool if c is not None})
    decimals = dict(
        zip(wanted, batch.calls([("0x" + c.hex(), _DECIMALS) for c in wanted]), strict=True)
    )
    out = []
    for address, head, n, rows, pool_coins in zip(
        addresses, heads, counts, coin_rows, coins, strict=True
    ):
        reads = _reads(head, n, rows, pool_coins, decimals)
        state, excluded, detail = classify_curve_pool(reads)
        out.append(
            CurveSnapshot(
                address=address, block=block, state=state, excluded=excluded, detail=detail
            )
        )
    return out


def _reads(
    head: list[bytes | None],
    n: int | None,
    rows: list[tuple[bytes | None, ...]],
    coins: list[bytes | None],
    decimals: dict[bytes, bytes | None],
) -> CurveReads:
    _, rates, fee, offpeg, a0, a1, t0, t1, base = head
    a_words = [_uint(v) for v in (a0, a1, t0, t1)]
    known_coins = None if any(c is None for c in coins) else tuple(cast(list[bytes], coins))
    coin_decimals = None
    if known_coins is not None:
        values = [_uint(decimals.get(c)) for c in known_coins]
        coin_decimals = None if any(v is None for v in values) else tuple(cast(list[int], values))
    return CurveReads(
        n_coins=n,
        base_pool=base is not None,
        stored_rates=_uint_array(rates),
        fee=_uint(fee),
        offpeg_fee_multiplier=_uint(offpeg),
        a_values=None
        if any(v is None for v in a_words)
        else cast(tuple[int, int, int, int], tuple(a_words)),
        coins=known_coins,
        balances=_all(_uint(row[1]) for row in rows),
        stored_minus_admin=_stored_minus_admin(rows),
        decimals=coin_decimals,
    )


def _stored_minus_admin(rows: list[tuple[bytes | None, ...]]) -> tuple[int, ...] | None:
    out = []
    for row in rows:
        stored, admin = _uint(row[2]), _uint(row[3])
        if stored is None or admin is None:
            return None
        out.append(max(0, stored - admin))  # as the producer: a saturating subtraction
    return tuple(out)


def _all(values: Any) -> tuple[int, ...] | None:
    out = tuple(values)
    return None if any(v is None for v in out) else out


def _chunks(items: list[bytes | None], size: int) -> list[list[bytes | None]]:
    return [items[k : k + size] for k in range(0, len(items), size)]


def _uint(data: bytes | None) -> int | None:
    if data is None or len(data) < 32:
        return None
    return int.from_bytes(data[:32], "big")


def _count(data: bytes | None) -> int | None:
    value = _uint(data)
    return value if value is not None and MIN_COINS <= value <= MAX_COINS else None


def _address(data: bytes | None) -> bytes | None:
    value = _uint(data)
    return None if value is None or value >> 160 else value.to_bytes(20, "big")


def _uint_array(data: bytes | None) -> tuple[int, ...] | None:
    """An ABI-encoded dynamic uint256[] (offset, length, elements)."""
    offset = _uint(data)
    if data is None or offset is None or offset + 32 > len(data):
        return None
    length = int.from_bytes(data[offset : offset + 32], "big")
    if length > MAX_COINS or offset + 32 * (length + 1) > len(data):
        return None
    start = offset + 32
    return tuple(
        int.from_bytes(data[start + 32 * k : start + 32 * k + 32], "big") for k in range(length)
    )


class _Batch:
    """Batched `eth_call`s and `eth_getStorageAt`s at one block; a failed call is None."""

    def __init__(self, w3: Web3, block: BlockRef, batch_size: int) -> None:
        if not isinstance(w3.provider, JSONBaseProvider):
            raise HydrationError("-", "batch", f"{type(w3.provider).__name__} cannot batch")
        self._provider: JSONBaseProvider = w3.provider
        self._block = hex(block) if isinstance(block, int) else block
        self._size = batch_size

    def calls(self, calls: Sequence[tuple[str, bytes]]) -> list[bytes | None]:
        return self.mixed(list(calls))

    def mixed(self, requests: Sequence[tuple[str, bytes | int]]) -> list[bytes | None]:
        """`(address, calldata)` is an eth_call, `(address, slot)` an eth_getStorageAt."""
        out: list[bytes | None] = []
        for start in range(0, len(requests), self._size):
            chunk = requests[start : start + self._size]
            batch = [
                (cast(RPCEndpoint, "eth_getStorageAt"), [to, hex(what), self._block])
                if isinstance(what, int)
                else (
                    cast(RPCEndpoint, "eth_call"),
                    [{"to": to, "data": "0x" + what.hex()}, self._block],
                )
                for to, what in chunk
            ]
            responses = self._provider.make_batch_request(batch)
            if not isinstance(responses, list):
                raise HydrationError(chunk[0][0], "batch", responses.get("error", responses))
            out += [_result(r) for r in responses]
        return out


def _result(response: Any) -> bytes | None:
    if "error" in response:
        return None
    data = bytes.fromhex(str(response.get("result", "0x"))[2:])
    return data or None
