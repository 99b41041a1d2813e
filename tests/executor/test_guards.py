"""The kill switch and the loss limits, as units: both latch until a restart."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from executor.kill_switch import KillSwitch
from executor.loss_limits import LossGuard, LossLimits, MinedOutcome

outcomes = st.lists(
    st.builds(
        MinedOutcome,
        block=st.integers(0, 300),
        reverted=st.booleans(),
        gas_paid=st.integers(0, 10**16),
    ),
    max_size=40,
)
limits = st.builds(
    LossLimits,
    max_reverted=st.integers(0, 5),
    max_gas_spent=st.integers(0, 10**17),
    window_blocks=st.integers(1, 120),
)


def trips_somewhere(history: list[MinedOutcome], limit: LossLimits) -> bool:
    """The reference: after each record, the window of blocks up to the newest so far."""
    for end in range(1, len(history) + 1):
        seen = history[:end]
        newest = max(o.block for o in seen)
        window = [o for o in seen if o.block > newest - limit.window_blocks]
        if sum(o.reverted for o in window) > limit.max_reverted:
            return True
        if sum(o.gas_paid for o in window) > limit.max_gas_spent:
            return True
    return False


@given(outcomes, limits)
def test_the_loss_guard_trips_exactly_when_a_window_exceeds_a_limit(
    history: list[MinedOutcome], limit: LossLimits
) -> None:
    guard = LossGuard(limit)
    for outcome in history:
        guard.record(outcome)
    assert (guard.tripped() is not None) == trips_somewhere(history, limit)


def test_a_tripped_guard_stays_tripped_after_quiet_blocks() -> None:
    guard = LossGuard(LossLimits(max_reverted=0, max_gas_spent=10**18, window_blocks=2))
    guard.record(MinedOutcome(block=10, reverted=True, gas_paid=5))
    guard.record(MinedOutcome(block=100, reverted=False, gas_paid=5))
    assert guard.tripped() == "loss limit: 1 reverted transactions in 2 blocks (limit 0)"


def test_the_kill_file_latches(tmp_path: Path) -> None:
    kill = tmp_path / "STOP"
    switch = KillSwitch(kill)
    assert switch.engaged() is None
    kill.touch()
    assert switch.engaged() == f"kill file {kill} exists"
    kill.unlink()
    assert switch.engaged() == f"kill file {kill} exists"


def test_a_kill_message_keeps_its_first_reason() -> None:
    switch = KillSwitch()
    switch.on_message(b"  first  ")
    switch.on_message(b"second")
    assert switch.engaged() == "kill message on NATS: first"
