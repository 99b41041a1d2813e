"""Errors of the pathfinder package; each carries the values that caused it."""

from __future__ import annotations

__all__ = [
    "PathfinderError",
    "MathError",
    "MathOverflowError",
    "MathDivisionByZeroError",
    "MathDomainError",
    "InvalidInputError",
    "InsufficientAmountError",
    "InsufficientLiquidityError",
    "IncompleteSwapError",
]


class PathfinderError(Exception):
    """Base of every error raised by the pathfinder package."""


class MathError(PathfinderError):
    """An exact-math operation would have reverted on chain.

    ``reason`` is Uniswap's revert string when the contract has one ("T", "R", "LS", ...),
    otherwise empty.
    """

    def __init__(self, operation: str, operands: tuple[int, ...], reason: str = "") -> None:
        self.operation = operation
        self.operands = operands
        self.reason = reason
        suffix = f" [{reason}]" if reason else ""
        super().__init__(f"{type(self).__name__} in {operation}{operands}{suffix}")


class MathOverflowError(MathError):
    """A result does not fit the Solidity type it is stored in (uint256, uint160, int256...)."""


class MathDivisionByZeroError(MathError):
    """A checked division by zero."""


class MathDomainError(MathError):
    """A ``require`` of the math libraries failed: tick or price out of range, zero price or
    liquidity, or an output at or beyond the virtual reserves."""


class InvalidInputError(PathfinderError):
    """An argument outside what the modelled contract accepts (``reason`` is the Uniswap
    revert string when there is one, e.g. "AS", "SPL")."""

    def __init__(self, parameter: str, value: object, reason: str = "") -> None:
        self.parameter = parameter
        self.value = value
        self.reason = reason
        suffix = f" [{reason}]" if reason else ""
        super().__init__(f"invalid {parameter}={value!r}{suffix}")


class InsufficientAmountError(PathfinderError):
    """UniswapV2Library's INSUFFICIENT_INPUT_AMOUNT / INSUFFICIENT_OUTPUT_AMOUNT."""

    def __init__(self, operation: str, amount: int) -> None:
        self.operation = operation
        self.amount = amount
        super().__init__(f"{operation}: insufficient amount {amount}")


class InsufficientLiquidityError(PathfinderError):
    """A V2 pair cannot serve the request: an empty reserve, or an output at or above the
    output reserve."""

    def __init__(self, operation: str, amount: int, reserve_in: int, reserve_out: int) -> None:
        self.operation = operation
        self.amount = amount
        self.reserve_in = reserve_in
        self.reserve_out = reserve_out
        super().__init__(
            f"{operation}: amount {amount} against reserves ({reserve_in}, {reserve_out})"
        )


class IncompleteSwapError(PathfinderError):
    """A V3/V4 quote without a price limit ran out of liquidity before filling the amount."""

    def __init__(self, operation: str, requested: int, filled: int) -> None:
        self.operation = operation
        self.requested = requested
        self.filled = filled
        super().__init__(f"{operation}: filled {filled} of {requested}")
