"""The proof schedule never reorganises below the first block the follower sends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from devchain.chain_proof import ProofConfig, plan_steps


@settings(max_examples=200, deadline=None)
@given(
    blocks=st.integers(1, 400),
    reorgs=st.integers(0, 40),
    rollbacks=st.integers(0, 10),
    max_depth=st.integers(1, 8),
    seed=st.integers(0, 2**32),
)
def test_schedule_stays_above_the_start_and_mines_every_block(
    blocks: int, reorgs: int, rollbacks: int, max_depth: int, seed: int
) -> None:
    config = ProofConfig(
        blocks=blocks, reorgs=reorgs, rollbacks=rollbacks, max_depth=max_depth, seed=seed
    )
    steps = plan_steps(config)
    height = 0  # blocks above the follower's anchor
    for step in steps:
        if step.kind == "blocks":
            assert 1 <= step.count <= 3
            height += step.count
            continue
        assert 1 <= step.count <= min(max_depth, height)
        height += step.then_mine - (step.count if step.kind == "rollback" else 0)
        assert height >= 0
    assert sum(s.count for s in steps if s.kind == "blocks") == blocks
    assert sum(s.kind == "reorg" for s in steps) <= reorgs
    assert sum(s.kind == "rollback" for s in steps) <= rollbacks
    assert plan_steps(config) == steps  # seeded: the same schedule every time


def test_default_schedule_has_every_depth() -> None:
    steps = plan_steps(ProofConfig())
    depths = {s.count for s in steps if s.kind == "reorg"}
    assert depths == {1, 2, 3, 4, 5}
    assert sum(s.kind == "reorg" for s in steps) == 20
