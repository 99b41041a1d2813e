"""A block's `PoolUpdate` frames read as NumPy columns, without messages.

A `PoolUpdate` frame payload (docs/wire-protocol.md) is: the message tag (u32),
`stream_seq` (u64), the pool id (tag u32, then a 20-byte address after its u64 length or
a 32-byte V4 pool id), `protocol` (u32), `update_type` (u32), four u64 (block, timestamp,
tx and log index), `is_revert` (u8), the update's variant tag (u32) and its fields. After
the pool id every offset moves by 4 bytes when the id is a V4 pool id. So every frame's
pool key, protocol and variant are at offsets its pool-id tag decides.

V3Swap/V4Swap carry `sqrt_price_x96` (u64 length 32, then 32 bytes big-endian),
`liquidity` (16 bytes little-endian) and `tick` (i32): 60 bytes. V2Sync carries two
16-byte little-endian reserves. Such a frame is *hot*: its state record (state_table.py)
is its field bytes, `sqrt_price_x96` reversed to little-endian.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from arena.pool_keys import KEY_WIDTH, KeyArray
from arena.registry import PoolKind
from arena.state_table import RECORD_SIZE
from exex_bridge import messages as m

V3_SWAP_TAG: Final = m.POOL_UPDATE_VARIANTS.index(m.V3Swap)
V4_SWAP_TAG: Final = m.POOL_UPDATE_VARIANTS.index(m.V4Swap)
V2_SYNC_TAG: Final = m.POOL_UPDATE_VARIANTS.index(m.V2Sync)
# variant tag -> (payload class, the kind of pool it sets)
HOT_VARIANTS: Final[dict[int, tuple[type[m.PoolUpdatePayload], PoolKind]]] = {
    V3_SWAP_TAG: (m.V3Swap, PoolKind.V3),
    V4_SWAP_TAG: (m.V4Swap, PoolKind.V4),
    V2_SYNC_TAG: (m.V2Sync, PoolKind.V2),
}

_ID_TAG_AT: Final = 12  # u32: 0 address, 1 V4 pool id
_ADDRESS_AT: Final = 24  # after its u64 length (the pool id's bytes start at 16)
_PROTOCOL_AT: Final = 44  # of an address frame (+4 after a pool id)
_TAG_AT: Final = 85
_FIELDS_AT: Final = 89
_SWAP_SIZE: Final = _FIELDS_AT + 60  # 149 (153 after a pool id)
_SYNC_SIZE: Final = _FIELDS_AT + 32  # 121 (125)
_PAD: Final = bytes(64)  # a sync's 60-byte field window reads past it: not past the blob
_KEY_RANGE: Final = np.arange(32, dtype=np.int64)
_FIELD_RANGE: Final = np.arange(60, dtype=np.int64)
_IS_HOT: Final = np.zeros(len(m.POOL_UPDATE_VARIANTS), dtype=np.bool_)
_IS_HOT[list(HOT_VARIANTS)] = True


class FrameColumns(NamedTuple):
    """Every frame's pool key, protocol and variant tag; the hot frames' records."""

    keys: KeyArray  # 33-byte pool key columns (pool_keys.py)
    protocols: npt.NDArray[np.uint8]
    tags: npt.NDArray[np.uint8]  # the update's variant tag
    hot: npt.NDArray[np.bool_]
    records: npt.NDArray[np.uint8]  # (count of hot, 52): the record each hot frame sets


def read_frames(payloads: Sequence[bytes]) -> FrameColumns:
    """Columns of one block's `PoolUpdate` payloads. Each is a payload the codec decoded
    to a `PoolUpdate`, so every tag and enum index in it is valid and fits the u32's low
    byte, and a hot variant's frame has that variant's size (checked all the same)."""
    count = len(payloads)
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=count)
    starts = np.cumsum(sizes)
    starts -= sizes
    blob = np.frombuffer(b"".join([*payloads, _PAD]), dtype=np.uint8)
    shift = blob[starts + _ID_TAG_AT].astype(np.int64) * 4  # 4 after a V4 pool id
    address = shift == 0
    raw = blob[(starts + _ADDRESS_AT - 2 * shift)[:, None] + _KEY_RANGE]  # id at 16
    keys = np.empty((count, KEY_WIDTH), dtype=np.uint8)
    keys[:, 0] = np.where(address, 20, 32)
    keys[:, 1:] = raw
    keys[address, 21:] = 0
    after_id = starts + shift
    protocols = blob[after_id + _PROTOCOL_AT]
    tags = blob[after_id + _TAG_AT]
    hot = _IS_HOT[tags]
    swap = (tags == V3_SWAP_TAG) | (tags == V4_SWAP_TAG)
    hot &= np.where(swap, _SWAP_SIZE, _SYNC_SIZE) == sizes - shift
    fields = blob[(after_id[hot] + _FIELDS_AT)[:, None] + _FIELD_RANGE]
    swap = swap[hot]
    records = np.zeros((len(fields), RECORD_SIZE), dtype=np.uint8)
    records[:, 0:32] = np.where(swap[:, None], fields[:, 39:7:-1], fields[:, 0:32])
    records[swap, 32:52] = fields[swap, 40:60]
    key_column: KeyArray = keys.view(f"S{KEY_WIDTH}").reshape(-1)
    return FrameColumns(key_column, protocols, tags, hot, records)
