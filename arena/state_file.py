"""The arena's state as JSON (`--state-out`, `--initial-state`).

`{"block": N, "unsynced": bool, "stale": ["0x…"], "unhydrated": ["0x…"], "pools": {"0x…":
{"protocol": "v3", "sqrt_price_x96": "…", "liquidity": "…", "tick": n, "ticks": {"-600":
{"net": "…", "gross": "…"}}}, "0x…": {"protocol": "v2", "reserve0": "…", "reserve1": "…"}}}`.
Big integers are decimal strings, keys lower-case hex (a V4 pool: its id), only
initialized ticks. Pools never hydrated are listed in `unhydrated`, not in `pools`.
A multi-coin pool (Curve) is written with its coin `balances` only, for reading; loading
leaves such pools unhydrated (their rates and parameters come from RPC hydration).
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from arena.engine import ArenaEngine, PoolStatus
from arena.errors import ArenaError
from arena.pool_status import StaleReason
from arena.registry import COIN_POOL_KINDS, PoolKind
from arena.state_table import pack_records
from arena.sync_state import LossCause, SyncState
from arena.update_checks import (
    Violation,
    slot0_range_violation,
    sync_violation,
    tick_map_violation,
)
from exex_bridge.whitelist import PROTOCOL_SHORT


class StateFileError(ArenaError):
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"state file {path}: {reason}")


class TickJson(msgspec.Struct, frozen=True):
    net: str
    gross: str


class PoolStateJson(msgspec.Struct, frozen=True, omit_defaults=True):
    protocol: str
    sqrt_price_x96: str | None = None
    liquidity: str | None = None
    tick: int | None = None
    ticks: dict[str, TickJson] | None = None
    reserve0: str | None = None
    reserve1: str | None = None
    balances: list[str] | None = None  # multi-coin pools, in the pool's coin order


class StateJson(msgspec.Struct, frozen=True):
    block: int | None
    unsynced: bool
    stale: list[str]
    pools: dict[str, PoolStateJson]
    unhydrated: list[str] = []


def export_state(engine: ArenaEngine) -> StateJson:
    pools: dict[str, PoolStateJson] = {}
    stale, unhydrated = [], []
    for index, pool in enumerate(engine.registry.pools):
        if not engine.registry.is_active(index):
            continue
        key = pool.key_hex
        status = PoolStatus(int(engine.status[index]))
        if status is PoolStatus.UNKNOWN:
            unhydrated.append(key)
            continue
        if status is PoolStatus.STALE:
            stale.append(key)
        protocol = PROTOCOL_SHORT[pool.protocol]
        if engine.registry.kind_of(index) in COIN_POOL_KINDS:
            coin_state = engine.coins.state(index)
            if coin_state is None:
                unhydrated.append(key)
                continue
            pools[key] = PoolStateJson(
                protocol=protocol, balances=[str(b) for b in coin_state.balances]
            )
            continue
        if engine.registry.kind_of(index) is PoolKind.V2:
            r0, r1 = engine.table.reserves(index)
            pools[key] = PoolStateJson(protocol=protocol, reserve0=str(r0), reserve1=str(r1))
            continue
        sqrt, liq, tick = engine.table.slot0(index)
        ticks = {
            str(t): TickJson(net=str(net), gross=str(gross))
            for t, (net, gross) in sorted(engine.ticks.ticks(index).items())
        }
        pools[key] = PoolStateJson(
            protocol=protocol, sqrt_price_x96=str(sqrt), liquidity=str(liq), tick=tick, ticks=ticks
        )
    return StateJson(
        block=engine.tip_block,
        unsynced=engine.sync_state is SyncState.UNSYNCED,
        stale=sorted(stale),
        pools=dict(sorted(pools.items())),
        unhydrated=sorted(unhydrated),
    )


def write_state_file(engine: ArenaEngine, path: str | Path) -> None:
    """Write atomically (temp file + rename): a reader never sees half a state."""
    target = Path(path)
    data = msgspec.json.format(msgspec.json.encode(export_state(engine)), indent=1)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=target.name, dir=target.parent or Path("."))
        with os.fdopen(fd, "wb") as f:
            f.write(data + b"\n")
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise StateFileError(str(target), exc.strerror or str(exc)) from exc


def check_state_path(path: str | Path) -> None:
    """Raise StateFileError now if `write_state_file(…, path)` could not succeed later:
    the target is a directory, or its folder is missing or not writable (the same temp
    file + rename as a write, with nothing renamed)."""
    target = Path(path)
    if target.is_dir():
        raise StateFileError(str(target), "is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=target.name, dir=target.parent or Path("."))
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise StateFileError(str(target), exc.strerror or str(exc)) from exc


def read_state_file(path: str | Path) -> StateJson:
    try:
        return msgspec.json.decode(Path(path).read_bytes(), type=StateJson)
    except OSError as exc:
        raise StateFileError(str(path), exc.strerror or str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise StateFileError(str(path), str(exc)) from exc


def load_state(engine: ArenaEngine, state: StateJson, source: str = "<state>") -> int:
    """Seed the engine (pools must be registered); returns how many pools were set.

    Every pool is parsed and checked before any is written: a key that is not hex or a
    value no pool can hold is a StateFileError, and leaves the engine as it was.
    """
    if state.block is not None and not 0 <= state.block <= _BLOCK_MAX:
        raise StateFileError(source, f"block {state.block} out of range")
    indices, records, ticks = _parse_pools(engine, state, source)
    stale: list[int | None] = []
    for key in state.stale:
        try:
            stale.append(engine.registry.index_of.get(_key_bytes(key)))
        except ValueError as exc:
            raise StateFileError(source, f"pool {key}: {exc}") from exc
    engine.set_states(np.asarray(indices, dtype=np.int64), records, ticks)
    if state.block is not None:
        engine.mark_synced(state.block, keep_history=False)
    if state.unsynced:
        engine.mark_unsynced(
            LossCause.UNSYNCED_STATE_LOADED, f"the state loaded from {source} was unsynced"
        )
    for index in stale:
        if index is not None:
            engine.mark_stale(index, StaleReason.STALE_IN_LOADED_STATE)
    return len(indices)


def _parse_pools(
    engine: ArenaEngine, state: StateJson, source: str
) -> tuple[list[int], bytes, dict[int, dict[int, tuple[int, int]]]]:
    """The registered pools' indices, their packed records, and the V3/V4 tick maps."""
    registry = engine.registry
    index_of = registry.index_of
    indices: list[int] = []
    values: list[tuple[int, ...]] = []
    ticks: dict[int, dict[int, tuple[int, int]]] = {}
    key = ""
    try:
        for key, pool in state.pools.items():
            index = index_of.get(_key_bytes(key))
            if index is None or registry.kind_of(index) in COIN_POOL_KINDS:
                continue
            if registry.kind_of(index) is PoolKind.V2:
                reserve0 = int(_need(pool.reserve0, _V2_FIELDS))
                reserve1 = int(_need(pool.reserve1, _V2_FIELDS))
                _refuse(sync_violation(reserve0, reserve1))
                values.append((reserve0, reserve1))
            else:
                sqrt, liquidity, tick = (
                    int(_need(pool.sqrt_price_x96, _V3_FIELDS)),
                    int(_need(pool.liquidity, _V3_FIELDS)),
                    int(_need(pool.tick, _V3_FIELDS)),
                )
                _refuse(slot0_range_violation(sqrt, liquidity, tick))
                pool_ticks = {
                    int(t): (int(v.net), int(v.gross)) for t, v in (pool.ticks or {}).items()
                }
                _refuse(tick_map_violation(pool_ticks))
                values.append((sqrt, liquidity, tick))
                ticks[index] = pool_ticks
            indices.append(index)
    except ValueError as exc:
        raise StateFileError(source, f"pool {key}: {exc}") from exc
    try:
        records = pack_records(values)
    except (OverflowError, struct.error) as exc:
        raise StateFileError(source, f"a value does not fit its record field: {exc}") from exc
    return indices, records, ticks


_BLOCK_MAX: Final = (1 << 63) - 1  # block numbers are kept as int64


def _key_bytes(key: str) -> bytes:
    try:
        return bytes.fromhex(key.removeprefix("0x"))
    except ValueError:
        raise ValueError("not a hex key") from None


def _refuse(violation: Violation | None) -> None:
    if violation is not None:
        raise ValueError(f"a value no pool can hold ({violation.value})")


_V2_FIELDS: Final = "a V2 pool needs reserve0 and reserve1"
_V3_FIELDS: Final = "a V3/V4 pool needs sqrt_price_x96, liquidity and tick"


def _need(value: Any, fields: str) -> Any:
    if value is None:
        raise ValueError(fields)
    return value
