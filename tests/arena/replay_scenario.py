"""A sequenced ExEx stream with committed blocks, a reorg and V2/V3 pools, built together
with an independent model of the state it must produce.

The model never touches the arena: it keeps every pool's values as plain ints and a full
copy of the state at the end of each block, so a revert is "go back to the copy".
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from exex_bridge import messages as m
from exex_bridge.codec import encode_frame, encode_message
from exex_bridge.producers.broadcast import StreamSequencer
from exex_bridge.recording import RecordingMetadata, RecordingWriter
from pathfinder.tick_math import get_sqrt_ratio_at_tick

Q96 = 1 << 96


def key(byte: int) -> str:
    return "0x" + bytes([byte]).hex() * 20


V2_A = key(0xA1)  # V2, seeded by the initial state
V2_F = key(0xF1)  # V2, first hydrated by a V2Sync in the stream
V2_G = key(0xF2)  # V2, hydrated only by a block that the reorg reverts
V3_B = key(0xB1)  # V3, swaps
V3_C = key(0xC1)  # V3, mints and burns
V3_E = key(0xE1)  # V3, whitelisted but never hydrated
FOREIGN = key(0xD1)  # not whitelisted: its updates are ignored
FIRST_BLOCK = 100


def whitelist_document() -> dict[str, Any]:
    def token(byte: int) -> dict[str, Any]:
        return {"address": key(byte), "decimals": 18, "symbol": f"T{byte:x}"}

    def pool(address: str, protocol: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "address": address,
            "protocol": protocol,
            "token0": token(0x01),
            "token1": token(0x02),
            "fee": 3000,
        }
        if protocol == "v3":
            entry["tick_spacing"] = 60
        return entry

    pools = [pool(V2_A, "v2"), pool(V2_F, "v2"), pool(V2_G, "v2")]
    pools += [pool(V3_B, "v3"), pool(V3_C, "v3"), pool(V3_E, "v3")]
    return {"chain": "ethereum", "snapshot_id": 1, "pools": pools}


Pools = dict[str, dict[str, Any]]


@dataclass
class Model:
    """Pool values as ints; `history[b]` is the state at the end of block b."""

    pools: Pools
    block: int
    history: dict[int, Pools] = field(default_factory=dict)

    def record(self, block: int) -> None:
        self.block = block
        self.history[block] = copy.deepcopy(self.pools)

    def restore(self, block: int) -> None:
        self.pools = copy.deepcopy(self.history[block])
        self.block = block

    def apply(self, pool: str, update: m.PoolUpdatePayload) -> None:
        if pool not in WHITELISTED:
            return
        match update:
            case m.V2Sync(reserve0=r0, reserve1=r1):
                self.pools[pool] = {"protocol": "v2", "reserve0": r0, "reserve1": r1}
            case m.V3Swap(sqrt_price_x96=sqrt, liquidity=liq, tick=tick):
                self.pools[pool].update(sqrt_price_x96=sqrt, liquidity=liq, tick=tick)
            case m.V3Liquidity(tick_lower=lo, tick_upper=hi, liquidity_delta=delta):
                state = self.pools[pool]
                ticks: dict[int, list[int]] = state["ticks"]
                for tick, net in ((lo, delta), (hi, -delta)):
                    entry = ticks.setdefault(tick, [0, 0])
                    entry[0] += net
                    entry[1] += delta
                    if entry[1] == 0:
                        del ticks[tick]
                if lo <= state["tick"] < hi:
                    state["liquidity"] += delta

    def state_json(self, block: int | None = None, *, unsynced: bool = False) -> dict[str, Any]:
        """The state file the arena must write for the model at `block` (default: now)."""
        pools = self.pools if block is None else self.history[block]
        return {
            "block": self.block if block is None else block,
            "unsynced": unsynced,
            "stale": [],
            "pools": {k: _pool_json(v) for k, v in sorted(pools.items())},
            "unhydrated": sorted(WHITELISTED - pools.keys()),
        }


WHITELISTED = frozenset({V2_A, V2_F, V2_G, V3_B, V3_C, V3_E})


def _pool_json(pool: dict[str, Any]) -> dict[str, Any]:
    if pool["protocol"] == "v2":
        return {
            "protocol": "v2",
            "reserve0": str(pool["reserve0"]),
            "reserve1": str(pool["reserve1"]),
        }
    return {
        "protocol": "v3",
        "sqrt_price_x96": str(pool["sqrt_price_x96"]),
        "liquidity": str(pool["liquidity"]),
        "tick": pool["tick"],
        "ticks": {
            str(t): {"net": str(v[0]), "gross": str(v[1])} for t, v in sorted(pool["ticks"].items())
        },
    }


def initial_pools() -> Pools:
    liq = 10**18
    ticks = {-600: [liq, liq], 600: [-liq, liq]}
    return {
        V2_A: {"protocol": "v2", "reserve0": 10**21, "reserve1": 2 * 10**21},
        V3_B: {
            "protocol": "v3",
            "sqrt_price_x96": Q96,
            "liquidity": liq,
            "tick": 0,
            "ticks": copy.deepcopy(ticks),
        },
        V3_C: {
            "protocol": "v3",
            "sqrt_price_x96": Q96,
            "liquidity": liq,
            "tick": 0,
            "ticks": copy.deepcopy(ticks),
        },
    }


Event = tuple[str, m.PoolUpdatePayload]


@dataclass
class StreamBuilder:
    """Emits messages and keeps the model in step with them."""

    model: Model
    seq: StreamSequencer = field(default_factory=StreamSequencer)
    messages: list[m.ControlMessage] = field(default_factory=list)
    events: dict[int, list[m.PoolUpdateMessage]] = field(default_factory=dict)
    blocks_applied: int = 0
    blocks_reverted: int = 0

    def block(self, number: int, events: list[Event]) -> None:
        msgs = [_event(number, i, pool, update) for i, (pool, update) in enumerate(events)]
        self.events[number] = msgs
        self.messages += self.seq.block(number, msgs, base_fee_per_gas=7, block_timestamp=number)
        for pool, update in events:
            self.model.apply(pool, update)
        self.model.record(number)
        self.blocks_applied += 1

    def reorg(
        self,
        reverted: list[int],
        new_blocks: list[tuple[int, list[Event]]],
        finals: list[m.ReorgEpilogueUpdate],
    ) -> None:
        """`reverted` newest first; each reverted block's updates are sent in reverse."""
        tip = new_blocks[-1][0] if new_blocks else reverted[-1] - 1
        old = m.ReorgRange(
            first_block=reverted[-1], last_block=reverted[0], block_count=len(reverted)
        )
        new = m.ReorgRange(
            first_block=new_blocks[0][0] if new_blocks else None,
            last_block=tip if new_blocks else None,
            block_count=len(new_blocks),
        )
        self.messages.append(self.seq.reorg_start(old, new))
        for number in reverted:
            undo = [
                msgspec.structs.replace(e, is_revert=True)
                for e in reversed(self.events.pop(number))
            ]
            self.messages += self.seq.block(number, undo, is_revert=True)
            self.model.restore(number - 1)
            self.blocks_reverted += 1
        for number, events in new_blocks:
            self.block(number, events)
        for update in finals:
            self.messages.append(self.seq.epilogue(tip, update))
            self._apply_final(update)
        self.model.record(tip)
        self.messages.append(self.seq.reorg_complete(tip))

    def _apply_final(self, update: m.ReorgEpilogueUpdate) -> None:
        pool = "0x" + update.pool_id.value.hex()
        match update:
            case m.V2ReservesFinal(reserve0=r0, reserve1=r1):
                self.model.pools[pool] = {"protocol": "v2", "reserve0": r0, "reserve1": r1}
            case m.Slot0Final(state=s):
                self.model.pools[pool].update(
                    sqrt_price_x96=s.sqrt_price_x96, liquidity=s.liquidity, tick=s.tick
                )

    # -- outputs ------------------------------------------------------------------------
    def raw_dump(self) -> bytes:
        return b"".join(encode_frame(msg) for msg in self.messages)

    def write_recording(self, path: Path) -> None:
        with RecordingWriter(path, RecordingMetadata.new("tests/arena/replay_scenario")) as w:
            w.write_frames(encode_message(msg) for msg in self.messages)


def _pool_id(pool: str) -> m.PoolAddress:
    return m.PoolAddress(value=bytes.fromhex(pool[2:]))


_PROTOCOL = {
    m.V2Sync: m.Protocol.UNISWAP_V2,
    m.V3Swap: m.Protocol.UNISWAP_V3,
    m.V3Liquidity: m.Protocol.UNISWAP_V3,
}


def _event(block: int, index: int, pool: str, update: m.PoolUpdatePayload) -> m.PoolUpdateMessage:
    kind = m.UpdateType.SWAP
    if isinstance(update, m.V3Liquidity):
        kind = m.UpdateType.MINT if update.liquidity_delta > 0 else m.UpdateType.BURN
    return m.PoolUpdateMessage(
        pool_id=_pool_id(pool),
        protocol=_PROTOCOL[type(update)],
        update_type=kind,
        block_number=block,
        block_timestamp=block,
        tx_index=index // 2,
        log_index=index,
        is_revert=False,
        update=update,
    )


def sqrt_at(tick: int) -> int:
    """The lowest price of `tick`'s range (a swap's price and tick must agree)."""
    return get_sqrt_ratio_at_tick(tick)


def swap(sqrt: int, liquidity: int, tick: int) -> m.V3Swap:
    return m.V3Swap(sqrt_price_x96=sqrt, liquidity=liquidity, tick=tick)


def sync(r0: int, r1: int) -> m.V2Sync:
    return m.V2Sync(reserve0=r0, reserve1=r1)


def liquidity(lo: int, hi: int, delta: int) -> m.V3Liquidity:
    return m.V3Liquidity(tick_lower=lo, tick_upper=hi, liquidity_delta=delta)


@dataclass(frozen=True)
class Scenario:
    builder: StreamBuilder
    whitelist: dict[str, Any]
    initial_state: dict[str, Any]

    @property
    def model(self) -> Model:
        return self.builder.model

    def write_inputs(self, tmp: Path) -> tuple[Path, Path]:
        whitelist, initial = tmp / "whitelist.json", tmp / "initial_state.json"
        whitelist.write_text(json.dumps(self.whitelist))
        initial.write_text(json.dumps(self.initial_state))
        return whitelist, initial


DIVERGENT_SQRT = Q96 + 12345  # the epilogue's C differs from what the stream produced


def standard_scenario() -> Scenario:
    """Blocks 101-105, a reorg replacing 104-105 by 104'-106', then 107-108."""
    model = Model(pools=initial_pools(), block=FIRST_BLOCK)
    model.record(FIRST_BLOCK)
    initial_state = model.state_json()
    b = StreamBuilder(model)
    b.block(
        101,
        [(V2_A, sync(10**21 + 5, 2 * 10**21 - 9)), (V3_B, swap(sqrt_at(5) + 10**20, 10**18, 5))],
    )
    b.block(
        102,
        [(V2_F, sync(777, 888)), (FOREIGN, sync(1, 2)), (V3_C, liquidity(-120, 120, 5 * 10**17))],
    )
    b.block(
        103,
        [(V3_C, liquidity(600, 1200, 3 * 10**17)), (V3_B, swap(sqrt_at(-3) + 10**20, 10**18, -3))],
    )
    b.block(
        104,
        [
            (V3_B, swap(sqrt_at(9) + 2 * 10**20, 10**18, 9)),
            (V3_C, liquidity(-120, 120, -2 * 10**17)),
        ],
    )
    b.block(
        105, [(V2_G, sync(5, 6)), (V2_A, sync(10**21, 10**21)), (V3_C, liquidity(-60, 60, 10**16))]
    )
    b.reorg(
        [105, 104],
        [
            (104, [(V3_B, swap(sqrt_at(11) + 3 * 10**20, 10**18, 11))]),
            (105, [(V2_A, sync(42, 43)), (V3_C, liquidity(-1200, 1200, 10**15))]),
            (106, [(V2_F, sync(999, 1000))]),
        ],
        [
            m.V2ReservesFinal(pool_id=_pool_id(V2_A), reserve0=42, reserve1=43),
            m.Slot0Final(
                pool_id=_pool_id(V3_C),
                protocol=m.Protocol.UNISWAP_V3,
                state=m.Slot0State(
                    sqrt_price_x96=DIVERGENT_SQRT, liquidity=15 * 10**17 + 10**15, tick=0
                ),
            ),
        ],
    )
    b.block(107, [(V3_B, swap(Q96, 2 * 10**18, 0)), (V3_C, liquidity(-600, -120, 10**17))])
    b.block(108, [(V2_F, sync(1001, 1002)), (V3_B, swap(sqrt_at(1) + 1, 2 * 10**18, 1))])
    return Scenario(b, whitelist_document(), initial_state)
