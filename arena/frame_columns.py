"""A block's fixed-size swap and sync frames read as NumPy columns, without messages.

A `PoolUpdate` frame payload (docs/wire-protocol.md) is: the message tag (u32),
`stream_seq` (u64), the pool id (tag u32, then a 20-byte address after its u64 length or
a 32-byte V4 pool id), `protocol` (u32), `update_type` (u32), four u64 (block, timestamp,
tx and log index), `is_revert` (u8), the update's variant tag (u32) and its fields. After
the pool id every offset moves by 4 bytes when the id is a V4 pool id.

V3Swap/V4Swap carry `sqrt_price_x96` (u64 length 32, then 32 bytes big-endian),
`liquidity` (16 bytes little-endian) and `tick` (i32): 60 bytes. V2Sync carries two
16-byte little-endian reserves. A frame is *hot* when its size is exactly that of one of
these variants on its pool id and the tags agree; its state record (state_table.py) is
then its field bytes, `sqrt_price_x96` reversed to little-endian.
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
_ID_AT: Final = 16  # address length (u64) then address; or the 32-byte id
_AFTER_ADDRESS: Final = 44  # `protocol` of an address frame (+4 for a pool id)
_UPDATE_TAG: Final = 41  # from `protocol`
_FIELDS: Final = 45  # from `protocol`
_SWAP_SIZE: Final = _AFTER_ADDRESS + _FIELDS + 60  # 149 (153 with a pool id)
_SYNC_SIZE: Final = _AFTER_ADDRESS + _FIELDS + 32  # 121 (125 with a pool id)
_WINDOW: Final = _FIELDS + 60  # `protocol` .. end of a swap's fields
_PAD: Final = bytes(64)  # a sync's window reads past its frame: never past the buffer
_CANDIDATE_SIZES: Final = (_SYNC_SIZE, _SYNC_SIZE + 4, _SWAP_SIZE, _SWAP_SIZE + 4)
_WINDOW_RANGE: Final = np.arange(_WINDOW, dtype=np.int64)
_ID_RANGE: Final = np.arange(32, dtype=np.int64)


class HotFrames(NamedTuple):
    """The hot frames of a block, in stream order (`rows` are their positions)."""

    rows: npt.NDArray[np.int64]
    keys: KeyArray  # 33-byte pool key columns (pool_keys.py)
    protocols: npt.NDArray[np.uint32]
    tags: npt.NDArray[np.uint32]  # the update's variant tag
    records: npt.NDArray[np.uint8]  # (n, 52): the state record each frame sets


def _u32(window: npt.NDArray[np.uint8], at: int) -> npt.NDArray[np.uint32]:
    column: npt.NDArray[np.uint32] = (
        np.ascontiguousarray(window[:, at : at + 4]).view("<u4").reshape(-1)
    )
    return column


def read_hot_frames(payloads: Sequence[bytes]) -> HotFrames:
    """Columns of the hot frames among one block's `PoolUpdate` payloads (every payload
    is one the codec decoded to a `PoolUpdate`)."""
    count = len(payloads)
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=count)
    starts = np.cumsum(sizes) - sizes
    candidate = np.isin(sizes, _CANDIDATE_SIZES)
    blob = np.frombuffer(b"".join([*payloads, _PAD]), dtype=np.uint8)
    rows = np.flatnonzero(candidate)
    start = starts[rows]
    is_id = blob[start + _ID_TAG_AT].astype(np.int64)  # 0 or 1: the other bytes are zero
    window = blob[(start + _AFTER_ADDRESS + 4 * is_id)[:, None] + _WINDOW_RANGE]
    tags = _u32(window, _UPDATE_TAG)
    swap = (tags == V3_SWAP_TAG) | (tags == V4_SWAP_TAG)
    size = sizes[rows] - 4 * is_id
    hot = (swap & (size == _SWAP_SIZE)) | ((tags == V2_SYNC_TAG) & (size == _SYNC_SIZE))
    rows, start, is_id, window, tags, swap = (
        a[hot] for a in (rows, start, is_id, window, tags, swap)
    )
    ids = blob[(start + _ID_AT)[:, None] + _ID_RANGE]
    keys = np.zeros((len(rows), KEY_WIDTH), dtype=np.uint8)
    keys[:, 0] = np.where(is_id == 1, 32, 20)
    keys[:, 1:33] = np.where(is_id[:, None] == 1, ids, 0)
    keys[is_id == 0, 1:21] = ids[is_id == 0, 8:28]
    records = np.zeros((len(rows), RECORD_SIZE), dtype=np.uint8)
    sqrt_be = window[swap, _FIELDS + 8 : _FIELDS + 40]
    records[swap, 0:32] = sqrt_be[:, ::-1]
    records[swap, 32:52] = window[swap, _FIELDS + 40 : _FIELDS + 60]
    records[~swap, 0:32] = window[~swap, _FIELDS : _FIELDS + 32]
    key_column: KeyArray = keys.view(f"S{KEY_WIDTH}").reshape(-1)
    return HotFrames(rows, key_column, _u32(window, 0), tags, records)
