"""Exact Uniswap math, the cycle graph, the vectorized screen, exact verification, and
where opportunities go."""

from pathfinder.errors import MathError, PathfinderError
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.sinks import (
    CallbackSink,
    JsonlSink,
    NatsSink,
    OpportunitySink,
    SinkError,
    opportunities_subject,
)

__all__ = [
    "CallbackSink",
    "JsonlSink",
    "MathError",
    "NatsSink",
    "Opportunity",
    "OpportunitySink",
    "PathRecalculator",
    "PathfinderConfig",
    "PathfinderError",
    "SinkError",
    "opportunities_subject",
]
