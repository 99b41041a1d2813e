"""The duplicate window of the block assembler stays within its bound on a long stream."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from arena.block_assembler import DUPLICATE_WINDOW, BlockAssembler
from arena.engine import ArenaEngine
from exex_bridge import messages as m


def empty_block(seq: int, number: int) -> tuple[m.BeginBlock, m.EndBlock]:
    begin = m.BeginBlock(
        stream_seq=seq, block_number=number, block_timestamp=0, base_fee_per_gas=1, is_revert=False
    )
    return begin, m.EndBlock(stream_seq=seq + 1, block_number=number, num_updates=0)


@settings(max_examples=5, deadline=None)
@given(st.integers(min_value=DUPLICATE_WINDOW // 2, max_value=DUPLICATE_WINDOW + 300))
def test_window_never_exceeds_its_bound_and_still_drops_recent_duplicates(blocks: int) -> None:
    assembler = BlockAssembler(ArenaEngine())
    for k in range(blocks):
        begin, end = empty_block(2 * k, 100 + k)
        assembler.feed(begin)
        assembler.feed(end)
        assert len(assembler._recent) == len(assembler._recent_order) <= DUPLICATE_WINDOW
    before = assembler.metrics.duplicates._value.get()
    assembler.feed(end)  # the last message again
    assert assembler.metrics.duplicates._value.get() == before + 1
    assert assembler.engine.tip_block == 100 + blocks - 1
