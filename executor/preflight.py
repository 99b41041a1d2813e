"""Checks before anything is sent: the sending key's balance covers the worst case of a
transaction; the lane's state shown as gauges."""

from __future__ import annotations

from executor.errors import ExecutorError
from executor.fee_policy import worst_base_fee
from executor.metrics import ExecutionMetrics
from executor.nonce_lane import LaneState, LocalLane, NonceLane
from executor.settings import ExecutorSettings
from executor.shared_lane import FallbackLane, SharedLane


class InsufficientBalanceError(ExecutorError):
    """The sending key cannot pay the worst case of one transaction."""

    def __init__(self, address: str, balance: int, needed: int) -> None:
        self.address = address
        self.balance = balance
        self.needed = needed
        super().__init__(
            f"sending key {address} holds {balance} wei; one transaction may cost up to "
            f"{needed} wei: fund it with at least {needed - balance} wei more"
        )


def worst_transaction_cost(settings: ExecutorSettings, base_fee_per_gas: int) -> int:
    """The most one transaction may cost at the current base fee, within the caps."""
    worst_base = worst_base_fee(base_fee_per_gas, max(1, settings.deadline_blocks))
    max_fee = min(settings.max_fee_per_gas, worst_base + settings.priority_fee_per_gas)
    return min(settings.max_gas_cost, settings.estimate_gas_cap * max_fee)


def check_balance(balance: int, needed: int, address: str) -> None:
    if balance < needed:
        raise InsufficientBalanceError(address, balance, needed)


def lane_state(lane: NonceLane | None) -> LaneState | None:
    if isinstance(lane, FallbackLane):
        lane = lane.shared
    if isinstance(lane, LocalLane | SharedLane):
        return lane.state
    return None


def lane_gauges(lane: NonceLane | None, metrics: ExecutionMetrics) -> None:
    state = lane_state(lane)
    if state is None:
        return
    metrics.lane_next_nonce.set(state.next)
    metrics.lane_leases.set(len(state.leases))
    metrics.lane_free.set(len(state.free))
