"""Shared helpers for the socket, recording and `arena record` tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from exex_bridge import messages as m
from exex_bridge.producers.broadcast import StreamSequencer

# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


def socket_path_in(directory: Path, name: str = "exex.sock") -> Iterator[str]:
    """A socket path inside `directory`, or inside a short temporary one if too long."""
    path = str(directory / name)
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="exex") as short:
        yield os.path.join(short, name)


def swap_event(block: int, index: int) -> m.PoolUpdateMessage:
    """A V3 swap whose fields vary with (block, index), so every frame is distinct."""
    return m.PoolUpdateMessage(
        pool_id=m.PoolAddress(value=index.to_bytes(20, "big")),
        protocol=m.Protocol.UNISWAP_V3,
        update_type=m.UpdateType.SWAP,
        block_number=block,
        block_timestamp=1_700_000_000 + 12 * block,
        tx_index=index // 4,
        log_index=index,
        is_revert=False,
        update=m.V3Swap(
            sqrt_price_x96=(1 << 96) + block * 1_000 + index, liquidity=10**18 + index, tick=index
        ),
    )


def committed_blocks(
    sequencer: StreamSequencer, first_block: int, blocks: int, updates_per_block: int
) -> list[m.SequencedMessage]:
    """`blocks` committed blocks of `updates_per_block` swaps each, in stream order."""
    out: list[m.SequencedMessage] = []
    for number in range(first_block, first_block + blocks):
        events = [swap_event(number, i) for i in range(updates_per_block)]
        out.extend(sequencer.block(number, events, base_fee_per_gas=7 * 10**9))
    return out
